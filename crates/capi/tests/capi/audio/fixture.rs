//! The generated audio projector runs end to end in plain llama.cpp: libmtmd loads it beside the
//! tiny text model, decodes the generated WAV, encodes it, prefills the context with its
//! embeddings, and the context then generates; no error is logged on the way.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use llama_cpp_sys_2 as sys;
use mm_fixtures::audio as fixtures_audio;
use mm_fixtures::{self as fixtures, FixtureSpec};

static ERRORS: AtomicUsize = AtomicUsize::new(0);
static LAST_LEVEL: AtomicUsize = AtomicUsize::new(0);

/// Counts error messages and prints warnings and errors (with their continuation lines).
unsafe extern "C" fn log(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    let level = if level == sys::GGML_LOG_LEVEL_CONT { LAST_LEVEL.load(Ordering::Relaxed) as u32 } else { level };
    LAST_LEVEL.store(level as usize, Ordering::Relaxed);
    if level == sys::GGML_LOG_LEVEL_ERROR {
        ERRORS.fetch_add(1, Ordering::Relaxed);
    }
    if level >= sys::GGML_LOG_LEVEL_WARN {
        eprint!("[llama.cpp] {}", CStr::from_ptr(text).to_string_lossy());
    }
}

/// The log callback llama.cpp and mtmd had before this test set its own (the library's, which
/// it installs once per process), put back when the test ends, even by a panic: the tests of
/// the other modules run in this process and watch the library's logs.
struct RestoreLog(sys::ggml_log_callback, *mut c_void);

impl RestoreLog {
    fn save() -> RestoreLog {
        let mut saved = RestoreLog(None, std::ptr::null_mut());
        unsafe { sys::llama_log_get(&mut saved.0, &mut saved.1) };
        saved
    }
}

impl Drop for RestoreLog {
    fn drop(&mut self) {
        unsafe {
            sys::llama_log_set(self.0, self.1);
            sys::mtmd_helper_log_set(self.0, self.1);
        }
    }
}

#[test]
fn audio_projector_encodes_and_prefills() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audio-fixture");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = FixtureSpec::default();
    let (model_path, proj_path) = (dir.join("tiny-llama.gguf"), dir.join("tiny-audio-mmproj.gguf"));
    fixtures::write_text_model(&model_path, &spec).unwrap();
    fixtures_audio::write_audio_projector(&proj_path, spec.n_embd, 7).unwrap();
    let proj_bytes = std::fs::read(&proj_path).unwrap();
    eprintln!("audio projector: {} bytes", proj_bytes.len());
    let again = dir.join("tiny-audio-mmproj-again.gguf");
    fixtures_audio::write_audio_projector(&again, spec.n_embd, 7).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), proj_bytes, "same seed, other bytes");
    let wav = fixtures_audio::wav_tone(1.0, 16000, 3);
    assert_eq!(wav, fixtures_audio::wav_tone(1.0, 16000, 3));
    assert_eq!(wav.len(), 44 + 32000);

    let model_c = CString::new(model_path.to_str().unwrap()).unwrap();
    let proj_c = CString::new(proj_path.to_str().unwrap()).unwrap();
    let _restore = RestoreLog::save();
    unsafe {
        sys::llama_log_set(Some(log), std::ptr::null_mut());
        sys::mtmd_helper_log_set(Some(log), std::ptr::null_mut());
        sys::llama_backend_init();

        let (model, lctx) = crate::common::raw_model_and_context(&model_c);

        let mut mp = sys::mtmd_context_params_default();
        mp.n_threads = 1;
        mp.use_gpu = false;
        mp.print_timings = false;
        let mctx = sys::mtmd_init_from_file(proj_c.as_ptr(), model, mp);
        assert!(!mctx.is_null(), "mtmd_init_from_file failed");
        assert!(sys::mtmd_support_audio(mctx));
        assert!(!sys::mtmd_support_vision(mctx));
        assert_eq!(sys::mtmd_get_audio_sample_rate(mctx), 16000);

        let w = sys::mtmd_helper_bitmap_init_from_buf(
            mctx,
            wav.as_ptr(),
            wav.len(),
            false,
            sys::mtmd_helper_init_opt_default(),
        );
        assert!(!w.bitmap.is_null(), "the WAV did not decode");
        if !w.video_ctx.is_null() {
            sys::mtmd_helper_video_free(w.video_ctx);
        }
        let bitmap = w.bitmap;
        assert!(sys::mtmd_bitmap_is_audio(bitmap));
        assert_eq!(sys::mtmd_bitmap_get_nx(bitmap), 16000, "samples");

        let marker = CStr::from_ptr(sys::mtmd_default_marker()).to_str().unwrap();
        let prompt = format!("<|im_start|>user\nWhat is this sound? {marker}<|im_end|>\n<|im_start|>assistant\n");
        let prompt_c = CString::new(prompt.as_str()).unwrap();
        let text = sys::mtmd_input_text {
            text: prompt_c.as_ptr(),
            text_len: prompt.len(),
            add_special: true,
            parse_special: true,
        };
        let chunks = sys::mtmd_input_chunks_init();
        let bitmaps = [bitmap as *const sys::mtmd_bitmap];
        let t = Instant::now();
        assert_eq!(sys::mtmd_tokenize(mctx, chunks, &text, bitmaps.as_ptr(), 1), 0);
        eprintln!("tokenize (log-mel spectrogram of a 30 s window): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        sys::mtmd_bitmap_free(bitmap);

        // One audio chunk: a 30 s Whisper window, 3000 mel frames, 750 embeddings.
        let audio: Vec<_> = (0..sys::mtmd_input_chunks_size(chunks))
            .map(|i| sys::mtmd_input_chunks_get(chunks, i))
            .filter(|&c| sys::mtmd_input_chunk_get_type(c) == sys::MTMD_INPUT_CHUNK_TYPE_AUDIO)
            .collect();
        assert_eq!(audio.len(), 1);
        assert_eq!(sys::mtmd_input_chunk_get_n_tokens(audio[0]), 750);

        let t = Instant::now();
        assert_eq!(sys::mtmd_encode_chunk(mctx, audio[0]), 0);
        eprintln!("encoding 1 s of audio (one thread): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        let out = std::slice::from_raw_parts(sys::mtmd_get_output_embd(mctx), 750 * spec.n_embd as usize);
        assert!(out.iter().all(|v| v.is_finite()), "non-finite audio embeddings");

        let n_total = sys::mtmd_helper_get_n_tokens(chunks);
        let mut n_past = 0;
        let t = Instant::now();
        assert_eq!(sys::mtmd_helper_eval_chunks(mctx, lctx, chunks, 0, 0, 512, true, &mut n_past), 0);
        eprintln!("eval_chunks (encode + {n_total}-token prefill): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(n_past as usize, n_total);

        let vocab = sys::llama_model_get_vocab(model);
        let sampler = sys::llama_sampler_init_greedy();
        let mut generated = Vec::new();
        for _ in 0..4 {
            let mut tok = sys::llama_sampler_sample(sampler, lctx, -1);
            generated.push(tok);
            if sys::llama_vocab_is_eog(vocab, tok) {
                break;
            }
            assert_eq!(sys::llama_decode(lctx, sys::llama_batch_get_one(&mut tok, 1)), 0);
        }
        eprintln!("greedy tokens after the audio: {generated:?}");
        assert!(!generated.is_empty());

        sys::llama_sampler_free(sampler);
        sys::mtmd_input_chunks_free(chunks);
        sys::mtmd_free(mctx);
        sys::llama_free(lctx);
        sys::llama_model_free(model);
        sys::llama_backend_free();
    }
    assert_eq!(ERRORS.load(Ordering::Relaxed), 0, "llama.cpp logged errors");
}
