//! One-time initialisation of llama.cpp's backends and log routing, shared by every session,
//! the local devices it offers, and what the build runs on.

use std::ffi::{CStr, CString};

use once_cell::sync::OnceCell;

use llama_cpp_sys_2 as sys;

static INIT: OnceCell<()> = OnceCell::new();

/// Initialises llama.cpp once per process; cheap after the first call.
pub fn init() {
    INIT.get_or_init(|| {
        super::log_hook::install();
        super::chat::quiet_common_log();
        // SAFETY: called once, before any other llama.cpp call of this library.
        unsafe { sys::llama_backend_init() };
    });
}

/// A device of ggml's registry (a local GPU or CPU, or an RPC server's device): it lives as long
/// as the process.
#[derive(Clone, Copy)]
pub struct Device(pub(super) sys::ggml_backend_dev_t);

/// The local devices llama.cpp offloads a model's layers to by default: its GPUs, or its
/// integrated GPUs when it has no other. (llama.cpp also drops a GPU that two backends both
/// offer; the builds of this library have one GPU backend at most.)
pub fn local_gpus() -> Vec<Device> {
    init();
    // SAFETY: the registry is initialised, and `i` is below its device count.
    let devices: Vec<_> =
        (0..unsafe { sys::ggml_backend_dev_count() }).map(|i| unsafe { sys::ggml_backend_dev_get(i) }).collect();
    // SAFETY: the registry's devices live as long as the process.
    let of = |kind| {
        devices.iter().copied().filter(|&d| unsafe { sys::ggml_backend_dev_type(d) } == kind).collect::<Vec<_>>()
    };
    let gpus = of(sys::GGML_BACKEND_DEVICE_TYPE_GPU);
    let gpus = if gpus.is_empty() { of(sys::GGML_BACKEND_DEVICE_TYPE_IGPU) } else { gpus };
    gpus.into_iter().map(Device).collect()
}

/// The CPU device, if the backends offer one (what an RPC server serves without GPUs).
#[cfg(feature = "rpc")]
pub fn cpu_device() -> Option<Device> {
    init();
    // SAFETY: the backends are initialised; returns NULL or a device of the registry.
    let cpu = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
    (!cpu.is_null()).then_some(Device(cpu))
}

/// The most devices a model's layers can be split over (llama.cpp's split array's length).
pub fn max_devices() -> usize {
    // SAFETY: a constant of the library.
    unsafe { sys::llama_max_devices() }
}

/// Whether this system can lock a model's memory in RAM.
pub fn supports_mlock() -> bool {
    // SAFETY: a plain query.
    unsafe { sys::llama_supports_mlock() }
}

/// The CPU the build targets: "native" (the building machine's instruction set, the default of
/// source builds) or the baseline of a portable build ("x86-64-v3", ...); see build.rs.
const TARGET_CPU: &str = env!("MM_TARGET_CPU");

/// What this build runs on, for people and bug reports: the library's version, the CPU it was
/// compiled for, and each of llama.cpp's backends with the features it was compiled with, e.g.
/// "mm-session 0.3.0; target-cpu: native; backends: CPU (SSE3 AVX AVX2 F16C FMA AVX512 ...)".
pub fn build_info() -> &'static CStr {
    static INFO: OnceCell<CString> = OnceCell::new();
    INFO.get_or_init(|| {
        init();
        // SAFETY: the registry is built by llama_backend_init and lives for the process.
        let n = unsafe { sys::ggml_backend_reg_count() };
        let backends: Vec<String> = (0..n).map(backend_features).collect();
        let text = format!(
            "mm-session {}; target-cpu: {TARGET_CPU}; backends: {}",
            env!("CARGO_PKG_VERSION"),
            backends.join(", ")
        );
        CString::new(text).expect("no NUL in names")
    })
}

/// "NAME (FEATURE FEATURE=VALUE ...)" for backend `index` of ggml's registry.
fn backend_features(index: usize) -> String {
    let text = |p: *const std::os::raw::c_char| {
        // SAFETY: ggml's names and values are static NUL-terminated strings (or NULL).
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: `index` is below ggml_backend_reg_count; the registry entry lives for the process.
    let reg = unsafe { sys::ggml_backend_reg_get(index) };
    // SAFETY: as above; the name is static.
    let name = text(unsafe { sys::ggml_backend_reg_name(reg) });
    // SAFETY: looks up an optional function of the backend by its documented name.
    let get = unsafe { sys::ggml_backend_reg_get_proc_address(reg, c"ggml_backend_get_features".as_ptr()) };
    if get.is_null() {
        return name;
    }
    // SAFETY: the function found under this name has the ggml_backend_get_features_t type.
    let get: unsafe extern "C" fn(sys::ggml_backend_reg_t) -> *mut sys::ggml_backend_feature =
        unsafe { std::mem::transmute(get) };
    let mut features = Vec::new();
    // SAFETY: the list ends with an entry whose name is NULL and lives for the process.
    unsafe {
        let mut f = get(reg);
        while !f.is_null() && !(*f).name.is_null() {
            let value = text((*f).value);
            features.push(if value == "1" { text((*f).name) } else { format!("{}={value}", text((*f).name)) });
            f = f.add(1);
        }
    }
    format!("{name} ({})", features.join(" "))
}
