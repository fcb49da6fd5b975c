//! What sessions of one model share and the checks before it loads: the loaded text model and
//! projector ([`loaded::Loaded`]), the checks of the files ([`checked`], [`fingerprint`]) and the
//! RPC servers that hold some of its layers ([`rpc`], with what it knows of
//! ggml-rpc's protocol in `rpc_protocol.rs`).

pub mod checked;
pub mod fingerprint;
pub mod loaded;
pub mod template;
#[cfg(feature = "rpc")]
pub mod rpc;
#[cfg(not(feature = "rpc"))]
#[path = "rpc_off.rs"]
pub mod rpc;
#[cfg(feature = "rpc")]
mod rpc_protocol;
