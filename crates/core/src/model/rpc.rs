//! One model over several machines: llama.cpp's RPC backend (ggml-rpc) puts a session's
//! offloaded layers on servers (`mm-rpc-server`, or llama.cpp's `rpc-server`), through a relay
//! that keeps a server that goes away from ending the process.
//!
//! Why a relay: ggml-rpc aborts the process (GGML_ABORT) when it cannot connect to a server,
//! when the handshake fails, and when a server stops answering in the middle of a request, and
//! its writes to a closed connection raise SIGPIPE. The failures in the middle of a request
//! happen on ggml-rpc's own dispatcher thread, where no exception barrier can catch anything (a
//! C++ exception thrown there ends in std::terminate) while the thread that asked waits for that
//! dispatcher forever. So ggml-rpc never talks to a server directly: it talks to a relay in this
//! process, one per server (a thread listening on 127.0.0.1 that refuses other users'
//! connections), which forwards every message both ways. When the server goes away
//! (its connection closes or fails, or it answers something malformed), the relay answers the
//! rest of that connection itself with replies of the sizes ggml-rpc expects (zeros, failed
//! allocations), so ggml-rpc never sees a failure; it counts the loss, and every session whose
//! model is on that server fails with `Remote` from then on and can be destroyed.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::llama::backend::{self, Device};
use crate::llama::rpc::{self, notice_vanishing};
use crate::model::rpc_protocol::{
    check_version, false_reply, stand_in, Reply, CMD_HELLO, HELLO_REPLY, HELLO_REQUEST, REPLIES,
};
use crate::util::error::{fail, ErrorKind::*, Result};

/// The most servers one session may name (ggml-rpc's `GGML_RPC_MAX_SERVERS`).
const MAX_SERVERS: usize = 16;
/// How long connecting to a server, and its whole handshake at create, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a create waits for the connections of destroyed sessions that lost a server to
/// close (the relay's thread sees each close a moment after ggml-rpc makes it).
const LOST_CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Replies up to this size are read whole and checked before ggml-rpc sees them.
const CHECKED_REPLY: u64 = 16;
/// The largest request of a command that has a reply (GET_ALLOC_SIZE, 3.2 KB, is the largest).
const MAX_SMALL_REQUEST: u64 = 64 * 1024;
/// Bytes copied at a time.
const CHUNK: usize = 256 * 1024;

/// The servers of `list` ("host:port,host:port"), checked: each a host and a port from 1 to
/// 65535, none twice, at most [`MAX_SERVERS`].
fn parse_servers(list: &str) -> Result<Vec<String>> {
    let servers: Vec<&str> = list.split(',').map(str::trim).collect();
    if servers.len() > MAX_SERVERS {
        return fail(InvalidArgument, format!("rpc_servers names {} servers; at most {MAX_SERVERS}", servers.len()));
    }
    for (i, server) in servers.iter().enumerate() {
        let valid = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return fail(InvalidArgument, format!("rpc_servers: \"{server}\" is not host:port (a host, and a port from 1 to 65535; servers separated by commas)"));
        }
        if servers[..i].contains(server) {
            return fail(InvalidArgument, format!("rpc_servers names {server} twice"));
        }
    }
    Ok(servers.into_iter().map(String::from).collect())
}

/// The relay of one server: where ggml-rpc connects for it, and what became of its connections.
struct Relay {
    /// The server, as the caller named it.
    server: String,
    /// The relay's own address, which ggml-rpc knows the server by.
    local: SocketAddr,
    /// Connections that lost the server so far (sessions compare it with the count at create).
    losses: AtomicU64,
    /// Connections that lost the server and that ggml-rpc still holds open. ggml-rpc keeps one
    /// connection per server for every model on it, so a new session would be served by the lost
    /// one: creates are refused until the sessions of before the loss are destroyed.
    lost_open: AtomicUsize,
    /// Connections relayed to a live server now.
    live: AtomicUsize,
    /// Sessions' models on this server now (their `Remote`s).
    users: AtomicUsize,
    /// Why the server was last lost.
    reason: Mutex<String>,
}

/// The relays of this process, one per server, each started on first use and kept for the life
/// of the process, as ggml-rpc keeps its own state for every server it has known.
static RELAYS: Mutex<Vec<Arc<Relay>>> = Mutex::new(Vec::new());

impl Relay {
    /// The relay of `server`, started if it is the first time.
    fn of(server: &str) -> Result<Arc<Relay>> {
        let mut relays = RELAYS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(relay) = relays.iter().find(|r| r.server == server) {
            return Ok(relay.clone());
        }
        let relay = Relay::start(server)
            .or_else(|e| fail(Remote, format!("could not start the relay to RPC server {server}: {e}")))?;
        relays.push(relay.clone());
        Ok(relay)
    }

    fn start(server: &str) -> io::Result<Arc<Relay>> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let relay = Arc::new(Relay {
            server: server.to_string(),
            local: listener.local_addr()?,
            losses: AtomicU64::new(0),
            lost_open: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
            reason: Mutex::new(String::new()),
        });
        let serving = relay.clone();
        std::thread::Builder::new().name("mm-rpc-relay".into()).spawn(move || serving.serve(listener))?;
        Ok(relay)
    }

    /// Relays ggml-rpc's connections one at a time, as ggml-rpc opens them (one per server at a
    /// time) and as RPC servers serve them (one client at a time).
    fn serve(&self, listener: TcpListener) {
        loop {
            match listener.accept() {
                Ok((client, peer)) if same_user(peer, self.local) => Link::open(self, client).run(),
                Ok(_) => {}
                // Out of descriptors, say: wait instead of spinning.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Why the server was last lost.
    fn reason(&self) -> String {
        self.reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Records that a connection lost the server, and why.
    fn lose(&self, why: String) {
        *self.reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = why;
        self.losses.fetch_add(1, Ordering::SeqCst);
        self.lost_open.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether a loopback connection from `peer` to `local` may use the relay: refused when
/// /proc/net/tcp shows its socket owned by another user, so that the relay does not open the
/// server to every local user. A connection the table does not show is accepted: refusing one
/// of ggml-rpc's own would make it abort the process.
#[cfg(target_os = "linux")]
fn same_user(peer: SocketAddr, local: SocketAddr) -> bool {
    use std::os::unix::fs::MetadataExt;
    let hex = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V4(ip) => format!("{:08X}:{:04X}", u32::from_ne_bytes(ip.octets()), a.port()),
        std::net::IpAddr::V6(_) => String::new(),
    };
    let (Ok(me), Ok(table)) = (std::fs::metadata("/proc/self"), std::fs::read_to_string("/proc/net/tcp")) else {
        return true;
    };
    let (from, to, uid) = (hex(peer), hex(local), me.uid().to_string());
    let owner = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 7 && f[1] == from && f[2] == to)
        .map(|f| f[7].to_string());
    owner.is_none_or(|owner| owner == uid)
}

/// Elsewhere any local process may connect (docs/rpc.md: only on Linux does the relay check).
#[cfg(not(target_os = "linux"))]
fn same_user(_peer: SocketAddr, _local: SocketAddr) -> bool {
    true
}

/// Connects to `server`, trying each address it resolves to.
fn connect(server: &str) -> std::result::Result<TcpStream, String> {
    let addresses = server.to_socket_addrs().map_err(|e| format!("cannot resolve {server}: {e}"))?;
    let mut why = format!("{server} resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                notice_vanishing(&stream);
                return Ok(stream);
            }
            Err(e) => why = format!("cannot connect to {server}: {e}"),
        }
    }
    Err(why)
}

/// Checks that `server` answers ggml-rpc's handshake with a protocol version this library
/// speaks, all of it within [`HANDSHAKE_TIMEOUT`] (a server that sends its reply a byte at a
/// time is not waited for past it).
fn handshake(server: &str) -> std::result::Result<(), String> {
    let mut stream = connect(server)?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut hello = [0u8; 9 + HELLO_REQUEST];
    hello[0] = CMD_HELLO;
    hello[1..9].copy_from_slice(&(HELLO_REQUEST as u64).to_le_bytes());
    let mut reply = [0u8; 8 + HELLO_REPLY];
    match stream.write_all(&hello).and_then(|_| read_exact_by(&mut stream, &mut reply, deadline)) {
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(format!(
            "{server} accepted the connection but did not answer the handshake within {} s: an RPC server serves one client at a time (is another one connected to it?), or this is not an RPC server",
            HANDSHAKE_TIMEOUT.as_secs()
        )),
        Err(e) => Err(format!("{server} closed the connection during the handshake ({e}): is it an RPC server?")),
        Ok(()) if reply[..8] != (HELLO_REPLY as u64).to_le_bytes() => Err(format!("{server} answered the handshake with something else: is it an RPC server?")),
        Ok(()) => check_version(server, &reply[8..]),
    }
}

/// `read_exact` that gives up at `deadline` (`TimedOut`), however the bytes trickle in.
fn read_exact_by(stream: &mut TcpStream, mut buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One connection of ggml-rpc, relayed to the server until ggml-rpc closes it. Once the server
/// is lost, the relay answers in its place.
struct Link<'a> {
    relay: &'a Relay,
    client: TcpStream,
    /// None once the server is lost.
    server: Option<TcpStream>,
    buf: Vec<u8>,
}

impl<'a> Link<'a> {
    fn open(relay: &'a Relay, client: TcpStream) -> Link<'a> {
        let _ = client.set_nodelay(true);
        let server = match connect(&relay.server) {
            Ok(server) => {
                relay.live.fetch_add(1, Ordering::SeqCst);
                Some(server)
            }
            Err(why) => {
                relay.lose(why);
                None
            }
        };
        Link { relay, client, server, buf: vec![0; CHUNK] }
    }

    fn run(mut self) {
        while self.command() {}
        let count = if self.server.is_some() { &self.relay.live } else { &self.relay.lost_open };
        count.fetch_sub(1, Ordering::SeqCst);
    }

    /// Marks the server lost for the rest of this connection.
    fn lose(&mut self, why: String) {
        if self.server.take().is_some() {
            self.relay.live.fetch_sub(1, Ordering::SeqCst);
            self.relay.lose(why);
        }
    }

    /// Relays one command and its reply; false when ggml-rpc has closed the connection.
    fn command(&mut self) -> bool {
        let mut head = [0u8; 9];
        if self.client.read_exact(&mut head).is_err() {
            return false;
        }
        let size = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
        let reply = REPLIES.get(head[0] as usize).copied().unwrap_or(Reply::None);
        if reply == Reply::None {
            return self.forward_request(&head, size);
        }
        if size > MAX_SMALL_REQUEST {
            // Not ggml-rpc of protocol 7 (guard.cpp checks the version at build time).
            return false;
        }
        let mut request = vec![0u8; size as usize];
        if self.client.read_exact(&mut request).is_err() {
            return false;
        }
        if head[0] == CMD_HELLO {
            // No transport upgrade (RDMA) through the relay: both ends see no capabilities.
            request.fill(0);
        }
        if let Some(server) = &mut self.server {
            if let Err(e) = server.write_all(&head).and_then(|_| server.write_all(&request)) {
                self.lose(format!("{} went away: {e}", self.relay.server));
            }
        }
        let expected = match reply {
            Reply::Fixed(n) => n,
            _ => request
                .len()
                .checked_sub(8)
                .map_or(0, |at| u64::from_le_bytes(request[at..].try_into().expect("8 bytes"))),
        };
        self.forward_reply(head[0], &request, expected)
    }

    /// Forwards a request of `size` bytes that has no reply, streaming it (tensor data and
    /// graphs can be large); once the server is lost it is read and dropped.
    fn forward_request(&mut self, head: &[u8], size: u64) -> bool {
        if let Some(server) = &mut self.server {
            if let Err(e) = server.write_all(head) {
                self.lose(format!("{} went away: {e}", self.relay.server));
            }
        }
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            if self.client.read_exact(&mut self.buf[..n]).is_err() {
                return false;
            }
            if let Some(server) = &mut self.server {
                if let Err(e) = server.write_all(&self.buf[..n]) {
                    self.lose(format!("{} went away: {e}", self.relay.server));
                }
            }
            left -= n as u64;
        }
        true
    }

    /// Sends ggml-rpc the server's reply of `expected` bytes to `cmd` (after `request`), or,
    /// once the server is lost (before or during the reply), a stand-in for the rest. A small
    /// reply is read whole and checked first: a false one loses the server.
    fn forward_reply(&mut self, cmd: u8, request: &[u8], expected: u64) -> bool {
        if self.client.write_all(&expected.to_le_bytes()).is_err() {
            return false;
        }
        let mut sent = 0;
        if let Some(server) = &mut self.server {
            let mut size = [0u8; 8];
            let read = server.read_exact(&mut size);
            if let Err(e) = read {
                self.lose(format!("{} went away: {e}", self.relay.server));
            } else if u64::from_le_bytes(size) != expected {
                self.lose(format!(
                    "{} answered command {cmd} with {} bytes instead of {expected}",
                    self.relay.server,
                    u64::from_le_bytes(size)
                ));
            } else if cmd == CMD_HELLO {
                return self.forward_hello();
            } else if expected <= CHECKED_REPLY {
                let mut reply = [0u8; CHECKED_REPLY as usize];
                let reply = &mut reply[..expected as usize];
                match server.read_exact(reply) {
                    Err(e) => self.lose(format!("{} went away: {e}", self.relay.server)),
                    Ok(()) => match false_reply(cmd, request, reply) {
                        None => return self.client.write_all(reply).is_ok(),
                        Some(why) => self.lose(format!("{} answered command {cmd} with {why}", self.relay.server)),
                    },
                }
            }
        }
        while sent < expected {
            let n = (expected - sent).min(CHUNK as u64) as usize;
            let Some(server) = &mut self.server else { break };
            if let Err(e) = server.read_exact(&mut self.buf[..n]) {
                self.lose(format!("{} went away: {e}", self.relay.server));
                break;
            }
            if self.client.write_all(&self.buf[..n]).is_err() {
                return false;
            }
            sent += n as u64;
        }
        self.send_stand_in(cmd, sent, expected)
    }

    /// Sends bytes `from..to` of a stand-in reply to `cmd`.
    fn send_stand_in(&mut self, cmd: u8, from: u64, to: u64) -> bool {
        let start = stand_in(cmd);
        let mut at = from;
        while at < to {
            let n = (to - at).min(CHUNK as u64) as usize;
            let chunk = &mut self.buf[..n];
            chunk.fill(0);
            let offset = (at as usize).min(start.len());
            let k = (start.len() - offset).min(n);
            chunk[..k].copy_from_slice(&start[offset..offset + k]);
            if self.client.write_all(chunk).is_err() {
                return false;
            }
            at += n as u64;
        }
        true
    }

    /// Forwards the server's handshake reply when its version is one ggml-rpc accepts; a server
    /// of another version is lost (ggml-rpc would abort on it).
    fn forward_hello(&mut self) -> bool {
        let mut reply = [0u8; HELLO_REPLY];
        let Some(server) = &mut self.server else { return false };
        let read = server.read_exact(&mut reply).map_err(|e| format!("{} went away: {e}", self.relay.server));
        match read.and_then(|_| check_version(&self.relay.server, &reply)) {
            Ok(()) => {
                reply[4..].fill(0);
                self.client.write_all(&reply).is_ok()
            }
            Err(why) => {
                self.lose(why);
                self.send_stand_in(CMD_HELLO, 0, HELLO_REPLY as u64)
            }
        }
    }
}

/// The RPC servers a model's layers are on, each with its relay's loss count when the session
/// connected: a later loss means the model's layers there are gone.
pub(crate) struct Remote {
    relays: Vec<(Arc<Relay>, u64)>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        for (relay, _) in &self.relays {
            relay.users.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Remote {
    /// Connects to the servers of `list` ("host:port,host:port"; `None`: no servers): checks the
    /// list, and that each server answers the handshake with this library's protocol version and
    /// is not still held by sessions from before it went away.
    pub(crate) fn connect(list: Option<&str>) -> Result<Option<Remote>> {
        let Some(list) = list else { return Ok(None) };
        // Counted as a user of each relay as it is pushed, so that a failure further on (which
        // drops it) counts it out.
        let mut remote = Remote { relays: Vec::new() };
        for server in parse_servers(list)? {
            let relay = Relay::of(&server)?;
            if relay.lost_open.load(Ordering::SeqCst) > 0 && relay.users.load(Ordering::SeqCst) == 0 {
                // The sessions that lost it are destroyed: ggml-rpc has closed their
                // connections, and the relay's thread is about to see it.
                let deadline = Instant::now() + LOST_CLOSE_WAIT;
                while relay.lost_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            if relay.lost_open.load(Ordering::SeqCst) > 0 {
                return fail(Remote, format!("RPC server {server} went away ({}) while sessions used it, and some of them still exist: destroy them before creating new sessions on it", relay.reason()));
            }
            // A server with a connection relayed now is answering (and would not answer a second
            // connection before that one closes).
            if relay.live.load(Ordering::SeqCst) == 0 {
                handshake(&server).or_else(|why| fail(Remote, format!("RPC server {why}")))?;
            }
            let losses = relay.losses.load(Ordering::SeqCst);
            relay.users.fetch_add(1, Ordering::SeqCst);
            remote.relays.push((relay, losses));
        }
        Ok(Some(remote))
    }

    /// ggml-rpc's devices of the servers, in the order the servers were named (layers are split
    /// over them in this order).
    pub(crate) fn devices(&self) -> Result<Vec<Device>> {
        let mut devices = Vec::new();
        for (relay, _) in &self.relays {
            let endpoint = CString::new(relay.local.to_string()).expect("an address has no NUL");
            let found = rpc::server_devices(&endpoint);
            self.check()?;
            devices.extend(found.or_else(|why| {
                fail(Remote, format!("llama.cpp's RPC backend could not use server {}: {why}", relay.server))
            })?);
        }
        Ok(devices)
    }

    /// Fails with `Remote` when a server went away since the session connected: its layers and
    /// KV cache there are gone, and every later computation of the session fails the same way.
    pub(crate) fn check(&self) -> Result<()> {
        match self.relays.iter().find(|(relay, losses)| relay.losses.load(Ordering::SeqCst) != *losses) {
            Some((relay, _)) => fail(Remote, format!("RPC server {} was lost ({}): the model's layers on it are gone, and a session that used it can only be destroyed", relay.server, relay.reason())),
            None => Ok(()),
        }
    }
}

/// Serves this machine's devices (its GPUs, or its CPU with `threads` threads) to the sessions
/// of other machines at `host:port`, until the process ends; `cache_dir` keeps large tensors
/// between runs, so that a model is sent once (ggml-rpc's cache). `host` is an IPv4 address.
/// Returns only when it cannot serve (the port is taken, say).
pub fn serve_rpc(host: &str, port: u16, threads: usize, cache_dir: Option<&Path>) -> Result<Infallible> {
    backend::init();
    let mut devices = backend::local_gpus();
    if devices.is_empty() {
        devices.extend(backend::cpu_device());
    }
    let endpoint =
        CString::new(format!("{host}:{port}")).or_else(|_| fail(InvalidArgument, "the host contains a NUL byte"))?;
    let cache = cache_dir
        .map(|d| CString::new(d.to_string_lossy().as_bytes()))
        .transpose()
        .or_else(|_| fail(InvalidArgument, "the cache directory contains a NUL byte"))?;
    rpc::start_server(&endpoint, cache.as_deref(), threads, &devices)?;
    fail(Remote, format!("could not serve at {host}:{port} (see the messages above)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        assert_eq!(parse_servers("a:1, b.example:50052").unwrap(), ["a:1", "b.example:50052"]);
        assert_eq!(parse_servers("[::1]:50052").unwrap(), ["[::1]:50052"]);
        for bad in ["", "a", "a:", ":1", "a:0", "a:65536", "a:x", "a:1,,b:2", "a:1,a:1"] {
            assert_eq!(parse_servers(bad).unwrap_err().kind, InvalidArgument, "{bad}");
        }
        let many = vec!["h:1"; MAX_SERVERS + 1]
            .iter()
            .enumerate()
            .map(|(i, _)| format!("h:{}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_servers(&many).unwrap_err().kind, InvalidArgument);
    }
}
