//! The `extern "C"` layer: argument checks, type conversion and error recording around the safe
//! core. Every export runs its body inside `ffi::boundary`.

pub mod ask;
pub mod library;
pub mod session;
