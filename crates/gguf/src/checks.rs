//! Checks of model files before llama.cpp sees them: the file is a well-formed GGUF, its
//! architecture is the kind of file the caller said it is, and its metadata and tensor shapes
//! are ones llama.cpp and clip.cpp take without aborting.

use std::path::Path;

use crate::projectors::{self, Positions};
use crate::reader::{self, Gguf, Value};

/// Which check a file failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Unreadable, or not a well-formed GGUF.
    Unreadable,
    /// A projector given as a text model, or the reverse.
    WrongKind,
    /// A text model llama.cpp would refuse or abort on.
    TextModel,
    /// A projector clip.cpp would refuse or abort on.
    Projector,
    /// A projector whose output size differs from the text model's embedding size.
    ProjectorMismatch,
}

/// A failed check: which one, and a message naming the file and the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    pub kind: CheckKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, CheckError>;

fn fail<T>(kind: CheckKind, message: String) -> Result<T> {
    Err(CheckError { kind, message })
}

/// The architecture of projector files (`general.architecture`).
const PROJECTOR_ARCH: &str = "clip";

/// The most layers llama.cpp allows (`LLAMA_MAX_LAYERS`; more is an assertion, not an error).
const MAX_LAYERS: u64 = 512;

/// Largest size a projector's encoder may claim in its metadata.
const MAX_ENCODER_SIZE: u64 = 1 << 24;

/// A checked text model: its header, for what the caller needs beyond the checks.
pub struct TextModel {
    pub gguf: Gguf,
}

/// Fails unless `path` is a GGUF text model whose metadata llama.cpp can take without
/// aborting.
pub fn check_text_model(path: &Path) -> Result<TextModel> {
    let what = format!("text model {}", path.display());
    let (g, arch) = architecture(path, &what)?;
    if arch == PROJECTOR_ARCH {
        return fail(
            CheckKind::WrongKind,
            format!("{what}: this is a projector (architecture 'clip'), not a text model"),
        );
    }
    let checks = || -> std::result::Result<(), String> {
        if let Some(v) = g.kv.get(&format!("{arch}.block_count")) {
            match v.as_u64() {
                Some(n) if (1..=MAX_LAYERS).contains(&n) => {}
                _ => return Err(format!("{arch}.block_count is {v:?}; llama.cpp takes 1 to {MAX_LAYERS} layers")),
            }
        }
        for key in ["attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"] {
            check_epsilon(&g, &format!("{arch}.{key}"))?;
        }
        Ok(())
    };
    checks().or_else(|m| fail(CheckKind::TextModel, format!("{what}: {m}")))?;
    Ok(TextModel { gguf: g })
}

/// An encoder a projector file can declare, with the names clip.cpp reads for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoder {
    Vision,
    Audio,
    /// The audio-generation encoder of speech models (`a.gen.*` tensors).
    GenAudio,
}

impl Encoder {
    const ALL: [Encoder; 3] = [Encoder::Vision, Encoder::Audio, Encoder::GenAudio];

    /// The `clip.{..}.` prefix of its metadata, without the dot.
    fn metadata(self) -> &'static str {
        match self {
            Encoder::Vision => "clip.vision",
            Encoder::Audio => "clip.audio",
            Encoder::GenAudio => "clip.gen.audio",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Encoder::Vision => "clip.has_vision_encoder",
            Encoder::Audio => "clip.has_audio_encoder",
            Encoder::GenAudio => "clip.has_gen_audio_encoder",
        }
    }

    /// The encoder whose layers a tensor name pattern belongs to.
    fn of_tensor(name: &str) -> Encoder {
        if name.starts_with("a.gen.") {
            Encoder::GenAudio
        } else if name.starts_with("a.") {
            Encoder::Audio
        } else {
            Encoder::Vision
        }
    }
}

/// A checked projector: the output size each encoder that feeds the text model claims.
pub struct Projector {
    /// (encoder's tensor read, size), for the vision and audio encoders that declare one.
    pub outputs: Vec<(&'static str, u64)>,
    pub gguf: Gguf,
}

/// Fails unless `path` is a GGUF projector whose metadata and tensor shapes agree, so that
/// clip.cpp's graph (built while loading) meets no failed assertion.
pub fn check_projector(path: &Path) -> Result<Projector> {
    let what = format!("projector {}", path.display());
    let (g, arch) = architecture(path, &what)?;
    if arch != PROJECTOR_ARCH {
        return fail(
            CheckKind::WrongKind,
            format!("{what}: this is a '{arch}' model, not a projector (architecture 'clip')"),
        );
    }
    let mut outputs = Vec::new();
    let mut checks = || -> std::result::Result<(), String> {
        check_key_types(&g)?;
        for encoder in Encoder::ALL {
            if encoder != Encoder::GenAudio {
                check_encoder(&g, encoder)?;
            }
            let Some(name) = encoder_type(&g, encoder) else { continue };
            let Some(projector_type) = projectors::find(&name) else {
                return Err(format!("projector type '{name}' is not one this build of llama.cpp knows"));
            };
            check_tensor_rules(&g, &name, projector_type)?;
            check_positions(&g, &name, projector_type)?;
            if encoder != Encoder::GenAudio {
                outputs.extend(output_size(&g, projector_type));
            }
        }
        Ok(())
    };
    checks().or_else(|m| fail(CheckKind::Projector, format!("{what}: {m}")))?;
    Ok(Projector { outputs, gguf: g })
}

/// Fails when a projector's output sizes (`Projector::outputs`) differ from the text model's
/// embedding size. mtmd finds
/// this too, but only after loading the encoder, and then leaks it (clip.cpp's context is freed
/// by no one when mtmd's constructor throws): about 11 MB a try.
pub fn check_projector_output(outputs: &[(&str, u64)], path: &Path, n_embd: u64) -> Result<()> {
    for (tensor, out) in outputs {
        if *out != n_embd {
            return fail(
                CheckKind::ProjectorMismatch,
                format!("projector {}: its output size ({out}, tensor {tensor}) differs from the text model's embedding size ({n_embd})", path.display()),
            );
        }
    }
    Ok(())
}

/// clip.cpp reads scalar keys with typed getters that abort on any other GGUF type.
fn check_key_types(g: &Gguf) -> std::result::Result<(), String> {
    use reader::{TYPE_ARRAY, TYPE_BOOL, TYPE_FLOAT32, TYPE_INT32, TYPE_STRING, TYPE_UINT32};
    for (key, &t) in &g.kv_types {
        let want = match key.as_str() {
            "general.name" | "general.description" => TYPE_STRING,
            k if !k.starts_with("clip.") || t == TYPE_ARRAY => continue,
            "clip.has_vision_encoder"
            | "clip.has_audio_encoder"
            | "clip.has_gen_audio_encoder"
            | "clip.use_gelu"
            | "clip.use_silu" => TYPE_BOOL,
            "clip.minicpmv_version" => TYPE_INT32,
            "clip.vision.swiglu_clamp" => TYPE_FLOAT32,
            k if k.ends_with(".attention.layer_norm_epsilon") => TYPE_FLOAT32,
            k if k.ends_with("projector_type")
                || k == "clip.vision.mm_patch_merge_type"
                || k == "clip.gen.audio.model_variant" =>
            {
                TYPE_STRING
            }
            _ => TYPE_UINT32,
        };
        if t != want {
            return Err(format!("metadata {key} has GGUF type {t}, clip.cpp reads type {want}"));
        }
    }
    Ok(())
}

/// The projector type clip.cpp uses for an encoder the file declares: `clip.projector_type`
/// first, then the encoder's own `clip.{..}.projector_type`.
fn encoder_type(g: &Gguf, encoder: Encoder) -> Option<String> {
    if g.kv.get(encoder.flag()) != Some(&Value::Bool(true)) {
        return None;
    }
    let raw = ["clip.projector_type".to_string(), format!("{}.projector_type", encoder.metadata())]
        .iter()
        .find_map(|k| g.kv.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()))?
        .to_string();
    Some(projectors::resolve_type(&raw, encoder == Encoder::Vision).to_string())
}

/// Expands a tensor name pattern with `%d` for each layer of its encoder.
fn expand(g: &Gguf, pattern: &str) -> Vec<String> {
    if !pattern.contains("%d") {
        return vec![pattern.to_string()];
    }
    if pattern.matches("%d").count() > 1 {
        // Two indices (stage, block): the pairs that exist in the file.
        return g.tensors.keys().filter(|n| matches_pattern(pattern, n)).cloned().collect();
    }
    let key = format!("{}.block_count", Encoder::of_tensor(pattern).metadata());
    let layers = g.kv.get(&key).and_then(Value::as_u64).unwrap_or(0).min(MAX_LAYERS);
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

/// Position tables as long as the graphs index them.
fn check_positions(g: &Gguf, name: &str, t: &projectors::ProjectorType) -> std::result::Result<(), String> {
    let rows = |tensor: &str| g.tensors.get(tensor).and_then(|t| t.ne.get(1).copied());
    let number = |key: &str| g.kv.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (table, need) = match t.positions {
        Positions::Unchecked => return Ok(()),
        Positions::PerPatch => {
            let (image, patch) = (number("clip.vision.image_size"), number("clip.vision.patch_size").max(1));
            if let Some(kernel) =
                g.tensors.get("v.patch_embd.weight").map(|t| (t.ne[0], t.ne.get(1).copied().unwrap_or(0)))
            {
                if kernel != (patch, patch) {
                    return Err(format!(
                        "tensor v.patch_embd.weight has a {kernel:?} kernel; the patch size is {patch}"
                    ));
                }
            }
            ("v.position_embd.weight", (image / patch).pow(2) + g.tensors.contains_key("v.class_embd") as u64)
        }
        Positions::Rows(table, n) => (table, n),
    };
    match rows(table) {
        Some(r) if r < need => Err(format!("tensor {table} has {r} rows; the {name} graph reads {need}")),
        _ => Ok(()),
    }
}

/// The tensors a projector type's graph needs or must not have.
fn check_tensor_rules(g: &Gguf, name: &str, t: &projectors::ProjectorType) -> std::result::Result<(), String> {
    for tensor in t.required.iter().flat_map(|p| expand(g, p)) {
        if !g.tensors.contains_key(&tensor) {
            return Err(format!("projector type {name} needs tensor {tensor}"));
        }
    }
    for pattern in t.forbidden {
        if let Some(tensor) = g.tensors.keys().find(|n| matches_pattern(pattern, n)) {
            return Err(format!("projector type {name} cannot have tensor {tensor}"));
        }
    }
    for rule in t.conditional {
        for (when, index) in expand(g, rule.when).iter().zip(0u64..) {
            if g.tensors.contains_key(when) != rule.present {
                continue;
            }
            // Bind the same layer index in the required names as in `when`.
            for then in rule.then_required {
                let needed = if rule.when.matches("%d").count() == 1 {
                    then.replacen("%d", &index.to_string(), 1)
                } else {
                    then.to_string()
                };
                if !needed.contains("%d") && !g.tensors.contains_key(&needed) {
                    return Err(format!(
                        "projector type {name}: tensor {needed} is needed when {when} is {}",
                        if rule.present { "present" } else { "absent" }
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The output size a projector type claims, as `clip_n_mmproj_embd` reads it.
fn output_size(g: &Gguf, t: &projectors::ProjectorType) -> Option<(&'static str, u64)> {
    let o = t.output.iter().find(|o| o.when_present.is_none_or(|when| g.tensors.contains_key(when)))?;
    Some((o.tensor, *g.tensors.get(o.tensor)?.ne.get(o.axis)?))
}

fn check_epsilon(g: &Gguf, key: &str) -> std::result::Result<(), String> {
    match g.kv.get(key).map(|v| v.as_f64()) {
        None => Ok(()),
        Some(Some(e)) if e.is_finite() && e >= 0.0 => Ok(()),
        Some(v) => Err(format!("{key} is {v:?}; it must be a finite number >= 0")),
    }
}

/// Checks a vision (`v.*`) or audio (`a.*`) encoder against its `clip.{kind}.*` metadata: sizes
/// present and consistent, and every tensor that feeds the residual stream as wide as it.
fn check_encoder(g: &Gguf, encoder: Encoder) -> std::result::Result<(), String> {
    let (prefix, kind) = match encoder {
        Encoder::Vision => ("v", "vision"),
        _ => ("a", "audio"),
    };
    let key = |k: &str| format!("{}.{k}", encoder.metadata());
    check_epsilon(g, &key("attention.layer_norm_epsilon"))?;
    let has_tensors = g.tensors.keys().any(|n| n.starts_with(&format!("{prefix}.")));
    if !has_tensors {
        return Ok(());
    }
    let number = |k: &str| -> std::result::Result<u64, String> {
        match g.kv.get(&key(k)).map(|v| v.as_u64()) {
            Some(Some(n)) if n > 0 && n <= MAX_ENCODER_SIZE => Ok(n),
            None => Err(format!("{} is missing", key(k))),
            Some(v) => Err(format!("{} is {v:?}; it must be a positive size", key(k))),
        }
    };
    let width = number("embedding_length")?;
    let heads = number("attention.head_count")?;
    if width % heads != 0 {
        return Err(format!(
            "{} ({width}) is not a multiple of {} ({heads})",
            key("embedding_length"),
            key("attention.head_count")
        ));
    }
    let layers = number("block_count")?;
    if layers > MAX_LAYERS {
        return Err(format!("{} is {layers}", key("block_count")));
    }
    if encoder == Encoder::Vision {
        let (image, patch) = (number("image_size")?, number("patch_size")?);
        if patch > image {
            return Err(format!("patch size {patch} is larger than image size {image}"));
        }
    }
    let dim = |name: &str, axis: usize| g.tensors.get(name).and_then(|t| t.ne.get(axis).copied());
    let expect = |name: String, axis: usize, want: u64| match dim(&name, axis) {
        Some(got) if got != want => {
            Err(format!("tensor {name} has {got} along axis {axis}, the {kind} encoder is {want} wide"))
        }
        _ => Ok(()),
    };
    for t in ["position_embd.weight", "class_embd", "pre_ln.weight", "pre_ln.bias", "post_ln.weight", "post_ln.bias"] {
        expect(format!("{prefix}.{t}"), 0, width)?;
    }
    if encoder == Encoder::Vision {
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
                return Err(format!(
                    "tensors {} {:?} and {} {:?} do not map {width} -> FF -> {width}",
                    t("ffn_up.weight"),
                    up.ne,
                    t("ffn_down.weight"),
                    down.ne
                ));
            }
        }
    }
    Ok(())
}

/// Reads the file's header with the strict reader; returns it and its architecture.
fn architecture(path: &Path, what: &str) -> Result<(Gguf, String)> {
    let g = reader::read(path).or_else(|problem| fail(CheckKind::Unreadable, format!("{what}: {problem}")))?;
    match g.kv.get("general.architecture").and_then(Value::as_str) {
        Some(arch) => {
            let arch = arch.to_string();
            Ok((g, arch))
        }
        None => fail(CheckKind::Unreadable, format!("{what}: GGUF without general.architecture")),
    }
}
