//! Audio files through the memory-safe decoders (`mm_core::decode`): WAV (8-, 16-, 24- and
//! 32-bit integer and 32-bit float samples, 1 to 6 channels, 8 to 96 kHz), FLAC and MP3 give
//! the samples that mtmd's helper (miniaudio), the decoder the library used before, gives for
//! the same bytes; and each format answers through a session exactly as its samples do when
//! they are passed raw. `cargo test --release --test capi audio:: -- --nocapture` prints the
//! differences. Audio end to end through a session (files, buffers, raw samples), and the
//! generated audio projector in plain llama.cpp (`fixture`).

mod fixture;

use std::ffi::CString;
use std::path::Path;

use crate::common::{ask, ask_info, bytes_item, create, encoded_item, fixture_dir, models, params, Chat};
use crate::conversation::{chat_params, images, info, session_info};
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use llama_cpp_sys_2 as sys;
use mm_core::decode::decode_audio;
use mm_core::{Format, MAX_AUDIO_SECONDS};
use mm_fixtures::audio as fixtures_audio;
use mm_fixtures::FixtureSpec;

/// The audio projector's sample rate (Whisper's).
const RATE: u32 = 16_000;

/// The tiny text model and an audio projector, written once per test binary.
fn audio_projector() -> CString {
    let path = fixture_dir().join("audio-formats-mmproj.gguf");
    models();
    fixtures_audio::write_audio_projector(&path, FixtureSpec::default().n_embd, 5).unwrap();
    CString::new(path.to_string_lossy().as_bytes()).unwrap()
}

/// A file of `tests/media/` (tests/media/README.md says how each was made).
fn media_file(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/media").join(name)).unwrap()
}

/// A speech-like test signal, interleaved: a gliding tone, two fixed tones (one above 4 kHz,
/// which resampling to 16 kHz must filter), a 3 Hz envelope; each channel in its own phase.
fn signal(rate: u32, seconds: f64, channels: usize) -> Vec<f64> {
    let n = (f64::from(rate) * seconds) as usize;
    let tau = 2.0 * std::f64::consts::PI;
    (0..n)
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate);
            let envelope = 0.5 + 0.5 * (tau * 3.0 * t).sin();
            (0..channels).map(move |c| {
                envelope
                    * (0.3 * (tau * (220.0 + 30.0 * (5.0 * t).sin()) * t + c as f64).sin()
                        + 0.15 * (tau * 1375.0 * t).sin()
                        + 0.1 * (tau * 6100.0 * t).sin())
            })
        })
        .collect()
}

/// The clips of these tests: name and file bytes.
fn clips() -> Vec<(String, Vec<u8>)> {
    let mut clips = vec![("wav_16000_mono_s16 (mm-fixtures)".to_string(), fixtures_audio::wav_tone(1.0, RATE, 3))];
    let stereo = signal(44_100, 1.0, 2);
    for (bits, float) in [(8u16, false), (16, false), (24, false), (32, false), (32, true)] {
        clips.push((
            format!("wav_44100_stereo_{}{bits}", if float { "f" } else { "s" }),
            fixtures_audio::wav(44_100, 2, bits, float, &stereo),
        ));
    }
    for (rate, channels) in [(48_000u32, 2u16), (22_050, 1), (8000, 1), (11_025, 2), (96_000, 6)] {
        clips.push((
            format!("wav_{rate}_{channels}ch_s16"),
            fixtures_audio::wav(rate, channels, 16, false, &signal(rate, 0.7, usize::from(channels))),
        ));
    }
    clips.push(("flac_22050_stereo (tests/media/tone.flac)".to_string(), media_file("tone.flac")));
    clips.push(("mp3_22050_stereo_64k (tests/media/tone.mp3)".to_string(), media_file("tone.mp3")));
    clips
}

/// The decoder the library used before: mtmd's helper (miniaudio), mono f32 at the projector's
/// rate. Plain llama.cpp calls, as the `fixture` module (audio/fixture.rs) makes them.
struct OldDecoder {
    model: *mut sys::llama_model,
    lctx: *mut sys::llama_context,
    mctx: *mut sys::mtmd_context,
}

impl OldDecoder {
    fn new(projector: &CString) -> OldDecoder {
        // SAFETY: the paths are NUL-terminated; each object is checked and freed in Drop.
        unsafe {
            sys::llama_backend_init();
            let (model, lctx) = crate::common::raw_model_and_context(&models().model);
            let mut mp = sys::mtmd_context_params_default();
            mp.n_threads = 1;
            mp.use_gpu = false;
            mp.print_timings = false;
            let mctx = sys::mtmd_init_from_file(projector.as_ptr(), model, mp);
            assert!(!mctx.is_null(), "mtmd_init_from_file");
            assert_eq!(sys::mtmd_get_audio_sample_rate(mctx), RATE as i32);
            OldDecoder { model, lctx, mctx }
        }
    }

    fn decode(&self, bytes: &[u8]) -> Vec<f32> {
        // SAFETY: `bytes` is readable for the call; the helper's bitmap holds mono f32 samples,
        // copied out before it is freed (once).
        unsafe {
            let w = sys::mtmd_helper_bitmap_init_from_buf(
                self.mctx,
                bytes.as_ptr(),
                bytes.len(),
                false,
                sys::mtmd_helper_init_opt_default(),
            );
            assert!(!w.bitmap.is_null() && w.video_ctx.is_null(), "the old decoder refused it");
            let n = sys::mtmd_bitmap_get_n_bytes(w.bitmap) / std::mem::size_of::<f32>();
            let samples = std::slice::from_raw_parts(sys::mtmd_bitmap_get_data(w.bitmap) as *const f32, n).to_vec();
            sys::mtmd_bitmap_free(w.bitmap);
            samples
        }
    }
}

impl Drop for OldDecoder {
    fn drop(&mut self) {
        // SAFETY: made in `new`, freed once, the projector before the context and the model.
        unsafe {
            sys::mtmd_free(self.mctx);
            sys::llama_free(self.lctx);
            sys::llama_model_free(self.model);
        }
    }
}

/// MP3 decoders differ in their synthesis filter's arithmetic: dr_mp3 (in miniaudio) and
/// symphonia agree to this much on every sample. WAV and FLAC must agree exactly.
const MP3_MAX_DIFF: f32 = 2e-5;

#[test]
fn decoded_like_miniaudio() {
    let old = OldDecoder::new(&audio_projector());
    for (name, bytes) in clips() {
        let format = Format::sniff(&bytes).unwrap();
        let new = decode_audio(&bytes, format, RATE, MAX_AUDIO_SECONDS).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = old.decode(&bytes);
        assert_eq!(new.len(), reference.len(), "{name}: sample count");
        let max = new.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        println!("{name:44} {} samples at {RATE} Hz, max difference from miniaudio {max:e}", new.len());
        if format == Format::Mp3 {
            assert!(max <= MP3_MAX_DIFF, "{name}: {max}");
        } else {
            assert!(new == reference, "{name}: max difference {max}");
        }
    }
}

/// Greedy, short answers: the same samples give the same text.
fn greedy(chat: &[mm_message]) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.messages = chat.as_ptr();
    a.n_messages = chat.len();
    a.temperature = 0.0;
    a.max_tokens = 6;
    a
}

fn encode_count(s: *mut mm_session) -> u32 {
    let mut info = ask_info();
    // SAFETY: `s` is a live session and `info` is writable, its struct_size set.
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, ::mm_session::status::mm_status::MM_OK);
    info.media_encoded
}

#[test]
fn each_format_answers_like_its_samples() {
    let projector = audio_projector();
    let old = OldDecoder::new(&projector);
    let mut p = params(models());
    p.mmproj_path = projector.as_ptr();
    p.n_ctx = 2048;
    let s = create(&p).unwrap();
    let (role, text) = (CString::new("user").unwrap(), CString::new("What is this sound?").unwrap());
    let ask_with = |media: mm_media| {
        assert_eq!(mm_session_reset(s), ::mm_session::status::mm_status::MM_OK);
        let chat = [mm_message { role: role.as_ptr(), text: text.as_ptr(), media: &media, n_media: 1 }];
        let answer = ask(s, &greedy(&chat)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(encode_count(s), 1);
        answer
    };
    let clips = clips();
    // The fixture's WAV, a resampled stereo WAV, FLAC and MP3.
    for (name, bytes) in clips.iter().filter(|(n, _)| {
        n.starts_with("wav_16000")
            || n.starts_with("wav_44100_stereo_s16")
            || n.starts_with("flac")
            || n.starts_with("mp3")
    }) {
        let encoded = ask_with(encoded_item(bytes));
        let samples: Vec<u8> = old.decode(bytes).iter().flat_map(|x| x.to_ne_bytes()).collect();
        let raw = ask_with(bytes_item(mm_media_kind::MM_MEDIA_PCM_F32, &samples));
        println!("{name:44} answers {encoded:?}");
        assert_eq!(encoded, raw, "{name}: the encoded file and the old decoder's samples");
    }
    // From files, as MM_MEDIA_FILE.
    for file in ["tone.flac", "tone.mp3"] {
        let path = CString::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/media").join(file).to_string_lossy().as_bytes(),
        )
        .unwrap();
        let bytes = media_file(file);
        let from_file = ask_with(mm_media {
            kind: mm_media_kind::MM_MEDIA_FILE as i32,
            width: 0,
            height: 0,
            reserved0: 0,
            path: path.as_ptr(),
            data: std::ptr::null(),
            size: 0,
        });
        let from_buffer = ask_with(encoded_item(&bytes));
        assert_eq!(from_file, from_buffer, "{file}");
    }
    assert_eq!(mm_session_destroy(s), ::mm_session::status::mm_status::MM_OK);
}

#[test]
fn audio_end_to_end() {
    let m = models();
    let dir = fixture_dir().join("audio");
    std::fs::create_dir_all(&dir).unwrap();
    let proj = dir.join("tiny-audio-mmproj.gguf");
    fixtures_audio::write_audio_projector(&proj, FixtureSpec::default().n_embd, 3).unwrap();
    let wav = fixtures_audio::wav_tone(1.0, 16000, 3);
    let wav_path = dir.join("tone.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let proj_c = CString::new(proj.to_string_lossy().as_bytes()).unwrap();
    let wav_c = CString::new(wav_path.to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.mmproj_path = proj_c.as_ptr();
    p.n_ctx = 2048;
    let s = create(&p).unwrap();
    let i = session_info(s);
    assert!(i.supports_audio && !i.supports_vision);
    assert_eq!(i.audio_sample_rate, 16000);

    let from_file = mm_media {
        kind: mm_media_kind::MM_MEDIA_FILE as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: wav_c.as_ptr(),
        data: std::ptr::null(),
        size: 0,
    };
    let from_buffer = encoded_item(&wav);
    let chat = Chat::new(&[("user", "What is this sound?", vec![from_file])]);
    let answer = ask(s, &chat.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 1);
    // The same sound from a buffer has the same content hash: a follow-up encodes nothing.
    let follow = Chat::new(&[
        ("user", "What is this sound?", vec![from_buffer]),
        ("assistant", &answer, vec![]),
        ("user", "Louder?", vec![]),
    ]);
    ask(s, &follow.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 0);

    // The same kind of clip as raw f32 samples.
    let samples: Vec<u8> = (0..16000).flat_map(|i| ((i as f32 * 0.05).sin() * 0.3).to_ne_bytes()).collect();
    let pcm = bytes_item(mm_media_kind::MM_MEDIA_PCM_F32, &samples);
    let raw = Chat::new(&[("user", "And this one?", vec![pcm])]);
    ask(s, &raw.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 1);
    ask(s, &raw.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 0, "the same samples are recognised");
    let odd = Chat::new(&[("user", "Odd?", vec![mm_media { size: 7, ..pcm }])]);
    assert_eq!(ask(s, &odd.on(chat_params())).unwrap_err().0, mm_status::MM_ERR_INVALID_ARGUMENT);

    // An image for an audio-only projector is refused clearly.
    let img = Chat::new(&[("user", "And this?", images(m, 1))]);
    let (st, msg) = ask(s, &img.on(chat_params())).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_UNSUPPORTED, "{msg}");
    mm_session_destroy(s);
}
