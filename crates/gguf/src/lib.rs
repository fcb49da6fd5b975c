//! mm-gguf: a strict GGUF header reader and the checks mm-session runs on model and projector
//! files before llama.cpp and clip.cpp see them (they abort, rather than fail, on some malformed
//! input). Pure Rust: usable and fuzzable without loading a model.
//!
//! - [`reader`]: the header (metadata, tensor table) with every length and extent checked;
//! - [`checks`]: text model and projector checks, with a [`checks::CheckKind`] for each failure;
//! - [`projectors`]: one table entry per projector type (what its graph needs);
//! - [`bytes`]: the little-endian reader the project's binary formats share.

#![forbid(unsafe_code)]

pub mod bytes;
pub mod checks;
pub mod ggml_types;
pub mod projectors;
pub mod reader;

pub use checks::{check_projector, check_projector_output, check_text_model, CheckError, CheckKind};
pub use reader::{Gguf, TensorInfo, Value};
