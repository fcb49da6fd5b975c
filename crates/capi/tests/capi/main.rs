//! The integration tests of the C API, in one test binary (each test binary links all of
//! llama.cpp), one module per feature. `common` holds the fixtures and helpers they share.
//! Everything runs in one process: a test that changes process-wide settings (the log level
//! and callback, panic injection) puts them back, and the model tests run one at a time
//! (`--test-threads=1`, as the Makefile runs them). `cargo test --release --test capi rpc::`
//! runs one module.

mod common;

mod abi;
mod audio;
mod bad_input;
mod batch;
mod cancel;
mod conversation;
mod forks;
mod media;
mod raw_llama;
mod requests;
mod rpc;
mod session;
mod source_rules;
mod state;
mod threads;
mod tools;
