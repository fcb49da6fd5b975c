//! The server to run on the machines that hold a session's offloaded layers:
//! `mm-rpc-server [--host H] [--port P] [--threads N] [--cache DIR]` (H: an IPv4 address).
//!
//! It serves this machine's GPUs (or its CPU, with N threads) over llama.cpp's RPC protocol, to
//! sessions that name it in `mm_session_params.rpc_servers` (and to llama.cpp's own `--rpc`
//! clients of the same version). It listens on 127.0.0.1:50052 by default. The protocol has no
//! authentication and no encryption: never let the port face an open network (docs/rpc.md).
//! `--cache DIR` keeps large tensors on disk, so that a model is sent once, not at every load.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mm-rpc-server [--host H] [--port P] [--threads N] [--cache DIR]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 50052;
    let mut threads = mm_core::default_threads() as usize;
    let mut cache = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let parsed = match arg.as_str() {
            "--host" => value().map(|v| host = v),
            "--port" => value()
                .and_then(|v| v.parse().ok().filter(|&p| p > 0).ok_or(format!("--port {v}: not a port (1 to 65535)")))
                .map(|p| port = p),
            "--threads" => value()
                .and_then(|v| {
                    v.parse().ok().filter(|&n| n > 0).ok_or(format!("--threads {v}: not a thread count (1 or more)"))
                })
                .map(|n| threads = n),
            "--cache" => value().map(|v| cache = Some(PathBuf::from(v))),
            _ => Err(format!("unknown argument {arg}")),
        };
        if let Err(e) = parsed {
            eprintln!("mm-rpc-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if host != "127.0.0.1" {
        eprintln!("mm-rpc-server: WARNING: listening on {host}: anyone who can reach this port can run computations here and read what the sessions send. Never expose it to an open network.");
    }
    let Err(e) = mm_core::serve_rpc(&host, port, threads, cache.as_deref());
    eprintln!("mm-rpc-server: {e}");
    ExitCode::FAILURE
}
