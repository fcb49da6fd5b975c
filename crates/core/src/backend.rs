//! One-time initialisation of llama.cpp's backends and log routing, shared by every session.

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
