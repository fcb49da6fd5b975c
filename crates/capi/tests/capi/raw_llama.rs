//! mm-session's text equals what plain llama.cpp calls produce for the same model, prompt and
//! greedy sampling: the session adds no tokens, drops none and decodes pieces the same way.

use std::ffi::CString;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::session::*;
use llama_cpp_sys_2 as sys;

/// Greedy generation with llama.cpp's API alone.
fn raw_greedy(model_path: &CString, prompt: &str, max_tokens: usize) -> String {
    unsafe {
        let (model, ctx) = raw_model_and_context(model_path);
        let vocab = sys::llama_model_get_vocab(model);
        let mut tokens = raw_tokenize(vocab, prompt, true);
        let n = tokens.len() as i32;
        assert!(n > 0);
        assert_eq!(sys::llama_decode(ctx, sys::llama_batch_get_one(tokens.as_mut_ptr(), n)), 0);
        let sampler = sys::llama_sampler_init_greedy();
        let mut bytes = Vec::new();
        for _ in 0..max_tokens {
            let mut tok = sys::llama_sampler_sample(sampler, ctx, -1);
            if sys::llama_vocab_is_eog(vocab, tok) {
                break;
            }
            let mut buf = [0u8; 256];
            let len = sys::llama_token_to_piece(vocab, tok, buf.as_mut_ptr().cast(), buf.len() as i32, 0, false);
            bytes.extend_from_slice(&buf[..len as usize]);
            assert_eq!(sys::llama_decode(ctx, sys::llama_batch_get_one(&mut tok, 1)), 0);
        }
        sys::llama_sampler_free(sampler);
        sys::llama_free(ctx);
        sys::llama_model_free(model);
        // mm-session hands out NUL as U+FFFD so that C strings hold the whole text.
        String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}")
    }
}

#[test]
fn greedy_text_matches_raw_llama_cpp() {
    let m = models();
    let prompt = "The capital of France is";
    let expected = raw_greedy(&m.model, prompt, 32);
    let prompt_c = CString::new(prompt).unwrap();
    // A real text model given alone (MM_TEST_MODEL without MM_TEST_MMPROJ) has no projector.
    let pairs = std::env::var_os("MM_TEST_MODEL").is_none() || std::env::var_os("MM_TEST_MMPROJ").is_some();
    for with_projector in [false, true].into_iter().filter(|&p| pairs || !p) {
        let mut p = params(m);
        if !with_projector {
            p.mmproj_path = std::ptr::null();
        }
        let s = create(&p).unwrap();
        let mut a = mm_ask_params_default();
        a.prompt = prompt_c.as_ptr();
        a.max_tokens = 32;
        a.temperature = 0.0;
        let got = ask(s, &a).unwrap();
        mm_session_destroy(s);
        assert_eq!(got, expected, "with projector: {with_projector}");
        eprintln!("greedy text (with projector: {with_projector}): {got:?}");
    }
}

/// llama.cpp's tokens for `text`, special texts read as special tokens; BOS first when
/// `add_special` and the vocabulary wants it.
unsafe fn raw_tokenize(vocab: *const sys::llama_vocab, text: &str, add_special: bool) -> Vec<i32> {
    let mut tokens = vec![0; text.len() + 8];
    let n = unsafe {
        sys::llama_tokenize(
            vocab,
            text.as_ptr().cast(),
            text.len() as i32,
            tokens.as_mut_ptr(),
            tokens.len() as i32,
            add_special,
            true,
        )
    };
    assert!(n >= 0);
    tokens.truncate(n as usize);
    tokens
}

/// llama.cpp's tokens for `text` (no BOS) with the model at `model_path`.
fn raw_tokens(model_path: &CString, text: &str) -> Vec<i32> {
    unsafe {
        let model = sys::llama_model_load_from_file(model_path.as_ptr(), sys::llama_model_default_params());
        assert!(!model.is_null());
        let tokens = raw_tokenize(sys::llama_model_get_vocab(model), text, false);
        sys::llama_model_free(model);
        tokens
    }
}

/// A long text read with special tokens is tokenized in pieces (llama.cpp's partition at special
/// texts costs their number squared: 1 MB of `<|im_start|>` took 15-60 s), cut only where the
/// tokens stay those of the whole: texts of special tokens next to, inside and overlapping one
/// another, partial ones, and words, in a vocabulary whose special texts overlap.
#[test]
fn long_texts_with_special_tokens_tokenize_as_a_whole() {
    // The usual vocabulary (its three special texts cut at), and one whose special texts
    // overlap each other.
    for (name, extra) in [
        ("special-plain", vec![]),
        ("special-overlaps", vec!["<|im_start|><|im_end|>", "end|><|im", "x<|im_end|>", "|>"]),
    ] {
        let dir = fixture_dir().join(name);
        let extra_control_tokens = extra.into_iter().map(String::from).collect();
        mm_fixtures::write_all(&dir, &mm_fixtures::FixtureSpec { extra_control_tokens, ..Default::default() }).unwrap();
        tokenize_like_llama_cpp(&CString::new(dir.join(mm_fixtures::MODEL_FILE).to_string_lossy().as_bytes()).unwrap());
    }
}

fn tokenize_like_llama_cpp(model: &CString) {
    let mut p = params(models());
    p.model_path = model.as_ptr();
    p.mmproj_path = std::ptr::null();
    let s = create(&p).unwrap();
    let parts = [
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|im_",
        "start|>",
        "x",
        " the ",
        "end|>",
        "|>",
        "<",
        " ",
        "\n",
        "hello world",
        "<|im_start|><|im_end|>",
    ];
    let mut seed = 12345u64;
    for case in 0..12 {
        let mut text = String::new();
        while text.len() < 9_000 + case * 3_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            text.push_str(parts[(seed >> 33) as usize % parts.len()]);
        }
        let want = raw_tokens(model, &text);
        let text_c = CString::new(text.as_str()).unwrap();
        let mut got = vec![0i32; text.len() + 8];
        let mut n = 0usize;
        let status = unsafe { mm_session_tokenize(s, text_c.as_ptr(), true, got.as_mut_ptr(), got.len(), &mut n) };
        assert_eq!(status, ::mm_session::status::mm_status::MM_OK);
        got.truncate(n);
        assert_eq!(got, want, "case {case}: {} bytes", text.len());
    }
    assert_eq!(mm_session_destroy(s), ::mm_session::status::mm_status::MM_OK);
}
