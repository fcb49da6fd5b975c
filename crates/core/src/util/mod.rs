//! What every layer uses and nothing of llama.cpp: errors, files, hashes, the log's routing and
//! a call's cancel state.

pub mod abort;
pub mod error;
pub mod files;
pub mod hash;
pub mod json;
pub mod log;
pub mod memo;
