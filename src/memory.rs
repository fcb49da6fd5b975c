//! How much memory a session holds, by use and by place, from llama.cpp's own accounting.

use std::ffi::CString;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Result};
use crate::session::Session;

/// Bytes a session holds. "gpu" is any non-host device (CUDA, Vulkan, Metal); a CPU build
/// reports 0 there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mm_memory_stats {
    /// `sizeof(mm_memory_stats)` of the caller's header: set it before the call.
    pub struct_size: u32,
    /// Text model weights. Exact: the sizes of llama.cpp's weight buffers (with mmap, host
    /// weights are file pages the kernel may share or evict).
    pub model_host: u64,
    pub model_gpu: u64,
    /// KV cache. Exact: llama.cpp's KV buffers.
    pub kv_host: u64,
    pub kv_gpu: u64,
    /// Compute buffers of the text model. Exact: llama.cpp's scheduler buffers.
    pub compute_host: u64,
    pub compute_gpu: u64,
    /// Projector weights plus compute buffers. Estimated: mtmd's dry run of the same load
    /// (metadata only), so allocator padding and buffers made later are not counted.
    pub projector_host: u64,
    pub projector_gpu: u64,
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
    fn mm_shim_projector_memory(path: *const std::os::raw::c_char, use_gpu: bool, n_threads: i32, host: *mut u64, device: *mut u64) -> i32;
}

/// Collects the figures of `session`; the projector's cost a dry-run load of its metadata.
pub fn stats(session: &Session) -> Result<mm_memory_stats> {
    let mut b = ShimBytes::default();
    if unsafe { mm_shim_context_memory(session.context().as_ptr(), &mut b) } != 0 {
        return fail(MM_ERR_INTERNAL, "llama.cpp's memory breakdown failed");
    }
    let mut s = mm_memory_stats {
        struct_size: std::mem::size_of::<mm_memory_stats>() as u32,
        model_host: b.model_host,
        model_gpu: b.model_device,
        kv_host: b.kv_host,
        kv_gpu: b.kv_device,
        compute_host: b.compute_host,
        compute_gpu: b.compute_device,
        ..Default::default()
    };
    if let Some((path, use_gpu, threads)) = session.projector_source() {
        let path_c = CString::new(path.to_string_lossy().as_bytes()).expect("checked at create");
        let status = unsafe { mm_shim_projector_memory(path_c.as_ptr(), *use_gpu, *threads, &mut s.projector_host, &mut s.projector_gpu) };
        if status != 0 {
            return fail(MM_ERR_PROJECTOR_LOAD, format!("projector {}: the memory dry run failed", path.display()));
        }
    }
    Ok(s)
}
