//! Without the `rpc` feature a session cannot name RPC servers: the same interface as `rpc.rs`,
//! with no value of [`Remote`] to call it on.

use crate::llama::backend::Device;
use crate::util::error::{fail, ErrorKind::*, Result};

/// No RPC servers: this type has no value.
pub(crate) enum Remote {}

impl Remote {
    /// `None` without a list; a list is refused, saying how to build with RPC.
    pub(crate) fn connect(list: Option<&str>) -> Result<Option<Remote>> {
        match list {
            None => Ok(None),
            Some(_) => fail(
                Unsupported,
                "rpc_servers needs llama.cpp's RPC backend, and this library was built without it: build it with the cargo feature `rpc` (on by default; llama.cpp needs GGML_RPC=ON, which .cargo/config.toml sets)",
            ),
        }
    }

    pub(crate) fn devices(&self) -> Result<Vec<Device>> {
        match *self {}
    }

    pub(crate) fn check(&self) -> Result<()> {
        match *self {}
    }
}
