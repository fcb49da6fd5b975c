//! llama.cpp's RPC backend (ggml-rpc): the devices of a server, serving this machine's devices,
//! and the socket options of the relays' connections.

use std::ffi::CStr;
use std::net::TcpStream;

use llama_cpp_sys_2 as sys;

use crate::llama::backend::Device;
use crate::llama::guard;
use crate::util::error::Result;

/// ggml-rpc's devices of the server at `endpoint` ("host:port"), added to ggml's registry (and
/// never removed); the reason when ggml-rpc cannot use it.
pub fn server_devices(endpoint: &CStr) -> std::result::Result<Vec<Device>, String> {
    // SAFETY: the endpoint is NUL-terminated and outlives the call.
    let reg = unsafe { guard::mm_guard_rpc_add_server(endpoint.as_ptr()) };
    if reg.is_null() {
        return Err(guard::what());
    }
    // SAFETY: `reg` is a live backend registration, never freed by ggml-rpc.
    let n = unsafe { sys::ggml_backend_reg_dev_count(reg) };
    // SAFETY: as above, and `i` is below its device count.
    Ok((0..n).map(|i| Device(unsafe { sys::ggml_backend_reg_dev_get(reg, i) })).collect())
}

/// Serves `devices` at `endpoint` ("host:port") with `threads` CPU threads, tensors cached in
/// `cache_dir`; returns when the server stops (it cannot serve).
pub fn start_server(endpoint: &CStr, cache_dir: Option<&CStr>, threads: usize, devices: &[Device]) -> Result<i32> {
    let mut devices: Vec<sys::ggml_backend_dev_t> = devices.iter().map(|d| d.0).collect();
    // SAFETY: the strings are NUL-terminated (or NULL) and the devices are the registry's; all
    // outlive the call, which lasts as long as the server.
    let code = unsafe {
        guard::mm_guard_rpc_start_server(
            endpoint.as_ptr(),
            cache_dir.map_or(std::ptr::null(), |c| c.as_ptr()),
            threads,
            devices.len(),
            devices.as_mut_ptr(),
            guard::THREW,
        )
    };
    guard::check(code, "ggml_backend_rpc_start_server")
}

/// Makes a server whose machine vanishes (switched off, network cut: no connection is closed)
/// show as a failed read or write in about 20 s instead of never: keepalive probes after 5 s of
/// silence, 5 of them 2 s apart, and unacknowledged data given up after 20 s. A server whose
/// machine is up is waited for, however long it computes.
#[cfg(target_os = "linux")]
pub fn notice_vanishing(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 5),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 2),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 5),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 20_000),
    ];
    for (level, name, value) in options {
        let value: libc::c_int = value;
        // SAFETY: the descriptor is the open socket `stream` owns, and `value` is a c_int that
        // lives through the call, whose size is passed.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

/// Elsewhere only a closed connection is noticed (docs/rpc.md).
#[cfg(not(target_os = "linux"))]
pub fn notice_vanishing(_stream: &TcpStream) {}
