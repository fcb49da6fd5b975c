//! Checks of model files before llama.cpp sees them: the path is a readable regular file, it is
//! GGUF, and its architecture is the kind of file the caller said it is.

use std::io::Read;
use std::path::Path;

use crate::error::{fail, mm_status::*, Result};
use crate::gguf::{self, Gguf, Value};
use crate::projector_rules;

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

/// The output sizes a projector's encoders claim: (tensor read, size), vision then audio.
/// Plain values, so that nothing the checks allocated outlives them (see `gguf.rs`).
pub type ProjectorOutputs = [Option<(&'static str, u64)>; 2];

/// Fails unless `path` is a GGUF projector whose metadata and tensor shapes agree, so that
/// clip.cpp's graph (built while loading) meets no failed assertion. Returns the output sizes
/// its encoders claim, for [`expect_projector_output`].
pub fn expect_projector(path: &Path) -> Result<ProjectorOutputs> {
    let what = format!("projector {}", path.display());
    let (g, arch) = architecture(path, "projector")?;
    if arch != PROJECTOR_ARCH {
        return fail(MM_ERR_WRONG_FILE_KIND, format!("{what}: this is a '{arch}' model, not a projector (architecture 'clip')"));
    }
    let checks = || -> std::result::Result<(), String> {
        check_key_types(&g)?;
        for (prefix, kind) in [("v", "vision"), ("a", "audio")] {
            check_encoder(&g, prefix, kind)?;
            if let Some(projector_type) = encoder_type(&g, kind) {
                if !projector_rules::PROJECTOR_TYPES.contains(&projector_type.as_str()) {
                    return Err(format!("projector type '{projector_type}' is not one this build of llama.cpp knows"));
                }
                check_tensor_rules(&g, &projector_type)?;
                check_positions(&g, &projector_type)?;
            }
        }
        Ok(())
    };
    checks().or_else(|m| fail(MM_ERR_PROJECTOR_LOAD, format!("{what}: {m}")))?;
    Ok(["vision", "audio"].map(|kind| {
        let (tensor, axis) = output_size_source(&g, &encoder_type(&g, kind)?)?;
        Some((tensor, *g.tensors.get(tensor)?.ne.get(axis)?))
    }))
}

/// clip.cpp reads scalar keys with typed getters that abort on any other GGUF type.
fn check_key_types(g: &Gguf) -> std::result::Result<(), String> {
    const BOOL: u32 = 7;
    const INT32: u32 = 5;
    const FLOAT32: u32 = 6;
    const STRING: u32 = 8;
    const ARRAY: u32 = 9;
    const UINT32: u32 = 4;
    for (key, &t) in &g.kv_types {
        let want = match key.as_str() {
            "general.name" | "general.description" => STRING,
            k if !k.starts_with("clip.") || t == ARRAY => continue,
            "clip.has_vision_encoder" | "clip.has_audio_encoder" | "clip.has_gen_audio_encoder" | "clip.use_gelu" | "clip.use_silu" => BOOL,
            "clip.minicpmv_version" => INT32,
            "clip.vision.swiglu_clamp" => FLOAT32,
            k if k.ends_with(".attention.layer_norm_epsilon") => FLOAT32,
            k if k.ends_with("projector_type") || k == "clip.vision.mm_patch_merge_type" || k == "clip.gen.audio.model_variant" => STRING,
            _ => UINT32,
        };
        if t != want {
            return Err(format!("metadata {key} has GGUF type {t}, clip.cpp reads type {want}"));
        }
    }
    Ok(())
}

/// The projector type clip.cpp uses for an encoder the file declares (`clip.has_{kind}_encoder`):
/// `clip.projector_type` first, then `clip.{kind}.projector_type`.
fn encoder_type(g: &Gguf, kind: &str) -> Option<String> {
    if g.kv.get(&format!("clip.has_{kind}_encoder")) != Some(&Value::Bool(true)) {
        return None;
    }
    let raw = [format!("clip.projector_type"), format!("clip.{kind}.projector_type")]
        .iter()
        .find_map(|k| g.kv.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()))?
        .to_string();
    Some(projector_rules::resolve_type(&raw, kind == "vision").to_string())
}

/// Expands a tensor name pattern with `%d` for each layer of its encoder.
fn expand(g: &Gguf, pattern: &str) -> Vec<String> {
    if !pattern.contains("%d") {
        return vec![pattern.to_string()];
    }
    let key = if pattern.starts_with("a.gen.") {
        "clip.gen.audio.block_count"
    } else if pattern.starts_with("a.") {
        "clip.audio.block_count"
    } else {
        "clip.vision.block_count"
    };
    let layers = g.kv.get(key).and_then(Value::as_u64).unwrap_or(0).min(MAX_LAYERS);
    if pattern.matches("%d").count() > 1 {
        // Two indices (stage, block): the pairs that exist in the file.
        return g.tensors.keys().filter(|n| matches_pattern(pattern, n)).cloned().collect();
    }
    (0..layers).map(|i| pattern.replacen("%d", &i.to_string(), 1)).collect()
}

/// Whether `name` is `pattern` with numbers in place of its `%d`s.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let mut rest = name;
    for (i, part) in pattern.split("%d").enumerate() {
        if i > 0 {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return false;
            }
            rest = &rest[digits..];
        }
        match rest.strip_prefix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Position tables as long as the graphs index them (`ggml_get_rows` asserts otherwise).
fn check_positions(g: &Gguf, projector_type: &str) -> std::result::Result<(), String> {
    let rows = |name: &str| g.tensors.get(name).and_then(|t| t.ne.get(1).copied());
    let number = |key: &str| g.kv.get(key).and_then(Value::as_u64).unwrap_or(0);
    let need = match projector_type {
        // clip_graph_llava (models/llava.cpp:7): one row a patch, plus one for the class token.
        "mlp" | "ldp" | "ldpv2" | "adapter" => {
            let (image, patch) = (number("clip.vision.image_size"), number("clip.vision.patch_size").max(1));
            let kernel = g.tensors.get("v.patch_embd.weight").map(|t| (t.ne[0], t.ne.get(1).copied().unwrap_or(0)));
            if kernel.is_some_and(|k| k != (patch, patch)) {
                return Err(format!("tensor v.patch_embd.weight has a {:?} kernel; the patch size is {patch}", kernel.unwrap()));
            }
            Some(("v.position_embd.weight", (image / patch).pow(2) + g.tensors.contains_key("v.class_embd") as u64))
        }
        // Whisper encoders (models/whisper-enc.cpp:6): 1500 positions a 30 s window.
        "ultravox" | "qwen2a" | "voxtral" | "glma" | "meralion" | "musicflamingo" | "lfm2a" => Some(("a.position_embd.weight", 1500)),
        _ => None,
    };
    match need {
        Some((name, n)) if rows(name).is_some_and(|r| r < n) => Err(format!("tensor {name} has {} rows; the {projector_type} graph reads {n}", rows(name).unwrap())),
        _ => Ok(()),
    }
}

/// The tensors a projector type's graph needs or must not have (see `projector_rules`).
fn check_tensor_rules(g: &Gguf, projector_type: &str) -> std::result::Result<(), String> {
    let rules = projector_rules::rules(projector_type);
    for name in rules.required.iter().flat_map(|p| expand(g, p)) {
        if !g.tensors.contains_key(&name) {
            return Err(format!("projector type {projector_type} needs tensor {name}"));
        }
    }
    for pattern in rules.forbidden {
        if let Some(name) = g.tensors.keys().find(|n| matches_pattern(pattern, n)) {
            return Err(format!("projector type {projector_type} cannot have tensor {name}"));
        }
    }
    for rule in projector_rules::conditional_rules(projector_type) {
        for (when, index) in expand(g, rule.when).iter().zip(0u64..) {
            if g.tensors.contains_key(when) != rule.present {
                continue;
            }
            // Bind the same layer index in the required names as in `when`.
            for then in rule.then_required {
                let name = if rule.when.matches("%d").count() == 1 { then.replacen("%d", &index.to_string(), 1) } else { then.to_string() };
                if !name.contains("%d") && !g.tensors.contains_key(&name) {
                    return Err(format!("projector type {projector_type}: tensor {name} is needed when {when} is {}", if rule.present { "present" } else { "absent" }));
                }
            }
        }
    }
    Ok(())
}

/// Where a projector type's output size is found: (tensor, axis), as `clip_n_mmproj_embd`
/// reads it. Types not listed are checked by mtmd itself.
fn output_size_source(g: &Gguf, projector_type: &str) -> Option<(&'static str, usize)> {
    Some(match projector_type {
        // `mlp` with a third layer is clip.cpp's MLP_NORM variant.
        "mlp" if g.tensors.contains_key("mm.3.weight") => ("mm.3.bias", 0),
        "mlp" | "pixtral" | "lightonocr" | "dots_ocr" | "dots3note_v" | "muse-glimmer" | "yasa2" | "lfm2" | "kimivl" | "paddleocr" | "kimik25" | "deepseek4v" => ("mm.2.weight", 1),
        "qwen2vl_merger" | "qwen2.5vl_merger" | "exaone4_5" | "youtuvl" | "ling3vl" => ("mm.2.bias", 0),
        "gemma3" | "gemma3nv" => ("mm.input_projection.weight", 0),
        "gemma4v" | "gemma4uv" => ("mm.input_projection.weight", 1),
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
pub fn expect_projector_output(outputs: &ProjectorOutputs, path: &Path, n_embd: i32) -> Result<()> {
    for (tensor, out) in outputs.iter().flatten() {
        if *out != n_embd as u64 {
            return fail(
                MM_ERR_PROJECTOR_MISMATCH,
                format!("projector {}: its output size ({out}, tensor {tensor}) differs from the text model's embedding size ({n_embd})", path.display()),
            );
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
