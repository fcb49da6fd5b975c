//! mm-session: one handle for a multimodal llama.cpp model (text model, context and projector)
//! that frees every byte when destroyed, with a C ABI (`include/mm_session.h`).
//!
//! The safe core is [`session::Session`]; [`capi`] is the thin `extern "C"` layer over it.

#![allow(non_camel_case_types)]

mod abort;
mod backend;
pub mod capi;
mod error;
mod ffi;
pub mod fixtures;
pub mod fixtures_audio;
mod generate;
mod gguf;
mod gguf_check;
mod grammar_limits;
mod guard;
mod kv;
mod llama;
mod log;
mod media;
mod memory;
pub mod prompt;
mod projector_rules;
mod registry;
mod state_file;
pub mod session;

pub use error::{mm_status, Error};
pub use ffi::inject_panic_for_tests;
pub use generate::mm_stop_reason;
pub use log::{mm_log_callback, mm_log_level};
pub use media::Media;
pub use memory::mm_memory_stats;
