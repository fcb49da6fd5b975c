//! The checks of model files before llama.cpp sees them, and what they find, remembered per
//! file for the process (`memo.rs`): creating another session of a file that has not changed
//! since it was checked reuses the findings instead of reading its header again.
//!
//! Why it matters: reading a large header (a 262k-token vocabulary) costs a few milliseconds
//! and a few megabytes of short-lived allocations per create, and those allocations, made
//! between llama.cpp's loads, shift where llama.cpp's buffers land in the heap.

use std::path::Path;

use crate::model::fingerprint;
use crate::util::error::Result;
use crate::util::files::regular_file;
use crate::util::hash::Digest256;
use crate::util::memo::FileMemo;

/// Text models and projectors remembered.
static TEXT_MODELS: FileMemo<Found, 16> = FileMemo::new();
static PROJECTORS: FileMemo<Found, 16> = FileMemo::new();

/// What checking a file found.
#[derive(Clone)]
pub struct Found {
    /// The fingerprint of its contents (`fingerprint::of_file`).
    pub fingerprint: Digest256,
    /// For a projector, the output size of each encoder that feeds the text model, with the
    /// tensor it was read from (`mm_gguf::check_projector_output`).
    pub outputs: Vec<(&'static str, u64)>,
}

/// Checks the text model at `path` (or recalls its findings).
pub fn text_model(path: &Path) -> Result<Found> {
    remembered(path, "text model", &TEXT_MODELS, || {
        let model = mm_gguf::check_text_model(path)?;
        Ok(Found { fingerprint: fingerprint::of_file(path, &model.gguf)?, outputs: Vec::new() })
    })
}

/// Checks the projector at `path` (or recalls its findings).
pub fn projector(path: &Path) -> Result<Found> {
    remembered(path, "projector", &PROJECTORS, || {
        let p = mm_gguf::check_projector(path)?;
        Ok(Found { fingerprint: fingerprint::of_file(path, &p.gguf)?, outputs: p.outputs })
    })
}

/// Runs `check` on the regular file `path` unless an unchanged file's findings are in `memo`.
fn remembered(
    path: &Path,
    what: &str,
    memo: &FileMemo<Found, 16>,
    check: impl FnOnce() -> Result<Found>,
) -> Result<Found> {
    let m = regular_file(path, what)?;
    if let Some(found) = memo.get(&m) {
        return Ok(found);
    }
    let found = check()?;
    memo.put(&m, found.clone());
    Ok(found)
}
