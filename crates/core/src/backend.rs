//! One-time initialisation of llama.cpp's backends and log routing, shared by every session,
//! and the local devices it offers.

use once_cell::sync::OnceCell;

use llama_cpp_sys_2 as sys;

static INIT: OnceCell<()> = OnceCell::new();

/// Initialises llama.cpp once per process; cheap after the first call.
pub fn init() {
    INIT.get_or_init(|| {
        crate::log::install();
        // SAFETY: called once, before any other llama.cpp call of this library.
        unsafe { sys::llama_backend_init() };
    });
}

/// The local devices llama.cpp offloads a model's layers to by default: its GPUs, or its
/// integrated GPUs when it has no other. (llama.cpp also drops a GPU that two backends both
/// offer; the builds of this library have one GPU backend at most.)
pub fn local_gpus() -> Vec<sys::ggml_backend_dev_t> {
    init();
    // SAFETY: the registry is initialised, and `i` is below its device count.
    let devices: Vec<_> = (0..unsafe { sys::ggml_backend_dev_count() }).map(|i| unsafe { sys::ggml_backend_dev_get(i) }).collect();
    // SAFETY: the registry's devices live as long as the process.
    let of = |kind| devices.iter().copied().filter(|&d| unsafe { sys::ggml_backend_dev_type(d) } == kind).collect::<Vec<_>>();
    let gpus = of(sys::GGML_BACKEND_DEVICE_TYPE_GPU);
    if gpus.is_empty() {
        of(sys::GGML_BACKEND_DEVICE_TYPE_IGPU)
    } else {
        gpus
    }
}
