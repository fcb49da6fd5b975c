//! A strict reader of GGUF headers: metadata and the tensor table, each length and count checked
//! against the file before anything is allocated, and every tensor's data inside the file.
//! Files pass through it before llama.cpp or clip.cpp see them, since those abort (rather than
//! fail) on some malformed input.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use llama_cpp_sys_2 as sys;

/// A metadata value (arrays keep only their element type and length: reading them allocates
/// nothing, which keeps the allocator's heap as llama.cpp's loader left it).
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
}

/// What a GGUF file says about itself.
#[derive(Debug)]
pub struct Gguf {
    pub kv: HashMap<String, Value>,
    /// Each key's GGUF value type (8 string, 9 array, 4 uint32, ...).
    pub kv_types: HashMap<String, u32>,
    pub tensors: HashMap<String, TensorInfo>,
}

/// Why a file is not a well-formed GGUF.
pub type Problem = String;

const GGUF_TYPE_STRING: u32 = 8;
const GGUF_TYPE_ARRAY: u32 = 9;
/// Strings longer than this (keys, names, values) are refused; real files stay far below.
const MAX_STRING: u64 = 64 << 20;
/// Tensor dimensions llama.cpp handles.
const MAX_DIMS: u32 = 4;

fn scalar_size(t: u32) -> Option<u64> {
    match t {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

struct Cursor {
    r: std::io::BufReader<std::fs::File>,
    pos: u64,
    len: u64,
}

impl Cursor {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, Problem> {
        if n > self.len - self.pos {
            return Err(format!("{what} at offset {} needs {n} bytes, but the file ends at {}", self.pos, self.len));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| format!("reading {what} at offset {}: {e}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }
    fn u32(&mut self, what: &str) -> Result<u32, Problem> {
        Ok(u32::from_le_bytes(self.bytes(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Problem> {
        Ok(u64::from_le_bytes(self.bytes(8, what)?.try_into().unwrap()))
    }
    fn string(&mut self, what: &str) -> Result<String, Problem> {
        let n = self.u64(what)?;
        if n > MAX_STRING {
            return Err(format!("{what} at offset {} claims {n} bytes", self.pos - 8));
        }
        String::from_utf8(self.bytes(n, what)?).map_err(|_| format!("{what} at offset {} is not UTF-8", self.pos - n))
    }
    fn skip(&mut self, n: u64, what: &str) -> Result<(), Problem> {
        if n > self.len - self.pos {
            return Err(format!("{what} at offset {} needs {n} bytes, but the file ends at {}", self.pos, self.len));
        }
        self.r.seek_relative(n as i64).map_err(|e| format!("reading {what}: {e}"))?;
        self.pos += n;
        Ok(())
    }

    fn scalar(&mut self, t: u32, what: &str) -> Result<Value, Problem> {
        let size = scalar_size(t).ok_or_else(|| format!("{what}: unknown value type {t}"))?;
        let b = self.bytes(size, what)?;
        Ok(match t {
            0 => Value::Uint(b[0] as u64),
            1 => Value::Int(b[0] as i8 as i64),
            2 => Value::Uint(u16::from_le_bytes([b[0], b[1]]) as u64),
            3 => Value::Int(i16::from_le_bytes([b[0], b[1]]) as i64),
            4 => Value::Uint(u32::from_le_bytes(b[..4].try_into().unwrap()) as u64),
            5 => Value::Int(i32::from_le_bytes(b[..4].try_into().unwrap()) as i64),
            6 => Value::Float(f32::from_le_bytes(b[..4].try_into().unwrap()) as f64),
            7 => match b[0] {
                0 | 1 => Value::Bool(b[0] == 1),
                v => return Err(format!("{what}: bool of value {v}")),
            },
            10 => Value::Uint(u64::from_le_bytes(b[..8].try_into().unwrap())),
            11 => Value::Int(i64::from_le_bytes(b[..8].try_into().unwrap())),
            _ => Value::Float(f64::from_le_bytes(b[..8].try_into().unwrap())),
        })
    }

    fn value(&mut self, t: u32, what: &str) -> Result<Value, Problem> {
        match t {
            GGUF_TYPE_STRING => Ok(Value::Str(self.string(what)?)),
            GGUF_TYPE_ARRAY => {
                let elem_type = self.u32(what)?;
                let len = self.u64(what)?;
                if elem_type == GGUF_TYPE_ARRAY {
                    return Err(format!("{what}: nested arrays are not supported"));
                }
                if elem_type == GGUF_TYPE_STRING {
                    // Each string takes at least its 8-byte length.
                    if len > (self.len - self.pos) / 8 {
                        return Err(format!("{what}: {len} strings cannot fit in the rest of the file"));
                    }
                    // llama.cpp asserts that a vocabulary has no token twice.
                    let mut seen = (what == "tokenizer.ggml.tokens").then(HashSet::new);
                    for i in 0..len {
                        let n = self.u64(what)?;
                        if n > MAX_STRING {
                            return Err(format!("{what}: a string at offset {} claims {n} bytes", self.pos - 8));
                        }
                        match seen.as_mut() {
                            Some(seen) => {
                                // llama.cpp reads each token as a C string (up to a NUL),
                                // and names an empty one "[EMPTY_<index>]".
                                let mut token = self.bytes(n, what)?;
                                if let Some(nul) = token.iter().position(|&b| b == 0) {
                                    token.truncate(nul);
                                }
                                if token.is_empty() {
                                    token = format!("[EMPTY_{i}]").into_bytes();
                                }
                                if !seen.insert(token) {
                                    return Err(format!("{what}: entry {i} repeats an earlier token"));
                                }
                            }
                            None => self.skip(n, what)?,
                        }
                    }
                    return Ok(Value::Array { elem_type, len });
                }
                let size = scalar_size(elem_type).ok_or_else(|| format!("{what}: unknown array element type {elem_type}"))?;
                let total = len.checked_mul(size).filter(|&n| n <= self.len - self.pos).ok_or_else(|| format!("{what}: {len} elements cannot fit in the rest of the file"))?;
                self.skip(total, what)?;
                Ok(Value::Array { elem_type, len })
            }
            t => self.scalar(t, what),
        }
    }
}

/// Bytes of a tensor of `ne` elements of ggml type `t`, or why there is no such tensor.
fn tensor_bytes(name: &str, ne: &[u64], t: u32) -> Result<u64, Problem> {
    if t >= sys::GGML_TYPE_COUNT {
        return Err(format!("tensor {name}: unknown ggml type {t}"));
    }
    let (block, type_size) = unsafe { (sys::ggml_blck_size(t) as u64, sys::ggml_type_size(t) as u64) };
    if block == 0 || type_size == 0 {
        return Err(format!("tensor {name}: ggml type {t} is no longer supported"));
    }
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

/// Reads and checks the header of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<Gguf, Problem> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut c = Cursor { r: std::io::BufReader::new(file), pos: 0, len };
    if c.bytes(4, "magic")? != b"GGUF" {
        return Err("not a GGUF file (bad magic)".into());
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!("GGUF version {version} is not supported (2 and 3 are)"));
    }
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    // A key-value pair takes at least 12 bytes, a tensor entry at least 24.
    if n_kv > len / 12 || n_tensors > len / 24 {
        return Err(format!("counts of {n_kv} metadata entries and {n_tensors} tensors cannot fit in {len} bytes"));
    }
    let mut kv = HashMap::new();
    let mut kv_types = HashMap::new();
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key {i}"))?;
        let t = c.u32(&format!("type of {key}"))?;
        let value = c.value(t, &key)?;
        kv_types.insert(key.clone(), t);
        if kv.insert(key.clone(), value).is_some() {
            return Err(format!("metadata key {key} appears twice"));
        }
    }
    let alignment = match kv.get("general.alignment") {
        None => 32,
        Some(Value::Uint(a)) if *a > 0 && a.is_power_of_two() && *a <= 1 << 20 => *a,
        Some(v) => return Err(format!("general.alignment {v:?} is not a power of two")),
    };
    let mut tensors = HashMap::new();
    let mut spans = Vec::new();
    let mut names = HashSet::new();
    for i in 0..n_tensors {
        let name = c.string(&format!("tensor name {i}"))?;
        if name.len() >= 64 {
            return Err(format!("tensor name {name} is longer than ggml's 63 bytes"));
        }
        let n_dims = c.u32(&format!("dimensions of {name}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!("tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS})"));
        }
        let ne = (0..n_dims).map(|_| c.u64(&format!("shape of {name}"))).collect::<Result<Vec<_>, _>>()?;
        if ne.iter().any(|&d| d == 0 || d > i64::MAX as u64) {
            return Err(format!("tensor {name} has shape {ne:?}"));
        }
        let ggml_type = c.u32(&format!("type of {name}"))?;
        let offset = c.u64(&format!("offset of {name}"))?;
        if offset % alignment != 0 {
            return Err(format!("tensor {name}: offset {offset} is not aligned to {alignment}"));
        }
        let bytes = tensor_bytes(&name, &ne, ggml_type)?;
        if !names.insert(name.clone()) {
            return Err(format!("tensor {name} appears twice"));
        }
        spans.push((offset, bytes, name.clone()));
        tensors.insert(name, TensorInfo { ne });
    }
    let data_start = c.pos.div_ceil(alignment) * alignment;
    let data_len = len.saturating_sub(data_start);
    for (offset, bytes, name) in &spans {
        if offset.checked_add(*bytes).is_none_or(|end| end > data_len) {
            return Err(format!("tensor {name}: {bytes} bytes at data offset {offset} run past the end of the file ({data_len} data bytes)"));
        }
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            return Err(format!("tensors {} and {} overlap", pair[0].2, pair[1].2));
        }
    }
    Ok(Gguf { kv, kv_types, tensors })
}
