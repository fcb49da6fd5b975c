//! The sampler chain that picks each generated token, and grammars for it.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{self, check, THREW};
use crate::llama::model::{Model, Token};
use crate::util::error::{fail, ErrorKind, Result};

/// A sampler chain (`llama_sampler_free` on drop; it frees the samplers added to it).
pub struct Sampler {
    chain: NonNull<sys::llama_sampler>,
    /// Indexes in the chain of the samplers that keep a history of tokens (penalties, DRY).
    history: Vec<i32>,
    /// Whether a grammar is in the chain (what a dead end is blamed on).
    grammar: bool,
}

impl Sampler {
    pub fn chain() -> Self {
        // SAFETY: plain constructors; the result is checked.
        let ptr = unsafe { sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params()) };
        Sampler {
            chain: NonNull::new(ptr).expect("llama_sampler_chain_init returned NULL"),
            history: Vec::new(),
            grammar: false,
        }
    }
    /// Adds a sampler (from one of llama.cpp's `llama_sampler_init_*`) that the chain then owns.
    fn add(&mut self, s: *mut sys::llama_sampler) {
        assert!(!s.is_null(), "a llama sampler constructor returned NULL");
        // SAFETY: the chain is alive and takes ownership of `s`.
        unsafe { sys::llama_sampler_chain_add(self.chain.as_ptr(), s) }
    }
    /// Adds a sampler that keeps a history of tokens (penalties, DRY), which `remember` feeds.
    fn add_with_history(&mut self, s: *mut sys::llama_sampler) {
        // SAFETY: the chain is alive.
        self.history.push(unsafe { sys::llama_sampler_chain_n(self.chain.as_ptr()) });
        self.add(s);
    }
    /// Adds the repetition penalties over the last `last_n` tokens (a sampler with a history).
    pub fn add_penalties(&mut self, n_vocab: usize, last_n: i32, repeat: f32, frequency: f32, presence: f32) {
        // SAFETY: a plain constructor; the chain takes ownership of the sampler.
        let s = unsafe { sys::llama_sampler_init_penalties(n_vocab as i32, last_n, repeat, frequency, presence) };
        self.add_with_history(s);
    }

    /// Adds DRY ("don't repeat yourself") over the last `last_n` tokens, whose sequences restart
    /// at `breakers` (a sampler with a history).
    pub fn add_dry(
        &mut self,
        model: &Model,
        (multiplier, base, allowed_length): (f32, f32, i32),
        last_n: i32,
        breakers: &[&CStr],
    ) {
        let breakers: Vec<*const std::os::raw::c_char> = breakers.iter().map(|b| b.as_ptr()).collect();
        // SAFETY: the vocabulary lives with the model; llama.cpp copies the breaker strings.
        let s = unsafe {
            sys::llama_sampler_init_dry(
                model.vocab(),
                multiplier,
                base,
                allowed_length,
                last_n,
                breakers.as_ptr().cast_mut(),
                breakers.len(),
            )
        };
        self.add_with_history(s);
    }

    /// Adds the logit biases: each (token, bias) adds bias to the token's logit; the tokens are
    /// in the vocabulary of `n_vocab` tokens.
    pub fn add_logit_bias(&mut self, n_vocab: usize, biases: &[(Token, f32)]) {
        let biases: Vec<sys::llama_logit_bias> =
            biases.iter().map(|&(token, bias)| sys::llama_logit_bias { token, bias }).collect();
        // SAFETY: `biases` holds `biases.len()` entries, which llama.cpp copies.
        self.add(unsafe { sys::llama_sampler_init_logit_bias(n_vocab as i32, biases.len() as i32, biases.as_ptr()) });
    }

    /// Adds the pick of the most likely token.
    pub fn add_greedy(&mut self) {
        // SAFETY: a plain constructor; the chain takes ownership of the sampler.
        self.add(unsafe { sys::llama_sampler_init_greedy() });
    }

    /// Adds the filters (top-k, typical, top-p, min-p), the temperature and the random pick
    /// seeded with `seed`; a filter whose value means "off" changes nothing.
    pub fn add_filters_and_pick(
        &mut self,
        (top_k, typical_p, top_p, min_p): (i32, f32, f32, f32),
        temperature: f32,
        seed: u32,
    ) {
        // SAFETY: llama.cpp's sampler constructors take plain values and return new samplers,
        // which the chain takes ownership of.
        let samplers = unsafe {
            [
                sys::llama_sampler_init_top_k(top_k),
                sys::llama_sampler_init_typical(typical_p, 1),
                sys::llama_sampler_init_top_p(top_p, 1),
                sys::llama_sampler_init_min_p(min_p, 1),
                sys::llama_sampler_init_temp(temperature),
                sys::llama_sampler_init_dist(seed),
            ]
        };
        samplers.into_iter().for_each(|s| self.add(s));
    }

    /// Feeds tokens that came before the answer (the prompt's) to the samplers that keep a
    /// history, and to no other (a grammar must not see them).
    pub fn remember(&mut self, tokens: &[sys::llama_token]) -> Result<()> {
        for &i in &self.history {
            // SAFETY: the chain is alive and `i` is the index of one of its samplers.
            let s = unsafe { sys::llama_sampler_chain_get(self.chain.as_ptr(), i) };
            // SAFETY: `s` belongs to the chain; `tokens` holds `tokens.len()` tokens.
            check(
                unsafe { guard::mm_guard_sampler_accept(s, tokens.as_ptr(), tokens.len(), THREW) },
                "llama_sampler_accept",
            )?;
        }
        Ok(())
    }
    /// Adds a GBNF grammar sampler (start rule `root`); `None` when llama.cpp refuses the
    /// grammar (it logs why).
    pub fn add_grammar(&mut self, model: &Model, grammar: &CString) -> Option<()> {
        // SAFETY: the vocabulary and the grammar text outlive the call.
        let s = unsafe { guard::mm_guard_sampler_init_grammar(model.vocab(), grammar.as_ptr()) };
        (!s.is_null()).then(|| {
            self.grammar = true;
            self.add(s)
        })
    }
    /// Adds a grammar that applies once a trigger appears in the answer: a match of one of
    /// `patterns` (regular expressions), or one of `tokens`. `None` when llama.cpp refuses it.
    pub fn add_lazy_grammar(
        &mut self,
        model: &Model,
        grammar: &CString,
        patterns: &[CString],
        tokens: &[Token],
    ) -> Option<()> {
        let patterns: Vec<*const std::os::raw::c_char> = patterns.iter().map(|p| p.as_ptr()).collect();
        // SAFETY: the vocabulary, the grammar, the patterns and the tokens outlive the call;
        // llama.cpp copies them.
        let s = unsafe {
            guard::mm_guard_sampler_init_grammar_lazy(
                model.vocab(),
                grammar.as_ptr(),
                patterns.as_ptr(),
                patterns.len(),
                tokens.as_ptr(),
                tokens.len(),
            )
        };
        (!s.is_null()).then(|| {
            self.grammar = true;
            self.add(s)
        })
    }

    /// Feeds the grammar (the chain's first sampler, when it has one) tokens the prompt ends
    /// with that its rules start with (a chat format's start of the answer).
    pub fn prefill_grammar(&mut self, tokens: &[Token]) -> Result<()> {
        if !self.grammar || tokens.is_empty() {
            return Ok(());
        }
        // SAFETY: the chain is alive and has a sampler at index 0 (the grammar, added first).
        let s = unsafe { sys::llama_sampler_chain_get(self.chain.as_ptr(), 0) };
        // SAFETY: `s` belongs to the chain; `tokens` holds `tokens.len()` tokens.
        let code = unsafe { guard::mm_guard_sampler_accept(s, tokens.as_ptr(), tokens.len(), THREW) };
        if code == THREW {
            return fail(
                ErrorKind::Internal,
                format!("the tool call grammar refused the start of the answer: {}", guard::what()),
            );
        }
        Ok(())
    }

    /// Samples a token from `logits` (one per vocabulary entry), leaving out the tokens
    /// `allowed` refuses, and records it in the chain's state, as `llama_sampler_sample` does;
    /// `scratch` is reused between calls.
    pub fn sample_from(
        &mut self,
        logits: &[f32],
        mut allowed: Option<&mut dyn FnMut(usize) -> bool>,
        scratch: &mut Vec<sys::llama_token_data>,
    ) -> Result<sys::llama_token> {
        scratch.clear();
        scratch.extend(logits.iter().enumerate().map(|(id, &logit)| {
            let ruled_out = allowed.as_mut().is_some_and(|allowed| !allowed(id));
            let logit = if ruled_out { f32::NEG_INFINITY } else { logit };
            sys::llama_token_data { id: id as sys::llama_token, logit, p: 0.0 }
        }));
        let mut candidates = sys::llama_token_data_array {
            data: scratch.as_mut_ptr(),
            size: scratch.len(),
            selected: -1,
            sorted: false,
        };
        // SAFETY: the chain is alive and `candidates` points into `scratch`.
        match unsafe { guard::mm_guard_sample(self.chain.as_ptr(), &mut candidates) } {
            guard::SAMPLE_FAILED => fail(ErrorKind::Eval, format!("sampling failed: {}", guard::what())),
            guard::SAMPLE_DEAD_END if self.grammar => fail(ErrorKind::Eval, "no next token is allowed: no token of the vocabulary continues the grammar here, or the logit biases (with the penalties and the temperature) took every token it allows to -infinity"),
            guard::SAMPLE_DEAD_END => fail(ErrorKind::Eval, "no next token is allowed: the logit biases (with the penalties and the temperature) took every token's logit to -infinity"),
            token => Ok(token),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain came from llama_sampler_chain_init and is freed only here.
        unsafe { sys::llama_sampler_free(self.chain.as_ptr()) }
    }
}

/// Converts a JSON Schema (text) to a GBNF grammar (start rule `root`) with llama.cpp's
/// converter; the error is the converter's reason.
pub fn json_schema_to_grammar(schema: &CStr) -> std::result::Result<String, String> {
    // SAFETY: `schema` is NUL-terminated and outlives the call.
    let ptr = unsafe { guard::mm_guard_json_schema_to_grammar(schema.as_ptr()) };
    if ptr.is_null() {
        return Err(guard::what());
    }
    // SAFETY: a non-NULL result is a NUL-terminated string the shim allocated; it is copied,
    // then freed once, by the shim's allocator.
    unsafe {
        let grammar = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        guard::mm_guard_free(ptr);
        Ok(grammar)
    }
}
