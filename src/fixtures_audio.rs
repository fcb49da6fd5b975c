//! A tiny random-weight audio projector (`clip` type `qwen2a`: a Whisper encoder and one linear
//! layer) and a generated WAV tone, for tests of the audio path.
//!
//! `qwen2a` is the simplest audio projector in the vendored clip.cpp: its projector is a single
//! `mm.a.fc` layer and it needs no stack factor. clip.cpp's Whisper preprocessor always pads
//! audio to 30 s chunks of 3000 mel frames; the encoder halves that twice (stride-2 convolution,
//! then average pooling), so each chunk, a 1 s clip included, becomes 750 embeddings. The
//! traps that make clip.cpp abort are noted beside the tensors they concern.

use std::path::Path;

use crate::fixtures::{Fill, GgufWriter, Rng};

/// The file names `mm-fixtures --audio` writes.
pub const AUDIO_MMPROJ_FILE: &str = "tiny-audio-mmproj.gguf";
pub const WAV_FILE: &str = "tiny-tone.wav";

/// Mel bins: Whisper's count; clip.cpp accepts 1..=256.
const N_MEL: u32 = 80;
/// Encoder width, heads, FFN width and depth. FF differs from the width as in the vision fixture:
/// clip.cpp's up/down swap for old exports skips qwen2a today, but would hit FF == width.
const HIDDEN: u32 = 32;
const HEADS: u32 = 2;
const FF: u32 = 64;
const LAYERS: u32 = 2;
/// Positions after the stride-2 convolution: 3000 mel frames per chunk / 2. The graph asserts
/// that the position table has at least this many rows.
const N_POS: u32 = 1500;

/// Writes a `clip` GGUF with only an audio encoder, projector type `qwen2a`, whose output size is
/// `n_embd` (the text model's embedding size). All F32, about 310 KB.
pub fn write_audio_projector(path: &Path, n_embd: u32, seed: u64) -> Result<(), String> {
    let (h, ff, e) = (HIDDEN, FF, n_embd);
    let floats = (3 * N_MEL * h + 3 * h * h + 2 * h + h * N_POS
        + LAYERS * (4 * h * h + 2 * h * ff + ff + 8 * h)
        + 2 * h + h * e + e) as usize;
    let mut w = GgufWriter::new(seed ^ 0xA0D1_0C11, floats * 4 + 1024 * (LAYERS as usize + 8) * 512);
    w.str("general.architecture", "clip");
    w.str("general.name", "mm-session tiny audio projector");
    w.u32("general.file_type", 0);
    w.bool("clip.has_audio_encoder", true);
    w.str("clip.projector_type", "qwen2a");
    w.u32("clip.audio.num_mel_bins", N_MEL);
    w.u32("clip.audio.embedding_length", h);
    w.u32("clip.audio.feed_forward_length", ff);
    w.u32("clip.audio.block_count", LAYERS);
    // Required by the loader although qwen2a takes its output size from mm.a.fc.weight.
    w.u32("clip.audio.projection_dim", e);
    w.u32("clip.audio.attention.head_count", HEADS);
    w.f32("clip.audio.attention.layer_norm_epsilon", 1e-5);

    let scale = 1.0 / (h as f32).sqrt();
    // Convolution kernels are [kernel, in, out]; their biases are [1, out] so that they
    // broadcast over the time axis (a plain [out] bias fails ggml_add's repeat check).
    w.tensor("a.conv1d.1.weight", &[3, N_MEL, h], Fill::Random(1.0 / ((3 * N_MEL) as f32).sqrt()));
    w.tensor("a.conv1d.1.bias", &[1, h], Fill::Zeros);
    w.tensor("a.conv1d.2.weight", &[3, h, h], Fill::Random(1.0 / ((3 * h) as f32).sqrt()));
    w.tensor("a.conv1d.2.bias", &[1, h], Fill::Zeros);
    w.tensor("a.position_embd.weight", &[h, N_POS], Fill::Random(0.5));
    for i in 0..LAYERS {
        for ln in ["ln1", "ln2"] {
            w.tensor(&format!("a.blk.{i}.{ln}.weight"), &[h], Fill::Ones);
            w.tensor(&format!("a.blk.{i}.{ln}.bias"), &[h], Fill::Zeros);
        }
        for t in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            w.tensor(&format!("a.blk.{i}.{t}.weight"), &[h, h], Fill::Random(scale));
            // Whisper's key projection has no bias: the graph asserts that k has none and that
            // q, v and both layer norms have theirs.
            if t != "attn_k" {
                w.tensor(&format!("a.blk.{i}.{t}.bias"), &[h], Fill::Zeros);
            }
        }
        w.tensor(&format!("a.blk.{i}.ffn_up.weight"), &[h, ff], Fill::Random(scale));
        w.tensor(&format!("a.blk.{i}.ffn_up.bias"), &[ff], Fill::Zeros);
        w.tensor(&format!("a.blk.{i}.ffn_down.weight"), &[ff, h], Fill::Random(1.0 / (ff as f32).sqrt()));
        w.tensor(&format!("a.blk.{i}.ffn_down.bias"), &[h], Fill::Zeros);
    }
    w.tensor("a.post_ln.weight", &[h], Fill::Ones);
    w.tensor("a.post_ln.bias", &[h], Fill::Zeros);
    // The output size (ne[1]) must equal the text model's n_embd, or mtmd_init_from_file fails.
    w.tensor("mm.a.fc.weight", &[h, e], Fill::Random(scale));
    w.tensor("mm.a.fc.bias", &[e], Fill::Zeros);
    w.write(path)
}

/// Bytes of a mono 16-bit PCM WAV file: a 440 Hz tone at half scale plus a little seeded noise.
/// Give it the projector's rate (`mtmd_get_audio_sample_rate`, 16000 for Whisper encoders) so
/// that the decoder does not resample. Same inputs, same bytes.
pub fn wav_tone(seconds: f32, sample_rate: u32, seed: u64) -> Vec<u8> {
    let n = (seconds * sample_rate as f32).round() as u32;
    let mut rng = Rng(seed);
    let data_len = n * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&sample_rate.to_le_bytes());
    wav.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        let t = i as f32 / sample_rate as f32;
        let v = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin() + rng.uniform(0.02);
        wav.extend_from_slice(&((v * i16::MAX as f32) as i16).to_le_bytes());
    }
    wav
}
