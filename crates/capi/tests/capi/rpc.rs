//! One model over several machines (crates/core/src/model/rpc.rs), in a build with the `rpc` feature
//! (`make test` runs these in its `test-rpc` step): layers on RPC servers give the same greedy
//! text as a local session; bad server lists and unreachable servers are refused; a server that
//! goes away in the middle of a request gives `MM_ERR_REMOTE` within a bounded time, never a
//! crash or a hang, and the session can then be destroyed. Servers run on 127.0.0.1: one inside
//! this process, on a thread, and `mm-rpc-server` child processes where one must be killed.

#![cfg(feature = "rpc")]

use std::ffi::{c_void, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::raw::c_char;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status::*;

/// How long a failure may take to show once a server is gone.
const BOUND: Duration = Duration::from_secs(10);

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something listens on `port` (a server starting).
fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "no server on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server inside this process, on a thread that serves until the process ends.
fn in_process_server() -> &'static CString {
    static SERVER: OnceLock<CString> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        std::thread::spawn(move || mm_core::serve_rpc("127.0.0.1", port, 1, None));
        wait_listening(port);
        CString::new(format!("127.0.0.1:{port}")).unwrap()
    })
}

/// An `mm-rpc-server` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    address: CString,
}

impl ServerProcess {
    fn start(port: u16) -> ServerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_mm-rpc-server"))
            .args(["--port", &port.to_string(), "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port);
        ServerProcess { child, address: CString::new(format!("127.0.0.1:{port}")).unwrap() }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn greedy(prompt: &CString, max_tokens: i32) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = max_tokens;
    a.temperature = 0.0;
    a
}

/// The answer of a new session made from `p`, which is destroyed after.
fn answer(p: &mm_session_params, a: &mm_ask_params) -> String {
    let s = create(p).unwrap_or_else(|e| panic!("{e:?}"));
    let text = ask(s, a).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(mm_session_destroy(s), MM_OK);
    text
}

fn memory(s: *mut mm_session) -> mm_memory_stats {
    let mut m = mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(s, &mut m) }, MM_OK, "{}", last_error());
    m
}

#[test]
fn layers_on_a_server_give_the_same_greedy_text() {
    let m = models();
    let prompt = CString::new("Describe <__media__> in a few words.").unwrap();
    let image = image_item(m);
    let mut a = greedy(&prompt, 24);
    a.media = &image;
    a.n_media = 1;
    let local = answer(&params(m), &a);
    assert!(!local.is_empty());

    let mut p = params(m);
    p.rpc_servers = in_process_server().as_ptr();
    let s = create(&p).unwrap_or_else(|e| panic!("{e:?}"));
    let stats = memory(s);
    assert!(stats.model_gpu > 0 && stats.kv_gpu > 0, "the layers and their KV cache are on the server: {stats:?}");
    assert_eq!(ask(s, &a).unwrap(), local, "every layer on the server");
    assert_eq!(mm_session_destroy(s), MM_OK);

    p.n_gpu_layers = 1;
    assert_eq!(answer(&p, &a), local, "one layer on the server, the others here");
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

#[test]
fn layers_split_over_two_servers() {
    let m = models();
    let prompt = CString::new("The capital of France is").unwrap();
    let a = greedy(&prompt, 16);
    let local = answer(&params(m), &a);
    let (one, two) = (ServerProcess::start(free_port()), ServerProcess::start(free_port()));
    let list = CString::new(format!("{},{}", one.address.to_str().unwrap(), two.address.to_str().unwrap())).unwrap();
    let mut p = params(m);
    p.rpc_servers = list.as_ptr();
    let shares = [1.0f32, 1.0];
    p.tensor_split = shares.as_ptr();
    p.n_tensor_split = 2;
    assert_eq!(answer(&p, &a), local);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

#[test]
fn bad_lists_and_unreachable_servers_are_refused() {
    let m = models();
    let mut p = params(m);
    for bad in ["", "host", "host:", ":50052", "host:0", "host:65536", "a:1,,b:2", "a:1,a:1"] {
        let list = CString::new(bad).unwrap();
        p.rpc_servers = list.as_ptr();
        let (status, message) = create(&p).unwrap_err();
        assert_eq!(status, MM_ERR_INVALID_ARGUMENT, "{bad:?}: {message}");
        assert!(message.contains("rpc_servers"), "{message}");
    }

    let nobody = CString::new(format!("127.0.0.1:{}", free_port())).unwrap();
    p.rpc_servers = nobody.as_ptr();
    let start = Instant::now();
    let (status, message) = create(&p).unwrap_err();
    assert_eq!(status, MM_ERR_REMOTE, "{message}");
    assert!(message.contains("cannot connect to 127.0.0.1:"), "{message}");
    assert!(start.elapsed() < BOUND);

    p.rpc_servers = in_process_server().as_ptr();
    let three = [1.0f32, 1.0, 1.0];
    p.tensor_split = three.as_ptr();
    p.n_tensor_split = 3;
    let (status, message) = create(&p).unwrap_err();
    assert_eq!(status, MM_ERR_INVALID_ARGUMENT, "{message}");
    assert!(message.contains("tensor_split has 3 entries, but there are 1 devices"), "{message}");
    let negative = [-1.0f32];
    p.tensor_split = negative.as_ptr();
    p.n_tensor_split = 1;
    assert_eq!(create(&p).unwrap_err().0, MM_ERR_INVALID_ARGUMENT);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

/// What the callback of the request that loses its server needs.
struct Killer {
    server: *mut ServerProcess,
    pieces: u32,
    killed_at: Option<Instant>,
}

/// Kills the server after the third piece of text: the next token's decode finds it gone.
unsafe extern "C" fn kill_server(user_data: *mut c_void, _text: *const c_char, _len: usize) -> bool {
    let k = unsafe { &mut *(user_data as *mut Killer) };
    k.pieces += 1;
    if k.pieces == 3 {
        let server = unsafe { &mut *k.server };
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        k.killed_at = Some(Instant::now());
    }
    true
}

#[test]
fn a_server_that_goes_away_mid_request_gives_an_error_and_the_session_can_be_destroyed() {
    let m = models();
    let prompt = CString::new("Count: one two three").unwrap();
    let reference = answer(&params(m), &greedy(&prompt, 8));
    let port = free_port();
    let mut server = ServerProcess::start(port);
    let mut p = params(m);
    p.rpc_servers = server.address.as_ptr();
    let s = create(&p).unwrap();
    let mut killer = Killer { server: &mut server, pieces: 0, killed_at: None };
    let mut a = greedy(&prompt, 400);
    a.on_text = Some(kill_server);
    a.user_data = &mut killer as *mut Killer as *mut c_void;
    let (status, message) = ask(s, &a).unwrap_err();
    let took = killer.killed_at.expect("the server was killed").elapsed();
    assert_eq!(status, MM_ERR_REMOTE, "{message}");
    assert!(message.contains("was lost"), "{message}");
    assert!(took < BOUND, "the failure took {took:?}");
    eprintln!("server killed mid-request: MM_ERR_REMOTE {took:?} later");

    // Every later call fails the same way, at once; new sessions on the server are refused
    // until this one is destroyed.
    assert_eq!(ask(s, &greedy(&prompt, 4)).unwrap_err().0, MM_ERR_REMOTE);
    let mut fork = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(s, std::ptr::null(), &mut fork) }, MM_ERR_REMOTE);
    let (status, message) = create(&p).unwrap_err();
    assert_eq!(status, MM_ERR_REMOTE);
    assert!(message.contains("destroy them"), "{message}");
    assert_eq!(mm_session_destroy(s), MM_OK);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));

    // The server is gone: a create says it cannot connect. Restarted, it serves again.
    let (status, message) = create(&p).unwrap_err();
    assert_eq!(status, MM_ERR_REMOTE);
    assert!(message.contains("cannot connect"), "{message}");
    let restarted = ServerProcess::start(port);
    p.rpc_servers = restarted.address.as_ptr();
    assert_eq!(answer(&p, &greedy(&prompt, 8)), reference);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

/// Tokens per second of greedy generation over `n` tokens, on a new session made from `p`.
fn tokens_per_second(p: &mm_session_params, n: i32) -> f64 {
    let prompt = CString::new("Once upon a time").unwrap();
    let s = create(p).unwrap();
    ask(s, &greedy(&prompt, n)).unwrap();
    let mut info = ask_info();
    assert_eq!(unsafe { ::mm_session::conversation::mm_session_last_ask(s, &mut info) }, MM_OK);
    assert_eq!(mm_session_destroy(s), MM_OK);
    info.tokens_generated as f64 * 1e3 / info.generate_ms
}

/// What layers on a server over loopback cost per generated token (docs/performance.md has the figures): one
/// thread, the test model (`MM_TEST_MODEL` when set).
#[test]
fn loopback_cost() {
    let m = models();
    let mut p = params(m);
    p.mmproj_path = std::ptr::null();
    let local = tokens_per_second(&p, 64);
    p.rpc_servers = in_process_server().as_ptr();
    let remote = tokens_per_second(&p, 64);
    let added_ms = 1e3 / remote - 1e3 / local;
    println!(
        "rpc_cost model={} local_tok_s={local:.1} rpc_tok_s={remote:.1} added_ms_per_token={added_ms:.2}",
        m.model.to_str().unwrap()
    );
}

/// Commands of RPC protocol 7 that have a reply (ggml-rpc.cpp's `rpc_serve_client`).
const COMMANDS_WITH_REPLY: [u8; 11] = [0, 1, 2, 3, 7, 8, 9, 11, 13, 14, 15];

/// Rewrites the payload of a reply.
type Lie = fn(&mut [u8]);

/// A proxy in front of a real server that rewrites the payload of its replies to `cmd` with
/// `lie`, for every connection; its address.
fn lying_proxy(server: &CString, cmd: u8, lie: Lie) -> CString {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = CString::new(listener.local_addr().unwrap().to_string()).unwrap();
    let upstream = server.to_str().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(mut client), Ok(mut server)) = (client, TcpStream::connect(&upstream)) else { continue };
            std::thread::spawn(move || -> std::io::Result<()> {
                loop {
                    let mut head = [0u8; 9];
                    client.read_exact(&mut head)?;
                    let mut request = vec![0u8; u64::from_le_bytes(head[1..].try_into().unwrap()) as usize];
                    client.read_exact(&mut request)?;
                    server.write_all(&head)?;
                    server.write_all(&request)?;
                    if COMMANDS_WITH_REPLY.contains(&head[0]) {
                        let mut size = [0u8; 8];
                        server.read_exact(&mut size)?;
                        let mut reply = vec![0u8; u64::from_le_bytes(size) as usize];
                        server.read_exact(&mut reply)?;
                        if head[0] == cmd {
                            lie(&mut reply);
                        }
                        client.write_all(&size)?;
                        client.write_all(&reply)?;
                    }
                }
            });
        }
    });
    address
}

/// A server whose replies are of the right size but false (found by the third outside tester:
/// an alignment of 3 or an allocation of 1 byte aborted the process in ggml-alloc, a device count
/// of 0xFFFFFFFF took 16.7 GB, then aborted): the relay checks the values and loses the server.
#[test]
fn a_server_that_lies_is_lost_not_believed() {
    let m = models();
    let server = ServerProcess::start(free_port());
    let lies: [(u8, Lie, &str); 3] = [
        (1, |r| r.copy_from_slice(&3u64.to_le_bytes()), "an alignment of 3"),
        (0, |r| r[8..16].copy_from_slice(&1u64.to_le_bytes()), "a buffer of 1 bytes"),
        (15, |r| r.copy_from_slice(&u32::MAX.to_le_bytes()), "4294967295 devices"),
    ];
    for (cmd, lie, names) in lies {
        let proxy = lying_proxy(&server.address, cmd, lie);
        let mut p = params(m);
        p.rpc_servers = proxy.as_ptr();
        let (status, message) = create(&p).unwrap_err();
        assert_eq!(status, MM_ERR_REMOTE, "{message}");
        assert!(message.contains(names), "{message}");
        assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
    }
}

/// A server that sends its handshake a byte at a time is given up on after the handshake's
/// deadline (10 s for the whole of it), not after 10 s without a byte.
#[test]
fn a_handshake_that_trickles_is_given_up() {
    let m = models();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = CString::new(listener.local_addr().unwrap().to_string()).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            std::thread::spawn(move || {
                let mut hello = [0u8; 33];
                if client.read_exact(&mut hello).is_err() {
                    return;
                }
                // A valid reply: its size, then protocol 7.0.0 and no capabilities.
                let mut reply = 28u64.to_le_bytes().to_vec();
                reply.extend([7u8, 0, 0, 0]);
                reply.resize(36, 0);
                for byte in reply {
                    if client.write_all(&[byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    let mut p = params(m);
    p.rpc_servers = address.as_ptr();
    let (status, message) = create(&p).unwrap_err();
    assert_eq!(status, MM_ERR_REMOTE, "{message}");
    assert!(message.contains("did not answer the handshake within 10 s"), "{message}");
}
