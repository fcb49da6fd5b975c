//! How much memory a session holds, by use and by place, from llama.cpp's and clip.cpp's own
//! accounting.

use llama_cpp_sys_2 as sys;

use crate::session::Session;
use crate::util::error::{fail, ErrorKind::*, Result};

/// Bytes a session holds. "gpu" is any non-host device (CUDA, Vulkan, Metal); a CPU build
/// reports 0 there. All figures are exact: the sizes of the buffers llama.cpp and clip.cpp
/// allocated (with mmap, host model weights are file pages the kernel may share or evict).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
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
    /// How many sessions share the model and projector figures above (forks of one another):
    /// those bytes are held once for all of them. KV cache and compute buffers are each
    /// session's own.
    pub shared_by: u32,
}

#[repr(C)]
#[derive(Default)]
struct ShimBytes {
    model_host: u64,
    model_device: u64,
    kv_host: u64,
    kv_device: u64,
    compute_host: u64,
    compute_device: u64,
}

extern "C" {
    fn mm_shim_context_memory(ctx: *const sys::llama_context, out: *mut ShimBytes) -> i32;
    fn mm_shim_projector_memory(ctx: *const sys::mtmd_context, host: *mut u64, device: *mut u64) -> i32;
}

impl Session {
    /// The bytes the session holds, by use and place.
    pub fn memory(&self) -> Result<MemoryStats> {
        let mut b = ShimBytes::default();
        // SAFETY: the context is alive and `b` writable; the shim catches every exception.
        if unsafe { mm_shim_context_memory(self.context().as_ptr(), &mut b) } != 0 {
            return fail(Internal, "llama.cpp's memory breakdown failed");
        }
        let mut s = MemoryStats {
            model_host: b.model_host,
            model_gpu: b.model_device,
            kv_host: b.kv_host,
            kv_gpu: b.kv_device,
            compute_host: b.compute_host,
            compute_gpu: b.compute_device,
            shared_by: self.weights_shared_by() as u32,
            ..Default::default()
        };
        if let Some(projector) = self.projector() {
            // SAFETY: the projector is alive and the outputs writable; the shim catches every
            // exception.
            if unsafe { mm_shim_projector_memory(projector.as_ptr(), &mut s.projector_host, &mut s.projector_gpu) } != 0
            {
                return fail(Internal, "clip.cpp's memory accounting failed");
            }
        }
        Ok(s)
    }
}

/// Hands the heap's free pages back to the system when dropped (glibc's `malloc_trim`): the
/// last field of `Weights`, so that it runs when a model is unloaded, after its memory and its
/// last context's are freed. Those compute buffers (tens of MB on real models) are freed into
/// the malloc arena of whichever thread created them, and glibc keeps such pages resident: a Go
/// program whose sessions were made on many threads held 460-550 MB with 3.5 MB in use. Not
/// done for a fork destroyed while its model stays loaded: the next fork reuses those pages,
/// and handing them back costs the next context their page faults again. Other allocators return
/// memory their own way; there this does nothing.
#[derive(Default)]
pub(crate) struct ReleaseFreeHeap;

impl Drop for ReleaseFreeHeap {
    fn drop(&mut self) {
        release_free_heap();
    }
}

/// Hands the heap's free pages back to the system now (see [`ReleaseFreeHeap`]); a failed
/// create calls it too, after freeing what it had loaded.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes any pad and only releases memory malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The memory free on every device llama.cpp knows (the host's available memory, and each
/// GPU's and remote server's free memory), in bytes: what a new context could take at most.
pub(crate) fn free_on_all_devices() -> u64 {
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
