//! `mm_session`: parameters, create, destroy, cancel, info and the memory report.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::path::PathBuf;

use mm_core::{FlashAttention, ForkConfig, KvType, MemoryStats, Session, SessionConfig};

use crate::boundary::{
    boundary, boundary_value, c_str, opt_c_str, required, set_last_error, slice, versioned, write_versioned,
};
use crate::registry;
use crate::status::{fail, mm_status, Result};

/// `seed` value meaning: use the session's seed.
pub const MM_SEED_DEFAULT: u32 = 0xFFFF_FFFF;

/// The largest `mm_session_params.n_parallel`: sessions one context can hold.
pub const MM_MAX_PARALLEL: u32 = 256;
const _: () = assert!(MM_MAX_PARALLEL == mm_core::MAX_PARALLEL);

/// A loaded multimodal model: text model, context and projector behind one handle. Calls on one
/// session are serialized (a second thread waits for the first); different sessions run in
/// parallel.
pub struct mm_session {
    _private: [u8; 0],
}

/// Load progress: `user_data` as given in the params, and the progress of the whole load
/// (model, then projector) in [0, 1]. Return false to cancel: create then frees everything and
/// returns `MM_ERR_CANCELLED`. Called on the thread that calls `mm_session_create`.
pub type mm_progress_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: f32) -> bool>;

/// Flash attention in the text model's context and the projector's encoder
/// (`mm_session_params.flash_attn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_flash_attn {
    /// llama.cpp decides: on where the backend supports it (default).
    MM_FLASH_ATTN_AUTO = 0,
    MM_FLASH_ATTN_OFF = 1,
    MM_FLASH_ATTN_ON = 2,
}

/// The element type of the KV cache (`mm_session_params.kv_type_k`, `kv_type_v`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_kv_type {
    /// 16-bit floats (default).
    MM_KV_F16 = 0,
    /// 8-bit blocks (q8_0): about half the memory of f16.
    MM_KV_Q8_0 = 1,
    /// 4-bit blocks (q4_0): about a quarter of the memory of f16.
    MM_KV_Q4_0 = 2,
}

/// What `mm_session_create` loads, and how. Get one from `mm_session_params_default()`, then
/// set fields: `struct_size` tells the library which version of this struct the caller has.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_session_params {
    /// `sizeof(mm_session_params)` of the caller's header; set by `mm_session_params_default`.
    pub struct_size: u32,
    /// Layers of the text model to offload to devices: the GPUs, and the RPC servers of
    /// `rpc_servers` (before the GPUs); -1 (default): all. Without either (a CPU build, no
    /// servers), every layer stays in this process.
    pub n_gpu_layers: i32,
    /// Path of the text model (GGUF). Required. Borrowed during the call only.
    pub model_path: *const c_char,
    /// Path of the projector (mmproj GGUF); NULL (default): a text-only session. Borrowed.
    pub mmproj_path: *const c_char,
    /// Context window in tokens (default 4096).
    pub n_ctx: u32,
    /// Most tokens evaluated in one step (default 512).
    pub n_batch: u32,
    /// CPU threads; 0 (default): half the hardware threads, between 1 and 8. More than the
    /// machine's hardware threads is lowered to that number, with a warning in the log.
    pub n_threads: i32,
    /// Seed of requests that do not set one; 0xFFFFFFFF (default): random.
    pub seed: u32,
    /// Run the projector on the GPU when there is one (default true).
    pub mmproj_use_gpu: bool,
    /// Map the model file instead of reading it (default true).
    pub use_mmap: bool,
    /// Reserved: set to zero (as `mm_session_params_default` does).
    pub reserved0: [u8; 6],
    /// The text that marks where a media item goes in a prompt; NULL (default): mtmd's default
    /// marker (`mm_session_marker` tells which). Borrowed during the call only.
    pub media_marker: *const c_char,
    /// Optional load progress callback (default NULL).
    pub progress_callback: mm_progress_callback,
    /// Passed to `progress_callback`.
    pub progress_user_data: *mut c_void,
    /// Chat template for `mm_ask_params.messages`: Jinja text that llama.cpp recognises, or a
    /// built-in name such as "chatml", "llama3", "gemma". NULL (default): the model's own
    /// template (`tokenizer.chat_template`), or ChatML when the model has none. Borrowed.
    pub chat_template: *const c_char,
    /// Version 2. RPC servers (`mm-rpc-server`, or llama.cpp's `rpc-server`, on other machines)
    /// that hold offloaded layers: "host:port,host:port". NULL (default): none. Needs a library
    /// built with RPC (the default `rpc` feature): otherwise `MM_ERR_UNSUPPORTED`. A list that is not
    /// host:port entries gives `MM_ERR_INVALID_ARGUMENT`; a server that cannot be reached, does
    /// not answer, or speaks another protocol version gives `MM_ERR_REMOTE`. Borrowed.
    pub rpc_servers: *const c_char,
    /// Version 2. The share of the offloaded layers each device takes, in device order: the
    /// devices of the RPC servers in the order named, then the local GPUs. For example
    /// {3, 1}: three quarters on the first server, a quarter on the second. NULL (default) or
    /// all zero: in proportion to each device's free memory. Negative or non-finite shares,
    /// and more shares than devices, give `MM_ERR_INVALID_ARGUMENT`. Borrowed.
    pub tensor_split: *const f32,
    /// The number of floats at `tensor_split`.
    pub n_tensor_split: usize,
    /// Version 2. An `mm_flash_attn`: flash attention in the text model's context and the projector's
    /// encoder (default `MM_FLASH_ATTN_AUTO`).
    pub flash_attn: i32,
    /// Version 2. An `mm_kv_type` for the K cache (default `MM_KV_F16`). With flash attention on or
    /// auto, llama.cpp takes a quantized K or V cache only for a model whose attention head size
    /// is a multiple of 32 (otherwise `MM_ERR_CONTEXT_CREATE`, with the reason).
    pub kv_type_k: i32,
    /// Version 2. An `mm_kv_type` for the V cache (default `MM_KV_F16`). A quantized V cache needs flash
    /// attention: with `MM_FLASH_ATTN_OFF` it gives `MM_ERR_INVALID_ARGUMENT`.
    pub kv_type_v: i32,
    /// Version 2. Most tokens computed in one step of the graph (the physical batch); `n_batch` is what
    /// one call hands to llama.cpp. 0 (default): `n_batch`. At most `n_batch`. A smaller value
    /// lowers the compute buffers' memory; a projector that decodes images with non-causal
    /// attention needs it at least as large as an image's tokens (a request that breaks this
    /// gets `MM_ERR_INVALID_ARGUMENT` before anything is evaluated).
    pub n_ubatch: u32,
    /// Version 2. Lock the model's memory in RAM so that it is never swapped out (default false). A lock
    /// the system refuses (RLIMIT_MEMLOCK) is logged as a warning and the session still loads.
    pub use_mlock: bool,
    /// Reserved: set to zero (as `mm_session_params_default` does).
    pub reserved1: [u8; 7],
    /// Version 3. Sessions that can decode together: this one and its forks share one context
    /// with `n_parallel` slots (KV caches of `n_ctx` positions each), and the requests that run
    /// at the same time are evaluated in shared steps, one `llama_decode` carrying every
    /// session's next token (and prompt chunks as room allows), with this session's threads.
    /// 1 (default): the session and each fork have contexts of their own and decode alone.
    /// At most `MM_MAX_PARALLEL`. Forks beyond `n_parallel` are allowed: a request takes a free
    /// slot, or lends the slot of the session idle longest (its KV cache waits in host memory
    /// until its next request), or waits for one (`mm_ask_info.slot_wait_ms`). See
    /// docs/conversations.md, "Many conversations on one model".
    pub n_parallel: u32,
    /// Reserved: set to zero.
    pub reserved2: u32,
}

/// The sizes of the released versions of `mm_session_params`, oldest first (each is a
/// `sizeof` an older header gives; `tests/c/abi_snapshot.c` pins them). Fields are only ever
/// appended: a new version adds its size here.
const PARAMS_VERSIONS: [usize; 8] = [24, 40, 48, 56, 72, 80, 128, 136];

/// The `bool` fields of `mm_session_params`, checked by [`versioned`] before they are read.
const PARAMS_BOOLS: [(usize, &str); 3] = [
    (std::mem::offset_of!(mm_session_params, mmproj_use_gpu), "mmproj_use_gpu"),
    (std::mem::offset_of!(mm_session_params, use_mmap), "use_mmap"),
    (std::mem::offset_of!(mm_session_params, use_mlock), "use_mlock"),
];

/// Default session parameters, with `struct_size` set. Paths are NULL: set `model_path`.
#[no_mangle]
pub extern "C" fn mm_session_params_default() -> mm_session_params {
    // SAFETY: all-zero is a valid mm_session_params (NULL pointers and callbacks); create
    // refuses it (struct_size 0), so it is the neutral value after a panic.
    boundary_value("mm_session_params_default", unsafe { std::mem::zeroed() }, params_default)
}

fn params_default() -> mm_session_params {
    let d = SessionConfig::default();
    mm_session_params {
        struct_size: std::mem::size_of::<mm_session_params>() as u32,
        n_gpu_layers: d.n_gpu_layers,
        model_path: std::ptr::null(),
        mmproj_path: std::ptr::null(),
        n_ctx: d.n_ctx,
        n_batch: d.n_batch,
        n_threads: d.n_threads,
        seed: d.seed,
        mmproj_use_gpu: d.mmproj_use_gpu,
        use_mmap: d.use_mmap,
        reserved0: [0; 6],
        media_marker: std::ptr::null(),
        progress_callback: None,
        progress_user_data: std::ptr::null_mut(),
        chat_template: std::ptr::null(),
        rpc_servers: std::ptr::null(),
        tensor_split: std::ptr::null(),
        n_tensor_split: 0,
        flash_attn: mm_flash_attn::from(d.flash_attn) as i32,
        kv_type_k: mm_kv_type::from(d.kv_type_k) as i32,
        kv_type_v: mm_kv_type::from(d.kv_type_v) as i32,
        n_ubatch: d.n_ubatch,
        use_mlock: d.use_mlock,
        reserved1: [0; 7],
        n_parallel: d.n_parallel,
        reserved2: 0,
    }
}

impl From<FlashAttention> for mm_flash_attn {
    fn from(f: FlashAttention) -> Self {
        match f {
            FlashAttention::Auto => mm_flash_attn::MM_FLASH_ATTN_AUTO,
            FlashAttention::Off => mm_flash_attn::MM_FLASH_ATTN_OFF,
            FlashAttention::On => mm_flash_attn::MM_FLASH_ATTN_ON,
        }
    }
}

impl From<KvType> for mm_kv_type {
    fn from(t: KvType) -> Self {
        match t {
            KvType::F16 => mm_kv_type::MM_KV_F16,
            KvType::Q8_0 => mm_kv_type::MM_KV_Q8_0,
            KvType::Q4_0 => mm_kv_type::MM_KV_Q4_0,
        }
    }
}

/// `params.flash_attn` as the core's setting.
fn flash_attn(value: i32) -> Result<FlashAttention> {
    [FlashAttention::Auto, FlashAttention::Off, FlashAttention::On]
        .into_iter()
        .find(|&f| mm_flash_attn::from(f) as i32 == value)
        .map_or_else(
            || fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("params.flash_attn is {value}, not an mm_flash_attn")),
            Ok,
        )
}

/// `params.kv_type_k` or `kv_type_v` (`what`) as the core's type.
fn kv_type(value: i32, what: &str) -> Result<KvType> {
    [KvType::F16, KvType::Q8_0, KvType::Q4_0].into_iter().find(|&t| mm_kv_type::from(t) as i32 == value).map_or_else(
        || fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("params.{what} is {value}, not an mm_kv_type")),
        Ok,
    )
}

/// The handle as the registry knows it.
fn handle_of(s: *const mm_session) -> usize {
    s as usize
}

/// Loads the text model, creates its context and loads the projector, as `params` says; on
/// success `*out` is a new session. On failure `*out` is NULL, everything loaded so far has been
/// freed, and `mm_last_error()` names the file and the cause. `params` and its strings are
/// borrowed for the call only. The caller owns the session and frees it with
/// `mm_session_destroy`.
#[no_mangle]
pub unsafe extern "C" fn mm_session_create(params: *const mm_session_params, out: *mut *mut mm_session) -> mm_status {
    boundary("mm_session_create", || {
        if out.is_null() {
            return fail(mm_status::MM_ERR_NULL_ARGUMENT, "out is NULL");
        }
        // SAFETY: `out` is not NULL; the caller's contract makes it writable.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes. The struct's
        // other fields are integers, floats and pointers, and its bools are those listed.
        let p = unsafe { versioned(params, params_default(), &PARAMS_VERSIONS, &PARAMS_BOOLS, "params") }?;
        let mut progress = |fraction: f32| match p.progress_callback {
            // SAFETY: the caller's callback, with the user data it gave.
            Some(cb) => unsafe { cb(p.progress_user_data, fraction) },
            None => true,
        };
        // SAFETY: the caller's contract: the strings are NULL or NUL-terminated.
        let (model_path, mmproj_path, media_marker, chat_template, rpc_servers) = unsafe {
            (
                c_str(p.model_path, "params.model_path")?,
                opt_c_str(p.mmproj_path, "params.mmproj_path")?,
                opt_c_str(p.media_marker, "params.media_marker")?,
                opt_c_str(p.chat_template, "params.chat_template")?,
                opt_c_str(p.rpc_servers, "params.rpc_servers")?,
            )
        };
        // SAFETY: the caller's contract: `n_tensor_split` floats at `tensor_split`.
        let tensor_split = unsafe { slice(p.tensor_split, p.n_tensor_split, "params.tensor_split") }?;
        let config = SessionConfig {
            model_path: PathBuf::from(model_path),
            mmproj_path: mmproj_path.map(PathBuf::from),
            n_ctx: p.n_ctx,
            n_batch: p.n_batch,
            n_threads: p.n_threads,
            n_gpu_layers: p.n_gpu_layers,
            rpc_servers: rpc_servers.map(str::to_owned),
            tensor_split: tensor_split.to_vec(),
            mmproj_use_gpu: p.mmproj_use_gpu,
            use_mmap: p.use_mmap,
            seed: p.seed,
            media_marker: media_marker.map(str::to_owned),
            chat_template: chat_template.map(str::to_owned),
            flash_attn: flash_attn(p.flash_attn)?,
            kv_type_k: kv_type(p.kv_type_k, "kv_type_k")?,
            kv_type_v: kv_type(p.kv_type_v, "kv_type_v")?,
            n_ubatch: p.n_ubatch,
            use_mlock: p.use_mlock,
            n_parallel: p.n_parallel,
            progress: if p.progress_callback.is_some() { Some(&mut progress) } else { None },
        };
        registry::check_process()?;
        let session = Session::create(config)?;
        let marker = CString::new(session.marker()).expect("markers have no NUL");
        let handle = registry::insert(session, marker)?;
        // SAFETY: checked writable above.
        unsafe { *out = handle as *mut mm_session };
        Ok(())
    })
}

/// A session's own settings for `mm_session_fork`. Get one from `mm_fork_params_default()`,
/// then set fields: `struct_size` tells the library which version of this struct the caller
/// has.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_fork_params {
    /// `sizeof(mm_fork_params)` of the caller's header; set by `mm_fork_params_default`.
    pub struct_size: u32,
    /// Context window of the fork in tokens; 0 (default): the parent's.
    pub n_ctx: u32,
    /// Most tokens evaluated in one step; 0 (default): the parent's.
    pub n_batch: u32,
    /// CPU threads; 0 (default): the parent's.
    pub n_threads: i32,
    /// Seed of requests that do not set one; `MM_SEED_DEFAULT` (default): the parent's.
    pub seed: u32,
    /// Start from a copy of the parent's conversation (KV cache and the record of what it
    /// holds), so that a shared prefix is evaluated once (default false: start empty).
    pub copy_conversation: bool,
    /// Reserved: set to zero.
    pub reserved0: [u8; 3],
}

/// The sizes of the released versions of `mm_fork_params`, oldest first.
const FORK_VERSIONS: [usize; 1] = [24];

/// The `bool` field of `mm_fork_params`, checked by [`versioned`] before it is read.
const FORK_BOOLS: [(usize, &str); 1] = [(std::mem::offset_of!(mm_fork_params, copy_conversation), "copy_conversation")];

/// Default fork parameters, with `struct_size` set: the parent's settings, an empty
/// conversation.
#[no_mangle]
pub extern "C" fn mm_fork_params_default() -> mm_fork_params {
    // SAFETY: all-zero is a valid mm_fork_params; fork refuses it (struct_size 0), so it is the
    // neutral value after a panic.
    boundary_value("mm_fork_params_default", unsafe { std::mem::zeroed() }, fork_params_default)
}

fn fork_params_default() -> mm_fork_params {
    mm_fork_params {
        struct_size: std::mem::size_of::<mm_fork_params>() as u32,
        n_ctx: 0,
        n_batch: 0,
        n_threads: 0,
        seed: MM_SEED_DEFAULT,
        copy_conversation: false,
        reserved0: [0; 3],
    }
}

/// Makes a new session that shares `s`'s text model and projector (nothing is loaded again)
/// with a context of its own, as `params` says (NULL: the defaults), and, when
/// `params->copy_conversation` is set, a copy of `s`'s conversation. A fork of a session created
/// with `n_parallel` > 1 instead joins that session's context and decodes together with it:
/// it keeps the context's sizes and threads (`params->n_ctx`, `n_batch` and `n_threads` must be
/// 0 or the parent's, or `MM_ERR_INVALID_ARGUMENT`), and takes a free slot, if any; when none is
/// free it still succeeds, and its requests wait for a slot (see `mm_session_params.n_parallel`). On success `*out` is the
/// new session, which the caller owns and frees with `mm_session_destroy`; sessions are the
/// only handles, and the shared weights are freed when the last session that uses them is
/// destroyed, in any order. Forks run in parallel on different threads; media encoding, one
/// encoder per model, waits for the fork that is encoding. If another thread is inside a call
/// on `s`, fork waits for it (from inside a callback of `s`: `MM_ERR_BUSY`). `params` is
/// borrowed for the call only.
#[no_mangle]
pub unsafe extern "C" fn mm_session_fork(
    s: *const mm_session,
    params: *const mm_fork_params,
    out: *mut *mut mm_session,
) -> mm_status {
    boundary("mm_session_fork", || {
        if out.is_null() {
            return fail(mm_status::MM_ERR_NULL_ARGUMENT, "out is NULL");
        }
        // SAFETY: `out` is not NULL; the caller's contract makes it writable.
        unsafe { *out = std::ptr::null_mut() };
        let p = if params.is_null() {
            fork_params_default()
        } else {
            // SAFETY: the caller's contract: `struct_size` readable bytes. The struct's other
            // fields are integers, and its bool is the one listed.
            unsafe { versioned(params, fork_params_default(), &FORK_VERSIONS, &FORK_BOOLS, "params") }?
        };
        let config = ForkConfig {
            n_ctx: p.n_ctx,
            n_batch: p.n_batch,
            n_threads: p.n_threads,
            seed: (p.seed != MM_SEED_DEFAULT).then_some(p.seed),
            copy_conversation: p.copy_conversation,
        };
        let (fork, marker) =
            with_session(s, |session| Ok((session.fork(&config)?, registry::get(handle_of(s))?.marker.clone())))?;
        let handle = registry::insert(fork, marker)?;
        // SAFETY: checked writable above.
        unsafe { *out = handle as *mut mm_session };
        Ok(())
    })
}

/// Frees everything the session owns: its context, and the projector and model when no other
/// session (a fork) shares them, in that order. When the model goes, the heap's free pages go
/// back to the system too (glibc's `malloc_trim`), so that resident memory falls back whichever
/// thread made the session. If another thread is inside a call on this session, the call is asked to stop
/// and destroy waits for it to return. From inside a callback of a call on the same session it is
/// refused with `MM_ERR_BUSY` (the session stays alive; destroy it after the call returns).
/// NULL is a no-op (`MM_OK`); a handle already destroyed gives `MM_ERR_INVALID_HANDLE` and
/// touches nothing.
#[no_mangle]
pub extern "C" fn mm_session_destroy(s: *mut mm_session) -> mm_status {
    boundary("mm_session_destroy", || {
        if s.is_null() {
            return Ok(());
        }
        if registry::in_call(handle_of(s)) {
            return registry::busy();
        }
        let entry = registry::remove(handle_of(s))?;
        entry.abort.close();
        let session = entry.lock().take();
        drop(session);
        Ok(())
    })
}

/// Runs `f` on the live session behind `s`, holding its lock. A call from inside a callback of
/// a call on the same session gets `MM_ERR_BUSY` instead of waiting for itself.
pub(crate) fn with_session<T>(s: *const mm_session, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
    if s.is_null() {
        return fail(mm_status::MM_ERR_NULL_ARGUMENT, "session is NULL");
    }
    let _mark = registry::CallMark::enter(handle_of(s))?;
    let entry = registry::get(handle_of(s))?;
    let mut guard = entry.lock();
    match guard.as_mut() {
        Some(session) if !entry.abort.is_closing() => f(session),
        _ => fail(mm_status::MM_ERR_INVALID_HANDLE, "the session was destroyed"),
    }
}

/// The marker that stands for a media item in this session's prompts. Owned by the session:
/// valid until it is destroyed. NULL for an invalid handle (see `mm_last_error`).
#[no_mangle]
pub extern "C" fn mm_session_marker(s: *const mm_session) -> *const c_char {
    boundary_value("mm_session_marker", std::ptr::null(), || {
        let marker = if s.is_null() {
            fail(mm_status::MM_ERR_NULL_ARGUMENT, "session is NULL")
        } else {
            registry::get(handle_of(s)).map(|e| e.marker.as_ptr())
        };
        marker.unwrap_or_else(|e| {
            set_last_error(&format!("mm_session_marker: {}", e.message));
            std::ptr::null()
        })
    })
}

/// Cancels the call running on the session, if any, from any thread: image encoding, prompt
/// evaluation and generation stop within a graph step, the call returns `MM_ERR_CANCELLED`, and
/// the session stays usable (its cache keeps only what was fully evaluated). Does not wait.
/// A call that starts later is not affected.
#[no_mangle]
pub extern "C" fn mm_session_cancel(s: *const mm_session) -> mm_status {
    boundary("mm_session_cancel", || {
        if s.is_null() {
            return fail(mm_status::MM_ERR_NULL_ARGUMENT, "session is NULL");
        }
        registry::get(handle_of(s))?.abort.cancel();
        Ok(())
    })
}

/// What a session is and holds.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_session_info {
    /// `sizeof(mm_session_info)` of the caller's header: set it before the call.
    pub struct_size: u32,
    /// Context window in positions.
    pub n_ctx: u32,
    /// Positions the conversation cache holds now.
    pub n_past: u32,
    /// Whether image and audio media are accepted.
    pub supports_vision: bool,
    pub supports_audio: bool,
    /// Reserved (zero).
    pub reserved0: [u8; 2],
    /// Sample rate (Hz) the audio encoder expects; 0 without one.
    pub audio_sample_rate: u32,
    /// Reserved (zero).
    pub reserved1: u32,
    /// The media marker; owned by the session, valid until it is destroyed.
    pub marker: *const c_char,
    /// Version 3. Sessions that can decode together in this session's context (its slots;
    /// 1: it decodes alone).
    pub n_parallel: u32,
    /// Version 3. Most tokens one step evaluates: this session's, or shared by the sessions that
    /// decode together.
    pub n_batch: u32,
}

/// Fills `*out` (set `out->struct_size` first) with the session's context size, cache use,
/// media support and marker.
#[no_mangle]
pub unsafe extern "C" fn mm_session_get_info(s: *const mm_session, out: *mut mm_session_info) -> mm_status {
    boundary("mm_session_get_info", || {
        let info = with_session(s, |session| Ok(session.info()))?;
        let marker = registry::get(handle_of(s))?.marker.as_ptr();
        let c = mm_session_info {
            struct_size: std::mem::size_of::<mm_session_info>() as u32,
            n_ctx: info.n_ctx,
            n_past: info.n_past,
            supports_vision: info.supports_vision,
            supports_audio: info.supports_audio,
            reserved0: [0; 2],
            audio_sample_rate: info.audio_sample_rate,
            reserved1: 0,
            marker,
            n_parallel: info.n_parallel,
            n_batch: info.n_batch,
        };
        // SAFETY: the caller's contract: NULL or `struct_size` writable bytes.
        unsafe { write_versioned(out, &c, std::mem::size_of::<u32>(), "out") }
    })
}

/// Bytes a session holds, by use and by place. "gpu" is any non-host device (CUDA, Vulkan,
/// Metal, and the devices of RPC servers); a CPU build without RPC servers reports 0 there. All
/// figures are exact: the sizes of the buffers llama.cpp and clip.cpp allocated (with mmap,
/// host model weights are file pages the kernel may share or evict).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mm_memory_stats {
    /// `sizeof(mm_memory_stats)` of the caller's header: set it before the call.
    pub struct_size: u32,
    /// Reserved (zero).
    pub reserved0: u32,
    /// Text model weights.
    pub model_host: u64,
    pub model_gpu: u64,
    /// KV cache.
    pub kv_host: u64,
    pub kv_gpu: u64,
    /// Compute buffers of the text model.
    pub compute_host: u64,
    pub compute_gpu: u64,
    /// Projector weights plus its compute buffers.
    pub projector_host: u64,
    pub projector_gpu: u64,
    /// Version 2. How many sessions share the model and projector bytes above (a session and
    /// its forks): those bytes are held once for all of them. KV cache and compute buffers
    /// are each session's own, unless `context_shared_by` is more than 1.
    pub shared_by: u32,
    /// Reserved (zero).
    pub reserved1: u32,
    /// Version 3. How many sessions share this session's context (`n_parallel` > 1): its
    /// compute buffers are held once for all of them, and `kv_host`/`kv_gpu` are this
    /// session's share (the KV cache divided by the slots, plus its KV cache parked in host
    /// memory while its slot is lent). 1: the context is the session's own.
    pub context_shared_by: u32,
    /// Reserved (zero).
    pub reserved2: u32,
}

impl From<MemoryStats> for mm_memory_stats {
    fn from(m: MemoryStats) -> Self {
        mm_memory_stats {
            struct_size: std::mem::size_of::<mm_memory_stats>() as u32,
            reserved0: 0,
            model_host: m.model_host,
            model_gpu: m.model_gpu,
            kv_host: m.kv_host,
            kv_gpu: m.kv_gpu,
            compute_host: m.compute_host,
            compute_gpu: m.compute_gpu,
            projector_host: m.projector_host,
            projector_gpu: m.projector_gpu,
            shared_by: m.shared_by,
            reserved1: 0,
            context_shared_by: m.context_shared_by,
            reserved2: 0,
        }
    }
}

/// Fills `*out` with the bytes the session holds, by use and by place (see `mm_memory_stats`);
/// set `out->struct_size` first.
#[no_mangle]
pub unsafe extern "C" fn mm_session_memory(s: *const mm_session, out: *mut mm_memory_stats) -> mm_status {
    boundary("mm_session_memory", || {
        // SAFETY: the caller's contract: NULL or a valid struct.
        unsafe { required(out as *const mm_memory_stats, "out") }?;
        let stats = mm_memory_stats::from(with_session(s, |session| Ok(session.memory()?))?);
        // SAFETY: the caller's contract: `struct_size` writable bytes.
        unsafe { write_versioned(out, &stats, std::mem::size_of::<u32>(), "out") }
    })
}
