//! The only code of the core that calls C: llama.cpp, ggml and mtmd (through `llama_cpp_sys_2`
//! and the C++ barriers of `guard` and `shim/`, which catch every C++ exception), and the few
//! libc calls the core needs. Owning wrappers free each object exactly once in `Drop`; the safe
//! functions here are what the rest of the core calls. Every `unsafe` of the core is in this
//! folder (a test in crates/capi/tests/capi/source_rules.rs keeps it so).
//!
//! The wrappers add no policy of their own: the session decides the order in which they are
//! made and dropped, and what is checked before.

mod abort;
pub mod backend;
pub mod bitmap;
pub mod chat;
pub mod chunks;
pub mod context;
pub mod guard;
pub mod load;
mod log_hook;
pub mod memory;
pub mod model;
pub mod options;
pub mod projector;
pub mod render_thread;
#[cfg(feature = "rpc")]
pub mod rpc;
pub mod sampler;
pub mod special;

pub use bitmap::Bitmap;
pub use chunks::{Chunk, Chunks};
pub use context::{Context, TokenBatch};
pub use model::{Model, Token};
pub use projector::{Projector, TokenizePart};
pub use sampler::Sampler;

#[cfg(test)]
mod tests {
    use llama_cpp_sys_2 as sys;

    /// The pure-Rust table of ggml type sizes that mm-gguf reads files with matches ggml's own.
    #[test]
    fn ggml_type_table_matches_ggml() {
        assert_eq!(mm_gguf::ggml_types::TYPE_COUNT, sys::GGML_TYPE_COUNT);
        for t in 0..sys::GGML_TYPE_COUNT {
            // SAFETY: plain lookups in ggml's type table, for every type number it has.
            let (block, size) = unsafe { (sys::ggml_blck_size(t) as u64, sys::ggml_type_size(t) as u64) };
            let expected = (block > 0 && size > 0).then_some((block, size));
            assert_eq!(mm_gguf::ggml_types::block(t), expected, "ggml type {t}");
        }
    }
}
