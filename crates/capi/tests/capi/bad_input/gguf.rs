//! Malformed model files: truncated at many offsets, flipped bytes in the metadata, absurd
//! counts and lengths, random bytes, wrong kinds, and metadata values that llama.cpp or clip.cpp
//! would abort on. Each case runs `mm_session_create` (and, when it succeeds, one request) in a
//! child process, so that an abort or a crash is seen as one: every case must end with a status,
//! no signal, and no session left alive.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use mm_fixtures::audio as fixtures_audio;
use mm_fixtures::{self as fixtures, FixtureSpec, MetaValue};

/// The child: loads the pair named by the environment, asks once if it loaded, and prints the
/// status. Passes trivially when run as an ordinary test.
#[test]
fn child_case() {
    let (Ok(model), Ok(mmproj)) = (std::env::var("MM_CHILD_MODEL"), std::env::var("MM_CHILD_MMPROJ")) else { return };
    mm_log_set(::mm_session::library::mm_log_level::MM_LOG_OFF as i32, None, std::ptr::null_mut());
    let m = models();
    let model = CString::new(model).unwrap();
    let mmproj = CString::new(mmproj).unwrap();
    let mut p = params(m);
    p.model_path = model.as_ptr();
    p.mmproj_path = if mmproj.is_empty() { std::ptr::null() } else { mmproj.as_ptr() };
    p.n_ctx = 2048;
    let status = match create(&p) {
        Ok(s) => {
            // Run the encoders too: some malformed projectors load and fail only when used.
            let mut info: mm_session_info = unsafe { std::mem::zeroed() };
            info.struct_size = std::mem::size_of::<mm_session_info>() as u32;
            assert_eq!(unsafe { mm_session_get_info(s, &mut info) }, mm_status::MM_OK);
            let wav = fixtures_audio::wav_tone(0.5, 16000, 1);
            let media: Vec<mm_media> =
                [info.supports_vision.then(|| image_item(m)), info.supports_audio.then_some(encoded_item(&wav))]
                    .into_iter()
                    .flatten()
                    .collect();
            let prompt = CString::new("Describe.").unwrap();
            let mut a = mm_ask_params_default();
            a.prompt = prompt.as_ptr();
            a.media = media.as_ptr();
            a.n_media = media.len();
            a.max_tokens = 4;
            let asked = ask(s, &a).map(|_| ()).map_err(|e| e.0);
            assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
            format!("loaded, ask {:?}", asked.err().unwrap_or(mm_status::MM_OK))
        }
        Err((st, msg)) => {
            assert!(!msg.is_empty(), "a failure has a message");
            format!("{st:?}")
        }
    };
    assert_eq!(mm_live_sessions(), 0);
    println!("CHILD-STATUS {status}");
}

struct Case {
    name: String,
    model: PathBuf,
    mmproj: Option<PathBuf>,
}

fn run_child(case: &Case) -> Result<String, String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", &test_name(module_path!(), "child_case"), "--nocapture", "--test-threads=1"])
        .env("MM_CHILD_MODEL", &case.model)
        .env("MM_CHILD_MMPROJ", case.mmproj.as_deref().unwrap_or(Path::new("")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.split_once("CHILD-STATUS ").map(|(_, s)| s)) {
        Some(status) if out.status.success() => Ok(status.to_string()),
        _ => Err(format!(
            "{} ended with {:?}\n{}\n{}",
            case.name,
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr).lines().rev().take(8).collect::<Vec<_>>().join("\n")
        )),
    }
}

/// Where the metadata ends and the tensor data starts in a well-formed GGUF (a fixture), as
/// the project's one GGUF reader finds them.
fn layout(bytes: &[u8]) -> (usize, usize) {
    let g = mm_gguf::reader::parse(bytes).expect("fixtures are well-formed GGUF");
    (g.metadata_end as usize, g.data_start as usize)
}

/// A header-only input of `fuzz/fuzz_gguf.c` ("GGHD", a byte that picks a fixture, a GGUF
/// header) made whole as that harness does: the header, padding, then the fixture's tensor data.
fn expand_header_only(input: &[u8], fixtures: &[Vec<u8>; 3]) -> Vec<u8> {
    let fixture = &fixtures[input[4] as usize % 3];
    let mut out = input[5..].to_vec();
    out.resize(out.len().div_ceil(32) * 32, 0);
    out.extend_from_slice(&fixture[layout(fixture).1..]);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Byte-level mutations of `good`: truncations, flipped metadata bytes, absurd counts, and
/// lengths. `step` spaces the flipped bytes.
fn byte_mutations(dir: &Path, label: &str, good: &[u8], flip_step: usize) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let meta = layout(good).0;
    let mut cuts: Vec<usize> = (0..32).collect();
    cuts.extend((32..meta).step_by(meta / 40 + 1));
    cuts.extend((meta..good.len()).step_by((good.len() - meta) / 30 + 1));
    for cut in cuts {
        out.push((format!("{label} truncated at {cut}"), write(dir, &format!("{label}-cut-{cut}.gguf"), &good[..cut])));
    }
    for at in (4..meta.min(24 + 1500)).step_by(flip_step) {
        let mut b = good.to_vec();
        b[at] ^= 0xFF;
        out.push((format!("{label} byte {at} flipped"), write(dir, &format!("{label}-flip-{at}.gguf"), &b)));
    }
    for (what, offset, value) in [
        ("tensor count", 8, u64::MAX),
        ("tensor count", 8, 1 << 40),
        ("metadata count", 16, u64::MAX),
        ("metadata count", 16, 1 << 33),
        ("first key length", 24, u64::MAX),
        ("first key length", 24, 1 << 31),
    ] {
        let mut b = good.to_vec();
        b[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        out.push((
            format!("{label} {what} = {value}"),
            write(dir, &format!("{label}-absurd-{offset}-{value}.gguf"), &b),
        ));
    }
    for (what, version) in [("version 0", 0u32), ("version 1", 1), ("version 99", 99)] {
        let mut b = good.to_vec();
        b[4..8].copy_from_slice(&version.to_le_bytes());
        out.push((format!("{label} {what}"), write(dir, &format!("{label}-v{version}.gguf"), &b)));
    }
    out
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn malformed_files_give_a_status_never_a_crash() {
    let m = models();
    let dir = fixture_dir().join("bad-gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let model = PathBuf::from(m.model.to_str().unwrap());
    let mmproj = PathBuf::from(m.mmproj.to_str().unwrap());
    let audio = dir.join("audio-mmproj.gguf");
    fixtures_audio::write_audio_projector(&audio, FixtureSpec::default().n_embd, 1).unwrap();

    let mut cases = Vec::new();
    let as_model = |name: String, path: PathBuf| Case { name, model: path, mmproj: Some(mmproj.clone()) };
    for (name, path) in byte_mutations(&dir, "model", &std::fs::read(&model).unwrap(), 29) {
        cases.push(as_model(name, path));
    }
    for (label, good) in [("mmproj", &mmproj), ("audio", &audio)] {
        for (name, path) in byte_mutations(&dir, label, &std::fs::read(good).unwrap(), 5) {
            cases.push(Case { name, model: model.clone(), mmproj: Some(path) });
        }
    }
    for (i, n) in [0usize, 3, 4, 100, 5000].into_iter().enumerate() {
        let mut bytes = pseudo_random(n, i as u64 + 1);
        cases.push(as_model(format!("{n} random bytes"), write(&dir, &format!("random-{n}.gguf"), &bytes)));
        if n >= 4 {
            bytes[..4].copy_from_slice(b"GGUF");
            cases.push(as_model(
                format!("GGUF magic + {n} random bytes"),
                write(&dir, &format!("random-magic-{n}.gguf"), &bytes),
            ));
        }
    }
    cases.push(as_model("empty file".into(), write(&dir, "empty.gguf", b"")));
    cases.push(Case { name: "projector as model".into(), model: mmproj.clone(), mmproj: Some(model.clone()) });

    // Metadata that passes the format check but not llama.cpp's or clip.cpp's assumptions.
    let semantic: Vec<(&str, bool, &str, MetaValue)> = vec![
        ("model", true, "llama.attention.head_count", MetaValue::U32(0)),
        ("model", true, "llama.attention.head_count", MetaValue::U32(3)),
        ("model", true, "llama.attention.head_count_kv", MetaValue::U32(0)),
        ("model", true, "llama.attention.head_count_kv", MetaValue::U32(3)),
        ("model", true, "llama.block_count", MetaValue::U32(0)),
        ("model", true, "llama.block_count", MetaValue::U32(100_000)),
        ("model", true, "llama.embedding_length", MetaValue::U32(0)),
        ("model", true, "llama.embedding_length", MetaValue::U32(32)),
        ("model", true, "llama.feed_forward_length", MetaValue::U32(0)),
        ("model", true, "llama.context_length", MetaValue::U32(0)),
        ("model", true, "llama.rope.dimension_count", MetaValue::U32(0)),
        ("model", true, "llama.rope.dimension_count", MetaValue::U32(1_000_000)),
        ("model", true, "llama.attention.layer_norm_rms_epsilon", MetaValue::F32(f32::NAN)),
        ("model", true, "tokenizer.ggml.bos_token_id", MetaValue::U32(100_000)),
        ("model", true, "tokenizer.ggml.eos_token_id", MetaValue::U32(100_000)),
        ("model", true, "tokenizer.ggml.padding_token_id", MetaValue::U32(100_000)),
        ("model", true, "tokenizer.ggml.model", MetaValue::Str("no-such-tokenizer".into())),
        ("model", true, "general.architecture", MetaValue::Str("no-such-arch".into())),
        ("mmproj", false, "clip.vision.image_size", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.image_size", MetaValue::U32(30)),
        ("mmproj", false, "clip.vision.image_size", MetaValue::U32(1 << 20)),
        ("mmproj", false, "clip.vision.patch_size", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.patch_size", MetaValue::U32(7)),
        ("mmproj", false, "clip.vision.embedding_length", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.embedding_length", MetaValue::U32(48)),
        ("mmproj", false, "clip.vision.attention.head_count", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.attention.head_count", MetaValue::U32(5)),
        ("mmproj", false, "clip.vision.block_count", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.block_count", MetaValue::U32(9)),
        ("mmproj", false, "clip.vision.feed_forward_length", MetaValue::U32(0)),
        ("mmproj", false, "clip.vision.projection_dim", MetaValue::U32(0)),
        ("mmproj", false, "clip.projector_type", MetaValue::Str("no-such-projector".into())),
        ("mmproj", false, "clip.projector_type", MetaValue::Str("ldp".into())),
        ("mmproj", false, "clip.projector_type", MetaValue::Str("gemma3".into())),
        ("mmproj", false, "clip.projector_type", MetaValue::Str("qwen2vl_merger".into())),
        ("mmproj", false, "clip.projector_type", MetaValue::Str("ultravox".into())),
        ("mmproj", false, "clip.vision.attention.layer_norm_epsilon", MetaValue::F32(f32::NAN)),
        // Values of the wrong GGUF type: clip.cpp's typed getters abort on them.
        ("mmproj", false, "clip.vision.image_size", MetaValue::Str("32".into())),
        ("mmproj", false, "clip.has_vision_encoder", MetaValue::U32(1)),
        ("mmproj", false, "clip.vision.attention.layer_norm_epsilon", MetaValue::U32(1)),
        ("mmproj", false, "clip.projector_type", MetaValue::U32(1)),
        ("mmproj", false, "clip.vision.projection_dim", MetaValue::F32(64.0)),
        ("model", true, "llama.block_count", MetaValue::Str("2".into())),
        ("model", true, "llama.attention.layer_norm_rms_epsilon", MetaValue::Str("tiny".into())),
        ("model", true, "llama.context_length", MetaValue::F32(4096.0)),
    ];
    for (i, (kind, is_model, key, value)) in semantic.into_iter().enumerate() {
        let spec = FixtureSpec { overrides: vec![(key.to_string(), value.clone())], ..FixtureSpec::default() };
        let path = dir.join(format!("semantic-{i}-{kind}.gguf"));
        if is_model {
            fixtures::write_text_model(&path, &spec).unwrap();
            cases.push(as_model(format!("model {key} = {value:?}"), path));
        } else {
            fixtures::write_projector(&path, &spec).unwrap();
            cases.push(Case { name: format!("projector {key} = {value:?}"), model: model.clone(), mmproj: Some(path) });
        }
    }

    // Inputs that once crashed (found by fuzzing), each as model and as projector.
    let fuzz_audio = dir.join("fuzz-audio-mmproj.gguf");
    fixtures_audio::write_audio_projector(&fuzz_audio, FixtureSpec::default().n_embd, FixtureSpec::default().seed)
        .unwrap();
    let fixtures = [&model, &mmproj, &fuzz_audio].map(|p| std::fs::read(p).unwrap());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [root.join("tests/regressions/gguf"), root.join("../../fuzz/regressions/fuzz_gguf")];
    for entry in found.iter().flat_map(|d| std::fs::read_dir(d).unwrap()) {
        let mut path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(b"GGHD") && bytes.len() > 5 {
            path = write(&dir, &format!("{name}.gguf"), &expand_header_only(&bytes, &fixtures));
        }
        cases.push(as_model(format!("regression {name} as model"), path.clone()));
        cases.push(Case { name: format!("regression {name} as projector"), model: model.clone(), mmproj: Some(path) });
    }

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut crashes = Vec::new();
    for case in &cases {
        match run_child(case) {
            Ok(status) => *outcomes.entry(status).or_default() += 1,
            Err(e) => crashes.push(e),
        }
    }
    eprintln!("{} malformed-file cases:", cases.len());
    for (status, n) in &outcomes {
        eprintln!("  {n:5}  {status}");
    }
    assert!(crashes.is_empty(), "{} of {} cases crashed:\n{}", crashes.len(), cases.len(), crashes.join("\n---\n"));
}
