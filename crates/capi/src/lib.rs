//! mm-session: the C API (`include/mm_session.h`) over the safe core (`mm-session-core`). This
//! crate is the only one that builds `libmm_session.so` and `.a`: argument checks, versioned
//! structs, handles, and the translation of the core's errors into `mm_status` codes. Every
//! export runs its body inside [`boundary::boundary`], so no panic crosses into C.
//!
//! One module per exported object, in the order the header lists them: the library
//! (`library.rs`), sessions (`session.rs`), asking (`ask.rs`), the conversation
//! (`conversation.rs`), saved state (`state.rs`).

#![allow(non_camel_case_types)]
// The exports' doc comments are the header's: each says in its own words which pointers may be
// NULL, what they must point to and who owns them (docs/c-api.md, "API conventions"), which a C reader
// finds there; a Rust `# Safety` heading would repeat it in every function of the header.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod status;
pub mod library;
pub mod session;
pub mod ask;
pub mod conversation;
pub mod state;

mod boundary;
mod registry;

#[cfg(feature = "test-hooks")]
pub use boundary::inject_panic_for_tests;
