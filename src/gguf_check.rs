//! Checks of model files before llama.cpp sees them: the path is a readable regular file, it is
//! GGUF, and its architecture is the kind of file the caller said it is.

use std::io::Read;
use std::path::Path;

use crate::error::{fail, mm_status::*, Result};
use crate::gguf::{self, Gguf, Value};

/// The architecture of projector files (`general.architecture`).
const PROJECTOR_ARCH: &str = "clip";

/// The most layers llama.cpp allows (`LLAMA_MAX_LAYERS`; more is an assertion, not an error).
const MAX_LAYERS: u64 = 512;

/// Fails unless `path` is a GGUF text model whose metadata llama.cpp can take without
/// aborting.
pub fn expect_text_model(path: &Path) -> Result<()> {
    let what = format!("text model {}", path.display());
    let (g, arch) = architecture(path, "text model")?;
    if arch == PROJECTOR_ARCH {
        return fail(MM_ERR_WRONG_FILE_KIND, format!("{what}: this is a projector (architecture 'clip'), not a text model"));
    }
    let bad = |m: String| fail(MM_ERR_MODEL_LOAD, format!("{what}: {m}"));
    if let Some(v) = g.kv.get(&format!("{arch}.block_count")) {
        match v.as_u64() {
            Some(n) if (1..=MAX_LAYERS).contains(&n) => {}
            _ => return bad(format!("{arch}.block_count is {v:?}; llama.cpp takes 1 to {MAX_LAYERS} layers")),
        }
    }
    for key in ["attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"] {
        let key = format!("{arch}.{key}");
        check_epsilon(&g, &key).or_else(|m| bad(m))?;
    }
    Ok(())
}

/// Fails unless `path` is a GGUF projector whose metadata and tensor shapes agree, so that
/// clip.cpp's graph (built while loading) meets no failed assertion. Returns its header.
pub fn expect_projector(path: &Path) -> Result<Gguf> {
    let what = format!("projector {}", path.display());
    let (g, arch) = architecture(path, "projector")?;
    if arch != PROJECTOR_ARCH {
        return fail(MM_ERR_WRONG_FILE_KIND, format!("{what}: this is a '{arch}' model, not a projector (architecture 'clip')"));
    }
    for (prefix, kind) in [("v", "vision"), ("a", "audio")] {
        check_encoder(&g, prefix, kind).or_else(|m| fail(MM_ERR_PROJECTOR_LOAD, format!("{what}: {m}")))?;
    }
    Ok(g)
}

/// Where a projector type's output size is found: (tensor, axis), as `clip_n_mmproj_embd`
/// reads it. Types not listed are checked by mtmd itself.
fn output_size_source(projector_type: &str) -> Option<(&'static str, usize)> {
    Some(match projector_type {
        "mlp" | "pixtral" | "lightonocr" | "dots_ocr" | "dots3note_v" | "muse-glimmer" | "yasa2" | "lfm2" | "kimivl" | "paddleocr" | "kimik25" | "deepseek4v" => ("mm.2.weight", 1),
        "mlp_norm" => ("mm.3.bias", 0),
        "qwen2vl_merger" | "qwen2.5vl_merger" | "exaone4_5" | "youtuvl" | "ling3vl" => ("mm.2.bias", 0),
        "gemma3" | "gemma3nv" => ("mm.input_projection.weight", 0),
        "gemma4v" | "gemma4uv" | "gemma4a" | "gemma4ua" => ("mm.input_projection.weight", 1),
        "idefics3" => ("mm.model.fc.weight", 1),
        "internvl" | "nemotron_v2_vl" => ("mm.3.weight", 1),
        "ultravox" | "voxtral" | "musicflamingo" => ("mm.a.mlp.2.weight", 1),
        "qwen2a" => ("mm.a.fc.weight", 1),
        _ => return None,
    })
}

/// Fails when the projector's output size differs from the text model's embedding size.
/// mtmd finds this too, but only after loading the encoder, and then leaks it (clip.cpp's
/// context is freed by no one when mtmd's constructor throws): about 11 MB a try here.
pub fn expect_projector_output(g: &Gguf, path: &Path, n_embd: i32) -> Result<()> {
    for kind in ["vision", "audio"] {
        let Some(projector_type) = g.kv.get(&format!("clip.{kind}.projector_type")).or_else(|| g.kv.get("clip.projector_type")).and_then(Value::as_str) else {
            continue;
        };
        let Some((tensor, axis)) = output_size_source(projector_type) else { continue };
        if let Some(out) = g.tensors.get(tensor).and_then(|t| t.ne.get(axis)) {
            if *out != n_embd as u64 {
                return fail(
                    MM_ERR_PROJECTOR_MISMATCH,
                    format!("projector {}: its output size ({out}, tensor {tensor}) differs from the text model's embedding size ({n_embd})", path.display()),
                );
            }
        }
    }
    Ok(())
}

fn check_epsilon(g: &Gguf, key: &str) -> std::result::Result<(), String> {
    match g.kv.get(key).map(|v| v.as_f64()) {
        None => Ok(()),
        Some(Some(e)) if e.is_finite() && e >= 0.0 => Ok(()),
        Some(v) => Err(format!("{key} is {v:?}; it must be a finite number >= 0")),
    }
}

/// Checks one encoder (`v.*` vision or `a.*` audio tensors) against its `clip.{kind}.*`
/// metadata: sizes present and consistent, and every tensor that feeds the residual stream as
/// wide as it.
fn check_encoder(g: &Gguf, prefix: &str, kind: &str) -> std::result::Result<(), String> {
    let key = |k: &str| format!("clip.{kind}.{k}");
    check_epsilon(g, &key("attention.layer_norm_epsilon"))?;
    let has_tensors = g.tensors.keys().any(|n| n.starts_with(&format!("{prefix}.")));
    if !has_tensors {
        return Ok(());
    }
    let number = |k: &str| -> std::result::Result<u64, String> {
        match g.kv.get(&key(k)).map(|v| v.as_u64()) {
            Some(Some(n)) if n > 0 && n <= 1 << 24 => Ok(n),
            None => Err(format!("{} is missing", key(k))),
            Some(v) => Err(format!("{} is {v:?}; it must be a positive size", key(k))),
        }
    };
    let width = number("embedding_length")?;
    let heads = number("attention.head_count")?;
    if width % heads != 0 {
        return Err(format!("{} ({width}) is not a multiple of {} ({heads})", key("embedding_length"), key("attention.head_count")));
    }
    let layers = number("block_count")?;
    if layers > MAX_LAYERS {
        return Err(format!("{} is {layers}", key("block_count")));
    }
    if kind == "vision" {
        let (image, patch) = (number("image_size")?, number("patch_size")?);
        if patch > image {
            return Err(format!("patch size {patch} is larger than image size {image}"));
        }
    }
    let dim = |name: &str, axis: usize| g.tensors.get(name).and_then(|t| t.ne.get(axis).copied());
    let expect = |name: String, axis: usize, want: u64| match dim(&name, axis) {
        Some(got) if got != want => Err(format!("tensor {name} has {got} along axis {axis}, the {kind} encoder is {want} wide")),
        _ => Ok(()),
    };
    for t in ["position_embd.weight", "class_embd", "pre_ln.weight", "pre_ln.bias", "post_ln.weight", "post_ln.bias"] {
        expect(format!("{prefix}.{t}"), 0, width)?;
    }
    if kind == "vision" {
        expect(format!("{prefix}.patch_embd.weight"), 3, width)?;
    } else {
        expect(format!("{prefix}.conv1d.1.weight"), 2, width)?;
        if let Ok(mels) = number("num_mel_bins") {
            expect(format!("{prefix}.conv1d.1.weight"), 1, mels)?;
        }
        expect(format!("{prefix}.conv1d.2.weight"), 1, width)?;
        expect(format!("{prefix}.conv1d.2.weight"), 2, width)?;
    }
    for i in 0..layers {
        let t = |name: &str| format!("{prefix}.blk.{i}.{name}");
        for input in ["attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_qkv.weight"] {
            expect(t(input), 0, width)?;
        }
        for norm in ["ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn_out.bias"] {
            expect(t(norm), 0, width)?;
        }
        expect(t("attn_out.weight"), 1, width)?;
        for proj in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            if let Some(out) = dim(&t(&format!("{proj}.weight")), 1) {
                expect(t(&format!("{proj}.bias")), 0, out)?;
            }
        }
        // The feed-forward block maps width -> FF -> width (clip.cpp swaps up and down of old
        // exports, so either orientation of the pair is accepted).
        if let (Some(up), Some(down)) = (g.tensors.get(&t("ffn_up.weight")), g.tensors.get(&t("ffn_down.weight"))) {
            let straight = up.ne[0] == width && down.ne.get(1) == Some(&width) && up.ne.get(1) == Some(&down.ne[0]);
            let swapped = down.ne[0] == width && up.ne.get(1) == Some(&width) && down.ne.get(1) == Some(&up.ne[0]);
            if !straight && !swapped {
                return Err(format!("tensors {} {:?} and {} {:?} do not map {width} -> FF -> {width}", t("ffn_up.weight"), up.ne, t("ffn_down.weight"), down.ne));
            }
        }
    }
    Ok(())
}

/// Checks that `path` is a readable regular file (`what` names it in messages).
pub fn check_regular_file(path: &Path, what: &str) -> Result<()> {
    if path.as_os_str().is_empty() {
        return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: the path is empty"));
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(MM_ERR_FILE_NOT_FOUND, format!("{what} {}: no such file", path.display())),
        Err(e) => fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: {e}", path.display())),
        Ok(m) if m.is_dir() => fail(MM_ERR_NOT_A_FILE, format!("{what} {}: is a directory, not a file", path.display())),
        Ok(m) if !m.is_file() => fail(MM_ERR_NOT_A_FILE, format!("{what} {}: is not a regular file", path.display())),
        Ok(_) => Ok(()),
    }
}

/// Reads the file's header with the strict reader; returns it and its architecture.
fn architecture(path: &Path, what: &str) -> Result<(Gguf, String)> {
    let g = read_checked(path, what)?;
    match g.kv.get("general.architecture").and_then(Value::as_str) {
        Some(arch) => {
            let arch = arch.to_string();
            Ok((g, arch))
        }
        None => fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: GGUF without general.architecture", path.display())),
    }
}

/// Checks that `path` is a readable regular file and a well-formed GGUF.
pub fn read_checked(path: &Path, what: &str) -> Result<Gguf> {
    check_regular_file(path, what)?;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: not a GGUF file (shorter than its magic)", path.display())),
        Err(e) => return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: cannot read it: {e}", path.display())),
        Ok(()) if &magic != b"GGUF" => return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: not a GGUF file (bad magic)", path.display())),
        Ok(()) => {}
    }
    gguf::read(path).or_else(|problem| fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: malformed GGUF: {problem}", path.display())))
}
