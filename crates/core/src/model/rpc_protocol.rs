//! What the relay knows of ggml-rpc's protocol (version 7.0, ggml-rpc.cpp): its commands and the
//! size of each reply, the version check of the handshake, the replies whose values would make
//! ggml-rpc abort, and the stand-in replies for a server that is lost.

/// The protocol version the relay speaks; guard.cpp checks at build time that ggml-rpc's is it.
const PROTOCOL: (u8, u8) = (7, 0);
/// The most devices one server may say it has (ggml-rpc allocates for each).
const MAX_DEVICES: u32 = 16;
/// The largest alignment a server may ask for.
const MAX_ALIGNMENT: u64 = 1 << 30;
/// ggml-rpc's commands (ggml-rpc.cpp, `enum rpc_cmd`) that the relay treats specially.
const CMD_ALLOC_BUFFER: u8 = 0;
const CMD_GET_ALIGNMENT: u8 = 1;
const CMD_GET_MAX_SIZE: u8 = 2;
const CMD_BUFFER_GET_BASE: u8 = 3;
const CMD_GET_DEVICE_MEMORY: u8 = 11;
pub(super) const CMD_HELLO: u8 = 14;
const CMD_DEVICE_COUNT: u8 = 15;
/// The size of HELLO's request (the client's transport capabilities) and of its reply (version,
/// padding, the server's capabilities).
pub(super) const HELLO_REQUEST: usize = 24;
pub(super) const HELLO_REPLY: usize = 28;

/// What a server answers to a command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    /// Nothing.
    None,
    /// This many bytes.
    Fixed(u64),
    /// The bytes the request asks for (GET_TENSOR: the last 8 bytes of its request).
    Requested,
}

/// The reply of each command of protocol 7.0, by command number (ggml-rpc.cpp's
/// `rpc_serve_client` and the reply structs it sends).
pub(super) const REPLIES: [Reply; 19] = [
    Reply::Fixed(16),                 // ALLOC_BUFFER: remote pointer, size
    Reply::Fixed(8),                  // GET_ALIGNMENT
    Reply::Fixed(8),                  // GET_MAX_SIZE
    Reply::Fixed(8),                  // BUFFER_GET_BASE
    Reply::None,                      // FREE_BUFFER
    Reply::None,                      // BUFFER_CLEAR
    Reply::None,                      // SET_TENSOR
    Reply::Fixed(1),                  // SET_TENSOR_HASH: found
    Reply::Requested,                 // GET_TENSOR
    Reply::Fixed(1),                  // COPY_TENSOR: done
    Reply::None,                      // GRAPH_COMPUTE
    Reply::Fixed(16),                 // GET_DEVICE_MEMORY: free, total
    Reply::None,                      // INIT_TENSOR
    Reply::Fixed(8),                  // GET_ALLOC_SIZE
    Reply::Fixed(HELLO_REPLY as u64), // HELLO
    Reply::Fixed(4),                  // DEVICE_COUNT
    Reply::None,                      // GRAPH_RECOMPUTE
    Reply::None,                      // MEMSET_TENSOR
    Reply::None,                      // NONE (never sent)
];

/// Fails unless a server's version is one ggml-rpc accepts (the same major version, a minor
/// version no newer).
pub(super) fn check_version(server: &str, reply: &[u8]) -> std::result::Result<(), String> {
    if reply[0] != PROTOCOL.0 || reply[1] > PROTOCOL.1 {
        return Err(format!(
            "{server} speaks RPC protocol {}.{}.{}, this library {}.{}: use a server of the same llama.cpp version",
            reply[0], reply[1], reply[2], PROTOCOL.0, PROTOCOL.1
        ));
    }
    Ok(())
}

/// Why a server's reply to `cmd` (after `request`) is false, when a value in it would make
/// ggml-rpc abort or allocate without bound: ggml-rpc trusts every value it is sent (a bad
/// alignment, a buffer smaller than asked for, or a huge device count ends in an abort).
pub(super) fn false_reply(cmd: u8, request: &[u8], reply: &[u8]) -> Option<String> {
    let u64_at = |bytes: &[u8], at: usize| bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8")));
    match cmd {
        CMD_GET_ALIGNMENT => {
            let alignment = u64_at(reply, 0)?;
            (!alignment.is_power_of_two() || alignment > MAX_ALIGNMENT)
                .then(|| format!("an alignment of {alignment} (not a power of two up to {MAX_ALIGNMENT})"))
        }
        CMD_GET_MAX_SIZE => (u64_at(reply, 0)? == 0).then(|| "a largest buffer of 0 bytes".to_string()),
        CMD_BUFFER_GET_BASE => (u64_at(reply, 0)? == 0).then(|| "a buffer at address 0".to_string()),
        CMD_ALLOC_BUFFER => {
            let (remote, size) = (u64_at(reply, 0)?, u64_at(reply, 8)?);
            let asked = u64_at(request, request.len().checked_sub(8)?)?;
            (remote != 0 && size < asked).then(|| format!("a buffer of {size} bytes for a request of {asked}"))
        }
        CMD_GET_DEVICE_MEMORY => {
            let (free, total) = (u64_at(reply, 0)?, u64_at(reply, 8)?);
            (free > total).then(|| format!("{free} bytes free of {total}"))
        }
        CMD_DEVICE_COUNT => {
            let count = u32::from_le_bytes(reply.get(..4)?.try_into().expect("4"));
            (!(1..=MAX_DEVICES).contains(&count)).then(|| format!("{count} devices (1 to {MAX_DEVICES} are possible)"))
        }
        _ => None,
    }
}

/// The start of the reply to `cmd` that the relay gives in place of a server that is lost (the
/// rest is zeros): values that make ggml-rpc fail softly (no buffer allocated, nothing found in
/// the server's cache, zeros read) rather than abort. Only a few fields need more than zero: the
/// protocol version of the handshake, an alignment and a base address that are not 0, and no
/// size limit.
pub(super) fn stand_in(cmd: u8) -> Vec<u8> {
    match cmd {
        CMD_HELLO => vec![PROTOCOL.0, PROTOCOL.1],
        CMD_GET_ALIGNMENT => 32u64.to_le_bytes().into(),
        CMD_GET_MAX_SIZE => u64::MAX.to_le_bytes().into(),
        CMD_BUFFER_GET_BASE => 4096u64.to_le_bytes().into(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_fit_their_replies() {
        for (cmd, reply) in REPLIES.iter().enumerate() {
            if let Reply::Fixed(n) = reply {
                assert!(stand_in(cmd as u8).len() as u64 <= *n, "command {cmd}");
            }
        }
    }
}
