//! Tiny random-weight model fixtures: a `llama` text model, a `clip` projector (LLaVA-style
//! `mlp`) and a PNG image, written with ggml's own GGUF writer.
//!
//! Every test, example and binding takes its models from here (through `mm-fixtures`), so there
//! is one description of what llama.cpp needs (see `shared/design/fixtures.md`). The same spec
//! and seed always give the same bytes.

use std::ffi::CString;
use std::os::raw::c_char;
use std::path::Path;

use llama_cpp_sys_2 as sys;

/// Sizes of a generated model pair.
#[derive(Clone, Debug)]
pub struct FixtureSpec {
    /// Text model embedding size (the projector's output size unless `proj_out` says otherwise).
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_ff: u32,
    pub n_ctx_train: u32,
    /// Vision tower: input image size and patch size (image tokens = (image/patch)^2).
    pub image_size: u32,
    pub patch_size: u32,
    pub v_hidden: u32,
    pub v_heads: u32,
    pub v_ff: u32,
    pub v_layers: u32,
    /// Width of the projector's hidden layer (`mm.0`).
    pub proj_hidden: u32,
    /// Projector output size; `None` means `n_embd` (a matching pair).
    pub proj_out: Option<u32>,
    pub seed: u64,
    /// Metadata written over the usual values (tests of malformed files).
    pub overrides: Vec<(String, MetaValue)>,
}

/// A metadata value for [`FixtureSpec::overrides`].
#[derive(Clone, Debug)]
pub enum MetaValue {
    U32(u32),
    F32(f32),
    Str(String),
}

impl Default for FixtureSpec {
    fn default() -> Self {
        FixtureSpec {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_ff: 128,
            n_ctx_train: 4096,
            image_size: 32,
            patch_size: 8,
            v_hidden: 32,
            v_heads: 4,
            // Must differ from v_hidden: clip.cpp swaps up/down when ffn_down.ne[0] == hidden.
            v_ff: 64,
            v_layers: 2,
            proj_hidden: 64,
            proj_out: None,
            seed: 42,
            overrides: Vec::new(),
        }
    }
}

impl FixtureSpec {
    /// A larger pair for benchmarks, where compute and not overhead dominates: n_embd 256, 4
    /// layers, and a 224 px vision tower with patch 14 (256 positions an image).
    pub fn bench() -> Self {
        FixtureSpec {
            n_embd: 256,
            n_layer: 4,
            n_head: 4,
            n_ff: 768,
            n_ctx_train: 8192,
            image_size: 224,
            patch_size: 14,
            v_hidden: 192,
            v_heads: 3,
            v_ff: 768,
            v_layers: 4,
            proj_hidden: 256,
            ..FixtureSpec::default()
        }
    }
}

/// The file names `write_all` uses.
pub const MODEL_FILE: &str = "tiny-llama.gguf";
pub const MMPROJ_FILE: &str = "tiny-mmproj.gguf";
pub const IMAGE_FILE: &str = "tiny-image.png";

/// Writes the model, the projector and a 48x40 PNG into `dir` (created if missing).
pub fn write_all(dir: &Path, spec: &FixtureSpec) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_text_model(&dir.join(MODEL_FILE), spec)?;
    write_projector(&dir.join(MMPROJ_FILE), spec)?;
    std::fs::write(dir.join(IMAGE_FILE), png_rgb(48, 40, &test_pattern(48, 40, spec.seed)))
        .map_err(|e| format!("{}: {e}", dir.join(IMAGE_FILE).display()))
}

/// Deterministic pseudo-random numbers (splitmix64): same seed, same weights, on every platform.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    pub(crate) fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * scale
    }
}

/// How a tensor is filled.
#[derive(Clone, Copy)]
pub(crate) enum Fill {
    Random(f32),
    Ones,
    Zeros,
}

/// A GGUF file under construction: metadata in a gguf context, tensors in a ggml context.
pub(crate) struct GgufWriter {
    gguf: *mut sys::gguf_context,
    ggml: *mut sys::ggml_context,
    rng: Rng,
}

impl GgufWriter {
    pub(crate) fn new(seed: u64, tensor_bytes: usize) -> Self {
        let params = sys::ggml_init_params {
            mem_size: tensor_bytes + 4096 * 1024,
            mem_buffer: std::ptr::null_mut(),
            no_alloc: false,
        };
        // SAFETY: plain constructors; both results are checked and freed in Drop.
        let (gguf, ggml) = unsafe { (sys::gguf_init_empty(), sys::ggml_init(params)) };
        assert!(!gguf.is_null() && !ggml.is_null(), "ggml could not allocate a fixture");
        GgufWriter { gguf, ggml, rng: Rng(seed) }
    }

    pub(crate) fn key(key: &str) -> CString {
        CString::new(key).expect("fixture keys have no NUL")
    }

    pub(crate) fn str(&mut self, key: &str, val: &str) {
        let (k, v) = (Self::key(key), Self::key(val));
        unsafe { sys::gguf_set_val_str(self.gguf, k.as_ptr(), v.as_ptr()) }
    }
    pub(crate) fn u32(&mut self, key: &str, val: u32) {
        let k = Self::key(key);
        unsafe { sys::gguf_set_val_u32(self.gguf, k.as_ptr(), val) }
    }
    pub(crate) fn f32(&mut self, key: &str, val: f32) {
        let k = Self::key(key);
        unsafe { sys::gguf_set_val_f32(self.gguf, k.as_ptr(), val) }
    }
    pub(crate) fn bool(&mut self, key: &str, val: bool) {
        let k = Self::key(key);
        unsafe { sys::gguf_set_val_bool(self.gguf, k.as_ptr(), val) }
    }
    pub(crate) fn f32_array(&mut self, key: &str, vals: &[f32]) {
        let k = Self::key(key);
        unsafe {
            sys::gguf_set_arr_data(self.gguf, k.as_ptr(), sys::GGUF_TYPE_FLOAT32, vals.as_ptr().cast(), vals.len())
        }
    }
    pub(crate) fn i32_array(&mut self, key: &str, vals: &[i32]) {
        let k = Self::key(key);
        unsafe {
            sys::gguf_set_arr_data(self.gguf, k.as_ptr(), sys::GGUF_TYPE_INT32, vals.as_ptr().cast(), vals.len())
        }
    }
    pub(crate) fn str_array(&mut self, key: &str, vals: &[String]) {
        let k = Self::key(key);
        let owned: Vec<CString> = vals.iter().map(|s| Self::key(s)).collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        unsafe { sys::gguf_set_arr_str(self.gguf, k.as_ptr(), ptrs.as_mut_ptr(), ptrs.len()) }
    }

    /// Adds an F32 tensor of shape `ne` (ggml order) filled as asked.
    pub(crate) fn tensor(&mut self, name: &str, ne: &[u32], fill: Fill) {
        let ne64: Vec<i64> = ne.iter().map(|&n| n as i64).collect();
        let name_c = Self::key(name);
        unsafe {
            let t = sys::ggml_new_tensor(self.ggml, sys::GGML_TYPE_F32, ne64.len() as i32, ne64.as_ptr());
            assert!(!t.is_null(), "fixture tensor {name} did not fit");
            sys::ggml_set_name(t, name_c.as_ptr());
            let n = sys::ggml_nelements(t) as usize;
            let data = std::slice::from_raw_parts_mut((*t).data as *mut f32, n);
            for v in data.iter_mut() {
                *v = match fill {
                    Fill::Random(scale) => self.rng.uniform(scale),
                    Fill::Ones => 1.0,
                    Fill::Zeros => 0.0,
                };
            }
            sys::gguf_add_tensor(self.gguf, t);
        }
    }

    /// Writes `overrides` over the values set so far.
    pub(crate) fn apply(&mut self, overrides: &[(String, MetaValue)]) {
        for (key, value) in overrides {
            match value {
                MetaValue::U32(v) => self.u32(key, *v),
                MetaValue::F32(v) => self.f32(key, *v),
                MetaValue::Str(v) => self.str(key, v),
            }
        }
    }

    pub(crate) fn write(self, path: &Path) -> Result<(), String> {
        let p = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| "path has NUL".to_string())?;
        if unsafe { sys::gguf_write_to_file(self.gguf, p.as_ptr(), false) } {
            Ok(())
        } else {
            Err(format!("{}: could not write GGUF file", path.display()))
        }
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        unsafe {
            sys::gguf_free(self.gguf);
            sys::ggml_free(self.ggml);
        }
    }
}

/// GPT-2's byte-to-unicode table: token `i` of the vocabulary is the character for byte `i`.
fn byte_to_unicode() -> Vec<char> {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut next = 256;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// Merges whose results are tokens 256.. of the vocabulary.
const MERGES: [(&str, &str); 6] = [("Ġ", "t"), ("t", "h"), ("h", "e"), ("i", "n"), ("a", "n"), ("e", "r")];
/// Control tokens at the end of the vocabulary; the first and last end generation.
const CONTROL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Writes a `llama` text model (all F32) with a 265-token byte-level BPE vocabulary.
pub fn write_text_model(path: &Path, s: &FixtureSpec) -> Result<(), String> {
    let (e, ff, head_dim) = (s.n_embd, s.n_ff, s.n_embd / s.n_head);
    let mut tokens: Vec<String> = byte_to_unicode().into_iter().map(String::from).collect();
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.extend(CONTROL_TOKENS.iter().map(|t| t.to_string()));
    let v = tokens.len() as u32;
    let mut types = vec![1i32; tokens.len()];
    types[tokens.len() - CONTROL_TOKENS.len()..].fill(3);
    let eos = v - 3;

    let floats = (v * e * 2 + s.n_layer * (4 * e * e + 3 * e * ff + 2 * e) + e) as usize;
    let mut w = GgufWriter::new(s.seed, floats * 4 + 1024 * (s.n_layer as usize + 4) * 512);
    w.str("general.architecture", "llama");
    w.str("general.name", "mm-session tiny llama");
    w.u32("general.file_type", 0);
    w.u32("llama.context_length", s.n_ctx_train);
    w.u32("llama.embedding_length", e);
    w.u32("llama.block_count", s.n_layer);
    w.u32("llama.feed_forward_length", ff);
    w.u32("llama.attention.head_count", s.n_head);
    w.u32("llama.attention.head_count_kv", s.n_head);
    w.u32("llama.rope.dimension_count", head_dim);
    w.f32("llama.rope.freq_base", 10000.0);
    w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    w.u32("llama.vocab_size", v);
    w.str("tokenizer.ggml.model", "gpt2");
    w.str("tokenizer.ggml.pre", "gpt-2");
    w.str_array("tokenizer.ggml.tokens", &tokens);
    w.i32_array("tokenizer.ggml.token_type", &types);
    w.str_array("tokenizer.ggml.merges", &MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>());
    w.u32("tokenizer.ggml.bos_token_id", eos);
    w.u32("tokenizer.ggml.eos_token_id", eos);
    w.u32("tokenizer.ggml.padding_token_id", eos);
    w.bool("tokenizer.ggml.add_bos_token", false);
    w.str("tokenizer.chat_template", CHATML_TEMPLATE);
    w.apply(&s.overrides);

    let scale = 1.0 / (e as f32).sqrt();
    w.tensor("token_embd.weight", &[e, v], Fill::Random(1.0));
    w.tensor("output_norm.weight", &[e], Fill::Ones);
    w.tensor("output.weight", &[e, v], Fill::Random(scale * 4.0));
    for i in 0..s.n_layer {
        w.tensor(&format!("blk.{i}.attn_norm.weight"), &[e], Fill::Ones);
        for t in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            w.tensor(&format!("blk.{i}.{t}.weight"), &[e, e], Fill::Random(scale));
        }
        w.tensor(&format!("blk.{i}.ffn_norm.weight"), &[e], Fill::Ones);
        w.tensor(&format!("blk.{i}.ffn_gate.weight"), &[e, ff], Fill::Random(scale));
        w.tensor(&format!("blk.{i}.ffn_up.weight"), &[e, ff], Fill::Random(scale));
        w.tensor(&format!("blk.{i}.ffn_down.weight"), &[ff, e], Fill::Random(1.0 / (ff as f32).sqrt()));
    }
    w.write(path)
}

/// Writes a `clip` projector of type `mlp` (LLaVA-1.5 style) with a class token and layer norms.
pub fn write_projector(path: &Path, s: &FixtureSpec) -> Result<(), String> {
    let (h, ff, p, m) = (s.v_hidden, s.v_ff, s.patch_size, s.proj_hidden);
    let out = s.proj_out.unwrap_or(s.n_embd);
    let n_pos = (s.image_size / p) * (s.image_size / p) + 1;
    let floats = (p * p * 3 * h + h * n_pos + s.v_layers * (4 * h * h + 2 * h * ff + 10 * h) + h * m + m * out + m + out) as usize;
    let mut w = GgufWriter::new(s.seed ^ 0x5EED_C11F, floats * 4 + 1024 * (s.v_layers as usize + 8) * 512);
    w.str("general.architecture", "clip");
    w.str("general.name", "mm-session tiny projector");
    w.u32("general.file_type", 0);
    w.bool("clip.has_vision_encoder", true);
    w.str("clip.projector_type", "mlp");
    w.bool("clip.use_gelu", true);
    w.u32("clip.vision.image_size", s.image_size);
    w.u32("clip.vision.patch_size", p);
    w.u32("clip.vision.embedding_length", h);
    w.u32("clip.vision.feed_forward_length", ff);
    w.u32("clip.vision.block_count", s.v_layers);
    w.u32("clip.vision.projection_dim", out);
    w.u32("clip.vision.attention.head_count", s.v_heads);
    w.f32("clip.vision.attention.layer_norm_epsilon", 1e-5);
    w.f32_array("clip.vision.image_mean", &[0.5, 0.5, 0.5]);
    w.f32_array("clip.vision.image_std", &[0.5, 0.5, 0.5]);
    w.apply(&s.overrides);

    let scale = 1.0 / (h as f32).sqrt();
    w.tensor("v.patch_embd.weight", &[p, p, 3, h], Fill::Random(1.0 / ((p * p * 3) as f32).sqrt()));
    w.tensor("v.class_embd", &[h], Fill::Random(0.5));
    w.tensor("v.position_embd.weight", &[h, n_pos], Fill::Random(0.5));
    w.tensor("v.pre_ln.weight", &[h], Fill::Ones);
    w.tensor("v.pre_ln.bias", &[h], Fill::Zeros);
    for i in 0..s.v_layers {
        for ln in ["ln1", "ln2"] {
            w.tensor(&format!("v.blk.{i}.{ln}.weight"), &[h], Fill::Ones);
            w.tensor(&format!("v.blk.{i}.{ln}.bias"), &[h], Fill::Zeros);
        }
        for t in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            w.tensor(&format!("v.blk.{i}.{t}.weight"), &[h, h], Fill::Random(scale));
            w.tensor(&format!("v.blk.{i}.{t}.bias"), &[h], Fill::Zeros);
        }
        w.tensor(&format!("v.blk.{i}.ffn_up.weight"), &[h, ff], Fill::Random(scale));
        w.tensor(&format!("v.blk.{i}.ffn_up.bias"), &[ff], Fill::Zeros);
        w.tensor(&format!("v.blk.{i}.ffn_down.weight"), &[ff, h], Fill::Random(1.0 / (ff as f32).sqrt()));
        w.tensor(&format!("v.blk.{i}.ffn_down.bias"), &[h], Fill::Zeros);
    }
    w.tensor("mm.0.weight", &[h, m], Fill::Random(scale));
    w.tensor("mm.0.bias", &[m], Fill::Zeros);
    w.tensor("mm.2.weight", &[m, out], Fill::Random(1.0 / (m as f32).sqrt()));
    w.tensor("mm.2.bias", &[out], Fill::Zeros);
    w.write(path)
}

/// RGB bytes of a seeded gradient with noise, `width * height * 3` long.
pub fn test_pattern(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut px = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let noise = (rng.next_u64() & 31) as u32;
            px.push(((x * 255 / width.max(1)) + noise).min(255) as u8);
            px.push(((y * 255 / height.max(1)) + noise).min(255) as u8);
            px.push((((x + y) * 7 + noise) & 255) as u8);
        }
    }
    px
}

/// Encodes RGB pixels as a PNG (zlib stream of stored blocks: valid, simple, uncompressed).
pub fn png_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in rgb.chunks(row).take(height as usize) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    let mut z = vec![0x78, 0x01];
    let mut blocks = raw.chunks(65535).peekable();
    while let Some(block) = blocks.next() {
        z.push(if blocks.peek().is_none() { 1 } else { 0 });
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &z), (b"IEND", &Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
