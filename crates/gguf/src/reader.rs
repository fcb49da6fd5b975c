//! A strict reader of GGUF headers: metadata and the tensor table, each length and count checked
//! against the file before anything is allocated, and every tensor's data inside the file.
//! Files pass through it before llama.cpp or clip.cpp see them, since those abort (rather than
//! fail) on some malformed input.
//!
//! The header is read into one buffer, in chunks, and parsed from there: a file costs a few
//! large reads and allocations, however many metadata entries and tokens it has.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::Path;

use crate::bytes::{Reader, Short};
use crate::ggml_types;

/// A metadata value (arrays keep only their element type and length).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { elem_type: u32, len: u64 },
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(v) => Some(*v),
            Value::Int(v) if *v >= 0 => Some(*v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Uint(v) => Some(*v as f64),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Shape, in ggml order.
    pub ne: Vec<u64>,
    /// ggml type.
    pub ggml_type: u32,
    /// Offset of its data from the start of the data section, and its length in bytes.
    pub offset: u64,
    pub bytes: u64,
}

/// What a GGUF file says about itself.
#[derive(Debug)]
pub struct Gguf {
    pub kv: HashMap<String, Value>,
    /// Each key's GGUF value type (8 string, 9 array, 4 uint32, ...).
    pub kv_types: HashMap<String, u32>,
    pub tensors: HashMap<String, TensorInfo>,
    /// Where the metadata ends and the tensor table begins.
    pub metadata_end: u64,
    /// Where the tensor data begins: the header's length padded to the alignment.
    pub data_start: u64,
}

/// Why a GGUF header could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Reading the file failed.
    Io(String),
    /// The file does not start with the GGUF magic.
    NotGguf(&'static str),
    /// A GGUF whose header breaks a rule (the text says which).
    Malformed(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "cannot read it: {e}"),
            Problem::NotGguf(why) => write!(f, "not a GGUF file ({why})"),
            Problem::Malformed(why) => write!(f, "malformed GGUF: {why}"),
        }
    }
}

/// GGUF value types.
pub const TYPE_UINT8: u32 = 0;
pub const TYPE_INT8: u32 = 1;
pub const TYPE_UINT16: u32 = 2;
pub const TYPE_INT16: u32 = 3;
pub const TYPE_UINT32: u32 = 4;
pub const TYPE_INT32: u32 = 5;
pub const TYPE_FLOAT32: u32 = 6;
pub const TYPE_BOOL: u32 = 7;
pub const TYPE_STRING: u32 = 8;
pub const TYPE_ARRAY: u32 = 9;
pub const TYPE_UINT64: u32 = 10;
pub const TYPE_INT64: u32 = 11;
pub const TYPE_FLOAT64: u32 = 12;

/// Strings longer than this (keys, names, values) are refused; real files stay far below.
const MAX_STRING: u64 = 64 << 20;
/// Tensor dimensions llama.cpp handles.
const MAX_DIMS: u32 = 4;
/// Tensor names ggml keeps (`GGML_MAX_NAME` less its NUL).
const MAX_NAME: usize = 63;
/// Alignment of tensor data when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// First read of a file's header; larger headers (big vocabularies) are read in growing chunks.
const FIRST_CHUNK: u64 = 8 << 20;

fn scalar_size(t: u32) -> Option<u64> {
    match t {
        TYPE_UINT8 | TYPE_INT8 | TYPE_BOOL => Some(1),
        TYPE_UINT16 | TYPE_INT16 => Some(2),
        TYPE_UINT32 | TYPE_INT32 | TYPE_FLOAT32 => Some(4),
        TYPE_UINT64 | TYPE_INT64 | TYPE_FLOAT64 => Some(8),
        _ => None,
    }
}

/// A parse failure: not GGUF, malformed, or the header goes on past the bytes read so far.
enum Stop {
    NotGguf(&'static str),
    Malformed(String),
    Short(Short),
}

impl From<Short> for Stop {
    fn from(s: Short) -> Self {
        Stop::Short(s)
    }
}

impl From<String> for Stop {
    fn from(p: String) -> Self {
        Stop::Malformed(p)
    }
}

/// Reads and checks the header of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<Gguf, Problem> {
    let io = |e: std::io::Error| Problem::Io(e.to_string());
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut buf = Vec::new();
    let mut want = FIRST_CHUNK.min(len);
    loop {
        let more = want - buf.len() as u64;
        (&mut file).take(more).read_to_end(&mut buf).map_err(io)?;
        if (buf.len() as u64) < want {
            return Err(Problem::Io(format!("the file shrank while it was read ({} of {len} bytes)", buf.len())));
        }
        match parse_prefix(&buf, len) {
            Err(Stop::Short(s)) if want < len => want = s.needed.saturating_add(FIRST_CHUNK).max(want * 2).min(len),
            result => return result.map_err(|stop| stop.into_problem(len)),
        }
    }
}

/// Reads and checks a GGUF header held in memory (`bytes` is the whole file).
pub fn parse(bytes: &[u8]) -> Result<Gguf, Problem> {
    parse_prefix(bytes, bytes.len() as u64).map_err(|stop| stop.into_problem(bytes.len() as u64))
}

impl Stop {
    fn into_problem(self, file_len: u64) -> Problem {
        match self {
            Stop::NotGguf(why) => Problem::NotGguf(why),
            Stop::Malformed(why) => Problem::Malformed(why),
            Stop::Short(s) => Problem::Malformed(format!("{} needs the file to be {} bytes long, but it ends at {file_len}", s.what, s.needed)),
        }
    }
}

/// Parses the header from `bytes`, the first bytes of a file of `file_len` bytes.
fn parse_prefix(bytes: &[u8], file_len: u64) -> Result<Gguf, Stop> {
    let mut r = Reader::new(bytes);
    match r.take(4, "magic") {
        Err(_) => return Err(Stop::NotGguf("shorter than its magic")),
        Ok(magic) if magic != b"GGUF" => return Err(Stop::NotGguf("bad magic")),
        Ok(_) => {}
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(Stop::Malformed(format!("GGUF version {version} is not supported (2 and 3 are)")));
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;
    // A key-value pair takes at least 12 bytes, a tensor entry at least 24.
    if n_kv > file_len / 12 || n_tensors > file_len / 24 {
        return Err(Stop::Malformed(format!("counts of {n_kv} metadata entries and {n_tensors} tensors cannot fit in {file_len} bytes")));
    }
    let mut kv = HashMap::new();
    let mut kv_types = HashMap::new();
    for i in 0..n_kv {
        let key = string(&mut r, &format!("metadata key {i}"))?;
        let t = r.u32(&format!("type of {key}"))?;
        let value = value(&mut r, t, &key, file_len)?;
        kv_types.insert(key.clone(), t);
        if kv.insert(key.clone(), value).is_some() {
            return Err(Stop::Malformed(format!("metadata key {key} appears twice")));
        }
    }
    let metadata_end = r.pos() as u64;
    let alignment = match kv.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::Uint(a)) if *a > 0 && a.is_power_of_two() && *a <= 1 << 20 => *a,
        Some(v) => return Err(Stop::Malformed(format!("general.alignment {v:?} is not a power of two"))),
    };
    let mut tensors = HashMap::new();
    for i in 0..n_tensors {
        let (name, info) = tensor_info(&mut r, i, alignment)?;
        if tensors.insert(name.clone(), info).is_some() {
            return Err(Stop::Malformed(format!("tensor {name} appears twice")));
        }
    }
    let data_start = (r.pos() as u64).div_ceil(alignment) * alignment;
    check_extents(&tensors, file_len.saturating_sub(data_start))?;
    Ok(Gguf { kv, kv_types, tensors, metadata_end, data_start })
}

fn string(r: &mut Reader, what: &str) -> Result<String, Stop> {
    let n = r.u64(what)?;
    if n > MAX_STRING {
        return Err(Stop::Malformed(format!("{what} at offset {} claims {n} bytes", r.pos() - 8)));
    }
    let at = r.pos();
    String::from_utf8(r.take(n, what)?.to_vec()).map_err(|_| Stop::Malformed(format!("{what} at offset {at} is not UTF-8")))
}

fn scalar(r: &mut Reader, t: u32, what: &str) -> Result<Value, Stop> {
    Ok(match t {
        TYPE_UINT8 => Value::Uint(r.u8(what)? as u64),
        TYPE_INT8 => Value::Int(r.u8(what)? as i8 as i64),
        TYPE_UINT16 => Value::Uint(r.u16(what)? as u64),
        TYPE_INT16 => Value::Int(r.u16(what)? as i16 as i64),
        TYPE_UINT32 => Value::Uint(r.u32(what)? as u64),
        TYPE_INT32 => Value::Int(r.i32(what)? as i64),
        TYPE_FLOAT32 => Value::Float(r.f32(what)? as f64),
        TYPE_BOOL => match r.u8(what)? {
            b @ (0 | 1) => Value::Bool(b == 1),
            v => return Err(Stop::Malformed(format!("{what}: bool of value {v}"))),
        },
        TYPE_UINT64 => Value::Uint(r.u64(what)?),
        TYPE_INT64 => Value::Int(r.i64(what)?),
        TYPE_FLOAT64 => Value::Float(r.f64(what)?),
        t => return Err(Stop::Malformed(format!("{what}: unknown value type {t}"))),
    })
}

fn value(r: &mut Reader, t: u32, what: &str, file_len: u64) -> Result<Value, Stop> {
    match t {
        TYPE_STRING => Ok(Value::Str(string(r, what)?)),
        TYPE_ARRAY => {
            let elem_type = r.u32(what)?;
            let len = r.u64(what)?;
            let rest = file_len.saturating_sub(r.pos() as u64);
            match elem_type {
                TYPE_ARRAY => Err(Stop::Malformed(format!("{what}: nested arrays are not supported"))),
                // Each string takes at least its 8-byte length.
                TYPE_STRING if len > rest / 8 => Err(Stop::Malformed(format!("{what}: {len} strings cannot fit in the rest of the file"))),
                TYPE_STRING => {
                    string_array(r, what, len)?;
                    Ok(Value::Array { elem_type, len })
                }
                _ => {
                    let size = scalar_size(elem_type).ok_or_else(|| format!("{what}: unknown array element type {elem_type}"))?;
                    let total = len.checked_mul(size).filter(|&n| n <= rest).ok_or_else(|| format!("{what}: {len} elements cannot fit in the rest of the file"))?;
                    r.take(total, what)?;
                    Ok(Value::Array { elem_type, len })
                }
            }
        }
        t => scalar(r, t, what),
    }
}

/// Steps over an array of `len` strings; a vocabulary (`tokenizer.ggml.tokens`) is also checked
/// for repeated tokens, which llama.cpp asserts against.
fn string_array(r: &mut Reader, what: &str, len: u64) -> Result<(), Stop> {
    let mut tokens = (what == "tokenizer.ggml.tokens").then(|| Vec::with_capacity(len as usize));
    for _ in 0..len {
        let n = r.u64(what)?;
        if n > MAX_STRING {
            return Err(Stop::Malformed(format!("{what}: a string at offset {} claims {n} bytes", r.pos() - 8)));
        }
        let s = r.take(n, what)?;
        if let Some(tokens) = tokens.as_mut() {
            tokens.push(s);
        }
    }
    match tokens.map(|t| first_repeat(&t)) {
        Some(Some(i)) => Err(Stop::Malformed(format!("{what}: entry {i} repeats an earlier token"))),
        _ => Ok(()),
    }
}

/// The index of the first token equal to an earlier one, as llama.cpp reads tokens: up to a NUL,
/// and an empty one named "[EMPTY_<index>]".
fn first_repeat(tokens: &[&[u8]]) -> Option<usize> {
    let as_read = |i: usize| -> std::borrow::Cow<[u8]> {
        let t = tokens[i];
        let t = &t[..t.iter().position(|&b| b == 0).unwrap_or(t.len())];
        if t.is_empty() {
            format!("[EMPTY_{i}]").into_bytes().into()
        } else {
            t.into()
        }
    };
    // One pass with 64-bit hashes; equal hashes are confirmed by comparing the bytes.
    let mut seen: HashMap<u64, usize, BuildHasherDefault<Prehashed>> = HashMap::with_capacity_and_hasher(tokens.len(), Default::default());
    let mut collided: Option<HashSet<std::borrow::Cow<[u8]>>> = None;
    for i in 0..tokens.len() {
        let token = as_read(i);
        match seen.insert(word_hash(&token), i) {
            Some(j) if as_read(j) == token => return Some(i),
            // A hash collision between different tokens: settle the rest with a set of bytes.
            Some(_) => {
                let set = collided.get_or_insert_with(|| (0..i).map(as_read).collect());
                if !set.insert(token) {
                    return Some(i);
                }
            }
            None => {
                if let Some(set) = collided.as_mut() {
                    set.insert(token);
                }
            }
        }
    }
    None
}

/// A fast 64-bit hash of a token for the repeat check (not for identity: equal hashes are
/// confirmed byte for byte). Each 8-byte word is folded in with a full 64x64->128-bit multiply
/// (wyhash's "mum"), so every input bit reaches every output bit.
fn word_hash(bytes: &[u8]) -> u64 {
    const K0: u64 = 0xA076_1D64_78BD_642F;
    const K1: u64 = 0xE703_7ED1_A0B4_28DB;
    let mum = |a: u64, b: u64| {
        let r = (a as u128) * (b as u128);
        (r as u64) ^ ((r >> 64) as u64)
    };
    let mut h = mum(bytes.len() as u64 ^ K0, K1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mum(h ^ u64::from_le_bytes(c.try_into().unwrap()) ^ K0, K1);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mum(h ^ u64::from_le_bytes(tail) ^ K0, K1)
}

/// A hasher for keys that already are hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

fn tensor_info(r: &mut Reader, i: u64, alignment: u64) -> Result<(String, TensorInfo), Stop> {
    let name = string(r, &format!("tensor name {i}"))?;
    if name.len() > MAX_NAME {
        return Err(Stop::Malformed(format!("tensor name {name} is longer than ggml's {MAX_NAME} bytes")));
    }
    let n_dims = r.u32(&format!("dimensions of {name}"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(Stop::Malformed(format!("tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS})")));
    }
    let ne = (0..n_dims).map(|_| r.u64(&format!("shape of {name}"))).collect::<Result<Vec<_>, _>>()?;
    if ne.iter().any(|&d| d == 0 || d > i64::MAX as u64) {
        return Err(Stop::Malformed(format!("tensor {name} has shape {ne:?}")));
    }
    let ggml_type = r.u32(&format!("type of {name}"))?;
    let offset = r.u64(&format!("offset of {name}"))?;
    if offset % alignment != 0 {
        return Err(Stop::Malformed(format!("tensor {name}: offset {offset} is not aligned to {alignment}")));
    }
    let bytes = tensor_bytes(&name, &ne, ggml_type)?;
    Ok((name, TensorInfo { ne, ggml_type, offset, bytes }))
}

/// Bytes of a tensor of `ne` elements of ggml type `t`, or why there is no such tensor.
fn tensor_bytes(name: &str, ne: &[u64], t: u32) -> Result<u64, String> {
    if t >= ggml_types::TYPE_COUNT {
        return Err(format!("tensor {name}: unknown ggml type {t}"));
    }
    let (block, type_size) = ggml_types::block(t).ok_or_else(|| format!("tensor {name}: ggml type {t} is no longer supported"))?;
    if ne[0] % block != 0 {
        return Err(format!("tensor {name}: row of {} elements is not a whole number of {block}-element blocks", ne[0]));
    }
    let overflow = || format!("tensor {name}: size of shape {ne:?} overflows");
    let mut n: u64 = (ne[0] / block).checked_mul(type_size).ok_or_else(overflow)?;
    for &d in &ne[1..] {
        n = n.checked_mul(d).ok_or_else(overflow)?;
    }
    Ok(n)
}

/// Every tensor's data lies inside the data section, and no two overlap.
fn check_extents(tensors: &HashMap<String, TensorInfo>, data_len: u64) -> Result<(), String> {
    let mut spans: Vec<(u64, u64, &str)> = tensors.iter().map(|(name, t)| (t.offset, t.bytes, name.as_str())).collect();
    for (offset, bytes, name) in &spans {
        if offset.checked_add(*bytes).is_none_or(|end| end > data_len) {
            return Err(format!("tensor {name}: {bytes} bytes at data offset {offset} run past the end of the file ({data_len} data bytes)"));
        }
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            return Err(format!("tensors {} and {} overlap", pair[0].2, pair[1].2));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[&[u8]]) -> Option<usize> {
        first_repeat(list)
    }

    #[test]
    fn repeated_tokens_are_found_as_llama_cpp_reads_them() {
        assert_eq!(tokens(&[b"a", b"b", b"c"]), None);
        assert_eq!(tokens(&[b"a", b"b", b"a"]), Some(2));
        assert_eq!(tokens(&[b"a\0x", b"a"]), Some(1), "read up to the NUL");
        assert_eq!(tokens(&[b"", b"x", b"[EMPTY_0]"]), Some(2), "an empty token is renamed");
        assert_eq!(tokens(&[b"", b""]), None, "two empty tokens get different names");
    }

    #[test]
    fn a_header_that_stops_short_says_where() {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        assert!(parse(&bytes).unwrap_err().to_string().contains("tensor count"), "{}", parse(&bytes).unwrap_err());
        assert_eq!(parse(b"GG").unwrap_err(), Problem::NotGguf("shorter than its magic"));
        assert_eq!(parse(b"GGML----").unwrap_err(), Problem::NotGguf("bad magic"));
    }
}
