//! Memory: what a context and a projector hold, from llama.cpp's and clip.cpp's own accounting
//! (the shim in shim/memory.cpp), what the devices have free, and handing the heap's free pages
//! back to the system.

use llama_cpp_sys_2 as sys;

use crate::llama::context::Context;
use crate::llama::projector::Projector;

/// A context's bytes by use and place ("device": any non-host device), as the shim fills them.
#[repr(C)]
#[derive(Default)]
pub struct ContextBytes {
    pub model_host: u64,
    pub model_device: u64,
    pub kv_host: u64,
    pub kv_device: u64,
    pub compute_host: u64,
    pub compute_device: u64,
}

extern "C" {
    fn mm_shim_context_memory(ctx: *const sys::llama_context, out: *mut ContextBytes) -> i32;
    fn mm_shim_projector_memory(ctx: *const sys::mtmd_context, host: *mut u64, device: *mut u64) -> i32;
}

/// What a context holds, in bytes (llama.cpp's own accounting), or `None` when it fails.
pub fn context_bytes(ctx: &Context) -> Option<ContextBytes> {
    let mut b = ContextBytes::default();
    // SAFETY: the context is alive and `b` writable; the shim catches every exception.
    (unsafe { mm_shim_context_memory(ctx.as_ptr(), &mut b) } == 0).then_some(b)
}

/// What a projector holds (weights and compute buffers) on the host and on devices, in bytes
/// (clip.cpp's own accounting), or `None` when it fails.
pub fn projector_bytes(projector: &Projector) -> Option<(u64, u64)> {
    let (mut host, mut device) = (0, 0);
    // SAFETY: the projector is alive and the outputs writable; the shim catches every exception.
    (unsafe { mm_shim_projector_memory(projector.as_ptr(), &mut host, &mut device) } == 0).then_some((host, device))
}

/// Hands the heap's free pages back to the system when dropped (glibc's `malloc_trim`): the
/// last field of `Loaded`, so that it runs when a model is unloaded, after its memory and its
/// last context's are freed. Those compute buffers (tens of MB on real models) are freed into
/// the malloc arena of whichever thread created them, and glibc keeps such pages resident
/// (docs/reliability.md). Not done for a fork destroyed while its model stays loaded: the next
/// fork reuses those pages, and handing them back costs the next context their page faults
/// again. Other allocators return memory their own way; there this does nothing.
#[derive(Default)]
pub struct ReleaseFreeHeap;

impl Drop for ReleaseFreeHeap {
    fn drop(&mut self) {
        release_free_heap();
    }
}

/// Hands the heap's free pages back to the system now (see [`ReleaseFreeHeap`]); a failed
/// create calls it too, after freeing what it had loaded.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes any pad and only releases memory malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The memory free on every device llama.cpp knows (the host's available memory, and each
/// GPU's and remote server's free memory), in bytes: what a new context could take at most.
pub fn free_on_all_devices() -> u64 {
    // SAFETY: plain queries of ggml's device registry; `free` and `total` are written once each.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| {
                let (mut free, mut total) = (0usize, 0usize);
                sys::ggml_backend_dev_memory(sys::ggml_backend_dev_get(i), &mut free, &mut total);
                free as u64
            })
            .sum()
    }
}
