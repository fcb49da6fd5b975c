//! mm-session's text equals what plain llama.cpp calls produce for the same model, prompt and
//! greedy sampling: the session adds no tokens, drops none and decodes pieces the same way.

mod common;

use std::ffi::CString;

use ::mm_session::ask::*;
use ::mm_session::session::*;
use common::*;
use llama_cpp_sys_2 as sys;

/// Greedy generation with llama.cpp's API alone.
fn raw_greedy(model_path: &CString, prompt: &str, max_tokens: usize) -> String {
    unsafe {
        let (model, ctx) = raw_model_and_context(model_path);
        let vocab = sys::llama_model_get_vocab(model);
        let mut tokens = vec![0; prompt.len() + 8];
        let n = sys::llama_tokenize(
            vocab,
            prompt.as_ptr().cast(),
            prompt.len() as i32,
            tokens.as_mut_ptr(),
            tokens.len() as i32,
            true,
            true,
        );
        assert!(n > 0);
        tokens.truncate(n as usize);
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
