//! A strict reader of GGUF headers: metadata and the tensor table, each length and count checked
//! against the file before anything is allocated, and every tensor's data inside the file.
//! Files pass through it before llama.cpp or clip.cpp see them, since those abort (rather than
//! fail) on some malformed input.
//!
//! A file is read once, front to back, through a small buffer ([`FileSource`]): checking a
//! header costs one pass over its bytes and a few allocations, however many metadata entries and
//! tokens it has, and nothing of its size stays on the heap.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;
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
    pub kv: BTreeMap<String, Value>,
    /// Each key's GGUF value type (8 string, 9 array, 4 uint32, ...).
    pub kv_types: BTreeMap<String, u32>,
    pub tensors: BTreeMap<String, TensorInfo>,
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
/// Bytes read from a file at a time (a longer string is read whole).
const CHUNK: usize = 64 << 10;
/// Tokens the vocabulary check makes room for at once (a larger vocabulary grows the set).
const VOCAB_RESERVE: u64 = 1 << 20;

fn scalar_size(t: u32) -> Option<u64> {
    match t {
        TYPE_UINT8 | TYPE_INT8 | TYPE_BOOL => Some(1),
        TYPE_UINT16 | TYPE_INT16 => Some(2),
        TYPE_UINT32 | TYPE_INT32 | TYPE_FLOAT32 => Some(4),
        TYPE_UINT64 | TYPE_INT64 | TYPE_FLOAT64 => Some(8),
        _ => None,
    }
}

/// A parse failure: not GGUF, malformed, the header goes on past the end of the file, or the
/// file could not be read.
enum Stop {
    NotGguf(&'static str),
    Malformed(String),
    Short(Short),
    Io(String),
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

impl Stop {
    fn into_problem(self, file_len: u64) -> Problem {
        match self {
            Stop::NotGguf(why) => Problem::NotGguf(why),
            Stop::Malformed(why) => Problem::Malformed(why),
            Stop::Short(s) => Problem::Malformed(format!(
                "{} needs the file to be {} bytes long, but it ends at {file_len}",
                s.what, s.needed
            )),
            Stop::Io(e) => Problem::Io(e),
        }
    }
}

/// Where a header's bytes come from, in order: a slice in memory or a file read in chunks.
trait Source {
    /// The next `n` bytes, valid until the next call.
    fn take(&mut self, n: u64, what: &str) -> Result<&[u8], Stop>;
    /// Offset of the next byte.
    fn pos(&self) -> u64;
    /// Goes back to `pos`, an offset already read.
    fn rewind(&mut self, pos: u64);

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Stop> {
        Ok(self.take(N as u64, what)?.try_into().expect("take returns N bytes"))
    }
    fn u8(&mut self, what: &str) -> Result<u8, Stop> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, Stop> {
        self.array(what).map(u16::from_le_bytes)
    }
    fn u32(&mut self, what: &str) -> Result<u32, Stop> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn i32(&mut self, what: &str) -> Result<i32, Stop> {
        self.array(what).map(i32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> Result<u64, Stop> {
        self.array(what).map(u64::from_le_bytes)
    }
    fn i64(&mut self, what: &str) -> Result<i64, Stop> {
        self.array(what).map(i64::from_le_bytes)
    }
    fn f32(&mut self, what: &str) -> Result<f32, Stop> {
        self.array(what).map(f32::from_le_bytes)
    }
    fn f64(&mut self, what: &str) -> Result<f64, Stop> {
        self.array(what).map(f64::from_le_bytes)
    }
}

impl Source for Reader<'_> {
    #[inline]
    fn take(&mut self, n: u64, what: &str) -> Result<&[u8], Stop> {
        Ok(Reader::take(self, n, what)?)
    }
    fn pos(&self) -> u64 {
        Reader::pos(self) as u64
    }
    fn rewind(&mut self, pos: u64) {
        self.seek(pos as usize);
    }
}

/// A file read front to back through one buffer of about [`CHUNK`] bytes.
struct FileSource {
    file: File,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`, and the next byte's index in `buf`.
    start: u64,
    at: usize,
}

impl FileSource {
    /// Keeps the unread bytes and reads more after them, at least `n` in all.
    fn fill(&mut self, n: usize) -> Result<(), Stop> {
        self.buf.drain(..self.at);
        self.start += self.at as u64;
        self.at = 0;
        let have = self.buf.len();
        let want = n.max(CHUNK).min(usize::try_from(self.len - self.start).unwrap_or(usize::MAX));
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf[have..], self.start + have as u64).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Stop::Io(format!("the file shrank while it was read (it was {} bytes long)", self.len))
            }
            _ => Stop::Io(e.to_string()),
        })
    }
}

impl Source for FileSource {
    #[inline]
    fn take(&mut self, n: u64, what: &str) -> Result<&[u8], Stop> {
        let pos = self.pos();
        let short = || Stop::Short(Short { what: what.to_string(), needed: pos.saturating_add(n) });
        let n = pos
            .checked_add(n)
            .filter(|&end| end <= self.len)
            .and_then(|_| usize::try_from(n).ok())
            .ok_or_else(short)?;
        if self.at + n > self.buf.len() {
            self.fill(n)?;
        }
        self.at += n;
        Ok(&self.buf[self.at - n..self.at])
    }
    fn pos(&self) -> u64 {
        self.start + self.at as u64
    }
    fn rewind(&mut self, pos: u64) {
        if pos >= self.start {
            self.at = (pos - self.start) as usize;
        } else {
            self.buf.clear();
            self.start = pos;
            self.at = 0;
        }
    }
}

/// Reads and checks the header of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<Gguf, Problem> {
    let io = |e: std::io::Error| Problem::Io(e.to_string());
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut source = FileSource { file, len, buf: Vec::new(), start: 0, at: 0 };
    parse_from(&mut source, len).map_err(|stop| stop.into_problem(len))
}

/// Reads and checks a GGUF header held in memory (`bytes` is the whole file).
pub fn parse(bytes: &[u8]) -> Result<Gguf, Problem> {
    parse_from(&mut Reader::new(bytes), bytes.len() as u64).map_err(|stop| stop.into_problem(bytes.len() as u64))
}

/// Parses the header of a file of `file_len` bytes from `r`.
fn parse_from(r: &mut impl Source, file_len: u64) -> Result<Gguf, Stop> {
    match r.take(4, "magic") {
        Err(Stop::Short(_)) => return Err(Stop::NotGguf("shorter than its magic")),
        Err(e) => return Err(e),
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
        return Err(Stop::Malformed(format!(
            "counts of {n_kv} metadata entries and {n_tensors} tensors cannot fit in {file_len} bytes"
        )));
    }
    let mut kv = BTreeMap::new();
    let mut kv_types = BTreeMap::new();
    for i in 0..n_kv {
        let key = string(r, &format!("metadata key {i}"))?;
        let t = r.u32(&format!("type of {key}"))?;
        let value = value(r, t, &key, file_len)?;
        kv_types.insert(key.clone(), t);
        if kv.insert(key.clone(), value).is_some() {
            return Err(Stop::Malformed(format!("metadata key {key} appears twice")));
        }
    }
    let metadata_end = r.pos();
    let alignment = match kv.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::Uint(a)) if *a > 0 && a.is_power_of_two() && *a <= 1 << 20 => *a,
        Some(v) => return Err(Stop::Malformed(format!("general.alignment {v:?} is not a power of two"))),
    };
    let mut tensors = BTreeMap::new();
    for i in 0..n_tensors {
        let (name, info) = tensor_info(r, i, alignment)?;
        if tensors.insert(name.clone(), info).is_some() {
            return Err(Stop::Malformed(format!("tensor {name} appears twice")));
        }
    }
    let data_start = r.pos().div_ceil(alignment) * alignment;
    check_extents(&tensors, file_len.saturating_sub(data_start))?;
    Ok(Gguf { kv, kv_types, tensors, metadata_end, data_start })
}

fn string(r: &mut impl Source, what: &str) -> Result<String, Stop> {
    let n = r.u64(what)?;
    if n > MAX_STRING {
        return Err(Stop::Malformed(format!("{what} at offset {} claims {n} bytes", r.pos() - 8)));
    }
    let at = r.pos();
    String::from_utf8(r.take(n, what)?.to_vec())
        .map_err(|_| Stop::Malformed(format!("{what} at offset {at} is not UTF-8")))
}

fn scalar(r: &mut impl Source, t: u32, what: &str) -> Result<Value, Stop> {
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

fn value(r: &mut impl Source, t: u32, what: &str, file_len: u64) -> Result<Value, Stop> {
    match t {
        TYPE_STRING => Ok(Value::Str(string(r, what)?)),
        TYPE_ARRAY => {
            let elem_type = r.u32(what)?;
            let len = r.u64(what)?;
            let rest = file_len.saturating_sub(r.pos());
            match elem_type {
                TYPE_ARRAY => Err(Stop::Malformed(format!("{what}: nested arrays are not supported"))),
                // Each string takes at least its 8-byte length.
                TYPE_STRING if len > rest / 8 => {
                    Err(Stop::Malformed(format!("{what}: {len} strings cannot fit in the rest of the file")))
                }
                TYPE_STRING => {
                    string_array(r, what, len)?;
                    Ok(Value::Array { elem_type, len })
                }
                _ => {
                    let size = scalar_size(elem_type)
                        .ok_or_else(|| format!("{what}: unknown array element type {elem_type}"))?;
                    let total = len
                        .checked_mul(size)
                        .filter(|&n| n <= rest)
                        .ok_or_else(|| format!("{what}: {len} elements cannot fit in the rest of the file"))?;
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
fn string_array(r: &mut impl Source, what: &str, len: u64) -> Result<(), Stop> {
    let vocabulary = what == "tokenizer.ggml.tokens";
    let start = r.pos();
    let mut seen: HashSet<u64, BuildHasherDefault<Prehashed>> = HashSet::with_capacity_and_hasher(
        if vocabulary { len.min(VOCAB_RESERVE) as usize } else { 0 },
        Default::default(),
    );
    let mut suspects = HashSet::new();
    for i in 0..len {
        let s = array_string(r, what)?;
        if vocabulary {
            let hash = token_hash(&as_read(i, s));
            if !seen.insert(hash) {
                suspects.insert(hash);
            }
        }
    }
    if suspects.is_empty() {
        return Ok(());
    }
    // Equal hashes: compare those tokens byte for byte, in a second pass over the array.
    r.rewind(start);
    let mut first_repeat = None;
    let mut candidates: HashSet<Vec<u8>> = HashSet::new();
    for i in 0..len {
        let token = as_read(i, array_string(r, what)?);
        if first_repeat.is_none() && suspects.contains(&token_hash(&token)) && !candidates.insert(token.into_owned()) {
            first_repeat = Some(i);
        }
    }
    match first_repeat {
        Some(i) => Err(Stop::Malformed(format!("{what}: entry {i} repeats an earlier token"))),
        None => Ok(()),
    }
}

/// The next string of an array, as bytes.
#[inline]
fn array_string<'r>(r: &'r mut impl Source, what: &str) -> Result<&'r [u8], Stop> {
    let n = r.u64(what)?;
    if n > MAX_STRING {
        return Err(Stop::Malformed(format!("{what}: a string at offset {} claims {n} bytes", r.pos() - 8)));
    }
    r.take(n, what)
}

/// Token `i` of a vocabulary as llama.cpp reads it: up to a NUL, and an empty one named
/// "[EMPTY_<i>]".
fn as_read(i: u64, token: &[u8]) -> Cow<'_, [u8]> {
    let token = &token[..token.iter().position(|&b| b == 0).unwrap_or(token.len())];
    if token.is_empty() {
        format!("[EMPTY_{i}]").into_bytes().into()
    } else {
        token.into()
    }
}

/// A 64-bit hash of a token for the repeat check (wyhash's folded multiply, which carries every
/// input bit into every output bit). Not for identity: equal hashes are confirmed byte for byte.
fn token_hash(bytes: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    let mix = |a: u64, b: u64| {
        let r = (a as u128) * (b as u128);
        (r as u64) ^ ((r >> 64) as u64)
    };
    let mut h = P0 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h ^ u64::from_le_bytes(c.try_into().expect("chunks of 8")), P1);
    }
    let tail = chunks.remainder().iter().rev().fold(0u64, |t, &b| t << 8 | b as u64);
    mix(h ^ tail, P0 ^ P1)
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

fn tensor_info(r: &mut impl Source, i: u64, alignment: u64) -> Result<(String, TensorInfo), Stop> {
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
    let (block, type_size) =
        ggml_types::block(t).ok_or_else(|| format!("tensor {name}: ggml type {t} is no longer supported"))?;
    if !ne[0].is_multiple_of(block) {
        return Err(format!(
            "tensor {name}: row of {} elements is not a whole number of {block}-element blocks",
            ne[0]
        ));
    }
    let overflow = || format!("tensor {name}: size of shape {ne:?} overflows");
    let mut n: u64 = (ne[0] / block).checked_mul(type_size).ok_or_else(overflow)?;
    for &d in &ne[1..] {
        n = n.checked_mul(d).ok_or_else(overflow)?;
    }
    Ok(n)
}

/// Every tensor's data lies inside the data section, and no two overlap.
fn check_extents(tensors: &BTreeMap<String, TensorInfo>, data_len: u64) -> Result<(), String> {
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

    /// A GGUF header with one key, a vocabulary of `tokens`.
    fn vocabulary(tokens: &[&[u8]]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        let key = b"tokenizer.ggml.tokens";
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key);
        b.extend_from_slice(&TYPE_ARRAY.to_le_bytes());
        b.extend_from_slice(&TYPE_STRING.to_le_bytes());
        b.extend_from_slice(&(tokens.len() as u64).to_le_bytes());
        for t in tokens {
            b.extend_from_slice(&(t.len() as u64).to_le_bytes());
            b.extend_from_slice(t);
        }
        b
    }

    fn repeat(tokens: &[&[u8]]) -> Option<String> {
        parse(&vocabulary(tokens)).err().map(|e| e.to_string())
    }

    #[test]
    fn repeated_tokens_are_found_as_llama_cpp_reads_them() {
        assert_eq!(repeat(&[b"a", b"b", b"c"]), None);
        assert!(repeat(&[b"a", b"b", b"a"]).unwrap().contains("entry 2 repeats"));
        assert!(repeat(&[b"a\0x", b"a"]).unwrap().contains("entry 1 repeats"), "read up to the NUL");
        assert!(repeat(&[b"", b"x", b"[EMPTY_0]"]).unwrap().contains("entry 2 repeats"), "an empty token is renamed");
        assert_eq!(repeat(&[b"", b""]), None, "two empty tokens get different names");
    }

    #[test]
    fn the_token_hash_tells_apart_tokens_that_differ_anywhere() {
        // The hash of an earlier version collided on these (a difference in a chunk's high byte
        // cancelled against one in the next chunk's low byte).
        let names: Vec<String> = (0..100_000).map(|i| format!("<unused{i}>")).collect();
        let hashes: HashSet<u64> = names.iter().map(|n| token_hash(n.as_bytes())).collect();
        assert_eq!(hashes.len(), names.len());
    }

    #[test]
    fn a_file_is_read_in_chunks_as_a_slice_is() {
        let tokens: Vec<Vec<u8>> = (0..100_000).map(|i| format!("token number {i}").into_bytes()).collect();
        let mut bytes = vocabulary(&tokens.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(bytes.len() > 4 * CHUNK);
        let path = std::env::temp_dir().join(format!("mm-gguf-chunks-{}.gguf", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let from_file = read(&path).map(|g| g.data_start);
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        let truncated = read(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            from_file,
            parse(&vocabulary(&tokens.iter().map(Vec::as_slice).collect::<Vec<_>>())).map(|g| g.data_start)
        );
        assert!(truncated.contains("needs the file to be"), "{truncated}");
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
