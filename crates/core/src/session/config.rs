//! What a session is made from ([`SessionConfig`]) and what a fork may change ([`ForkConfig`]),
//! and the checks of both.

use std::path::PathBuf;

use crate::llama::backend;
pub use crate::llama::options::{FlashAttention, KvType};
use crate::util::error::{fail, ErrorKind::*, Result};
use crate::util::log;

/// The smallest context accepted, in positions.
pub const MIN_CONTEXT: u32 = 16;

/// The most sessions one context can hold for decoding together (llama.cpp's `LLAMA_MAX_SEQ`).
pub const MAX_PARALLEL: u32 = 256;

/// What a session is made from. `Default` gives the documented defaults.
pub struct SessionConfig<'a> {
    pub model_path: PathBuf,
    pub mmproj_path: Option<PathBuf>,
    /// Context window in tokens.
    pub n_ctx: u32,
    /// Largest number of tokens evaluated in one step.
    pub n_batch: u32,
    /// CPU threads; 0 chooses [`default_threads`].
    pub n_threads: i32,
    /// Layers of the text model offloaded to devices (RPC servers, local GPUs); negative: all.
    pub n_gpu_layers: i32,
    /// RPC servers that take offloaded layers, "host:port,host:port" (llama.cpp's RPC backend:
    /// `model/rpc.rs`); `None`: none. Needs the `rpc` feature (`Unsupported` without it).
    pub rpc_servers: Option<String>,
    /// The share of the offloaded layers each device takes, in device order: the RPC servers'
    /// devices as the servers are named, then the local GPUs. Empty or all zero: llama.cpp's
    /// default (in proportion to free memory).
    pub tensor_split: Vec<f32>,
    pub mmproj_use_gpu: bool,
    pub use_mmap: bool,
    /// Sampling seed of requests that do not set one; `u32::MAX`: random.
    pub seed: u32,
    /// The text that stands for a media item in prompts; `None`: mtmd's default marker.
    pub media_marker: Option<String>,
    /// Chat template (Jinja text llama.cpp recognises, or a built-in name such as "chatml");
    /// `None`: the model's own, or ChatML when it has none.
    pub chat_template: Option<String>,
    /// Flash attention in the context and in the projector's encoder.
    pub flash_attn: FlashAttention,
    /// KV cache types of K and V; a quantized V needs flash attention.
    pub kv_type_k: KvType,
    pub kv_type_v: KvType,
    /// Tokens computed in one graph step (the physical batch); 0: `n_batch`.
    pub n_ubatch: u32,
    /// Lock the model's memory in RAM.
    pub use_mlock: bool,
    /// Load progress in [0, 1]; returning false cancels the load.
    pub progress: Option<&'a mut dyn FnMut(f32) -> bool>,
    /// Sessions (this one and its forks) that can decode together in one context; 1: the
    /// session and each fork have contexts of their own.
    pub n_parallel: u32,
}

impl Default for SessionConfig<'_> {
    fn default() -> Self {
        SessionConfig {
            model_path: PathBuf::new(),
            mmproj_path: None,
            n_ctx: 4096,
            n_batch: 512,
            n_threads: 0,
            n_gpu_layers: -1,
            rpc_servers: None,
            tensor_split: Vec::new(),
            mmproj_use_gpu: true,
            use_mmap: true,
            seed: u32::MAX,
            media_marker: None,
            chat_template: None,
            flash_attn: FlashAttention::Auto,
            kv_type_k: KvType::F16,
            kv_type_v: KvType::F16,
            n_ubatch: 0,
            use_mlock: false,
            progress: None,
            n_parallel: 1,
        }
    }
}

impl SessionConfig<'_> {
    /// Refuses values llama.cpp would refuse late, or abort on.
    pub(super) fn validate(&self) -> Result<()> {
        check_sizes(self.n_ctx, self.n_batch, self.n_threads)?;
        if !(1..=MAX_PARALLEL).contains(&self.n_parallel) {
            return fail(
                InvalidArgument,
                format!("n_parallel is {}; it must be between 1 and {MAX_PARALLEL}", self.n_parallel),
            );
        }
        if self.n_ctx.checked_mul(self.n_parallel).is_none_or(|total| total > i32::MAX as u32) {
            return fail(
                InvalidArgument,
                format!(
                    "n_ctx {} times n_parallel {} is more positions than one context holds",
                    self.n_ctx, self.n_parallel
                ),
            );
        }
        if self.n_ubatch > self.n_batch {
            return fail(
                InvalidArgument,
                format!(
                    "n_ubatch {} is larger than n_batch {}; it must be at most n_batch (0: n_batch)",
                    self.n_ubatch, self.n_batch
                ),
            );
        }
        // A marker is found in message texts that chat templates trim, and placed in front of a
        // text with a newline after it: whitespace at either end of it would be cut or doubled.
        if let Some(marker) = &self.media_marker {
            if marker.is_empty() || marker.trim() != marker {
                return fail(
                    InvalidArgument,
                    format!("media_marker {marker:?} is empty or starts or ends with whitespace; use visible text such as <image>"),
                );
            }
        }
        // llama.cpp reads a quantized V cache only in its flash attention kernels (it would
        // refuse the context with a log line; the caller gets the reason here instead).
        if self.kv_type_v.is_quantized() && self.flash_attn == FlashAttention::Off {
            return fail(
                InvalidArgument,
                format!(
                    "kv_type_v {} needs flash attention, but flash_attn is off; set it on or auto",
                    self.kv_type_v.name()
                ),
            );
        }
        if self.use_mlock && !backend::supports_mlock() {
            return fail(Unsupported, "use_mlock: this system cannot lock memory");
        }
        Ok(())
    }
}

/// Settings a session can start a fork with: `None` (or 0) keeps the parent's. A fork of a
/// session created with `n_parallel` > 1 joins its context, whose sizes and threads it keeps:
/// `n_ctx`, `n_batch` and `n_threads` must then be 0 or the parent's.
#[derive(Clone, Debug, Default)]
pub struct ForkConfig {
    /// Context window of the fork; 0: the parent's.
    pub n_ctx: u32,
    /// Largest number of tokens evaluated in one step; 0: the parent's.
    pub n_batch: u32,
    /// CPU threads; 0: the parent's.
    pub n_threads: i32,
    /// Sampling seed of requests that do not set one; `None`: the parent's.
    pub seed: Option<u32>,
    /// Start from a copy of the parent's conversation (its KV cache and the record of it), so a
    /// shared prefix is evaluated once; otherwise the fork starts empty.
    pub copy_conversation: bool,
}

/// The thread count used when a session asks for 0: half the hardware threads (about the
/// physical cores on SMT machines), between 1 and 8. llama.cpp's threads spin while they wait,
/// so more threads than free cores is far slower, not faster.
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map(|n| (n.get() / 2).clamp(1, 8) as i32).unwrap_or(1)
}

/// The threads a session runs with: `requested`, or [`default_threads`] for 0, and never more
/// than the machine's hardware threads (llama.cpp's threads spin while they wait, so more
/// threads than cores are far slower). A larger request is lowered, with a warning in the log.
pub(super) fn threads_for(requested: i32) -> i32 {
    let hardware = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    match requested {
        0 => default_threads(),
        n if n > hardware => {
            log::emit(
                log::LogLevel::Warn,
                &format!("n_threads {n} is more than this machine's {hardware} hardware threads; using {hardware}"),
            );
            hardware
        }
        n => n,
    }
}

/// Refuses a context smaller than [`MIN_CONTEXT`], batches of 0 and negative thread counts.
pub(super) fn check_sizes(n_ctx: u32, n_batch: u32, n_threads: i32) -> Result<()> {
    if n_ctx < MIN_CONTEXT || n_batch < 1 {
        return fail(
            InvalidArgument,
            format!("n_ctx {n_ctx} (min {MIN_CONTEXT}) or n_batch {n_batch} (min 1) too small"),
        );
    }
    if n_threads < 0 {
        return fail(InvalidArgument, format!("n_threads is {n_threads}; use 0 for the default"));
    }
    Ok(())
}
