//! Media items of a request: their formats and limits (`format.rs`), the memory-safe decoders
//! (`decode.rs`, no `unsafe`), and a media item to an mtmd bitmap (`bitmap.rs`).

mod bitmap;
pub mod decode;
mod format;

pub use bitmap::to_bitmap;
pub use format::{Format, Media, MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS};
