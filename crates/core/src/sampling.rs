//! Sampling settings of one request, and the llama.cpp sampler chain they make.

use std::ffi::CString;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, ErrorKind::*, Result};
use crate::grammar;
use crate::llama::{Model, Sampler};
use crate::log;

/// Sampling settings of one request. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub max_tokens: i32,
    /// 0: greedy (always the most likely token).
    pub temperature: f32,
    /// 0: off.
    pub top_k: i32,
    /// 1: off.
    pub top_p: f32,
    /// 0: off.
    pub min_p: f32,
    /// `None`: the session's seed.
    pub seed: Option<u32>,
    /// Generation stops before any of these; none may be empty.
    pub stop: Vec<String>,
    /// A GBNF grammar (rule `root`) the output must follow.
    pub grammar: Option<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { max_tokens: 256, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, seed: None, stop: Vec::new(), grammar: None }
    }
}

impl Sampling {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| fail(InvalidArgument, m);
        if self.max_tokens < 1 {
            return bad(format!("max_tokens is {}; it must be at least 1", self.max_tokens));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature is {}; it must be a finite number >= 0", self.temperature));
        }
        if self.top_k < 0 {
            return bad(format!("top_k is {}; it must be >= 0 (0: off)", self.top_k));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad(format!("top_p is {}; it must be in [0, 1] (1: off)", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p is {}; it must be in [0, 1] (0: off)", self.min_p));
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("a stop string is empty".into());
        }
        Ok(())
    }

    /// The sampler chain: grammar first (it rules tokens out), then the filters, then the pick.
    pub(crate) fn sampler(&self, model: &Model, default_seed: u32) -> Result<Sampler> {
        let mut chain = Sampler::chain();
        if let Some(text) = &self.grammar {
            grammar::check(text).or_else(|why| fail(InvalidArgument, format!("grammar refused: {why}")))?;
            let g = CString::new(text.as_str()).or_else(|_| fail(InvalidArgument, "the grammar contains a NUL byte"))?;
            let (added, log) = log::capture(|| chain.add_grammar(model, &g));
            if added.is_none() {
                return fail(InvalidArgument, format!("invalid grammar: {}", log::last_lines(&log)));
            }
        }
        if self.temperature <= 0.0 {
            // SAFETY: a plain constructor; the chain takes ownership of the sampler.
            chain.add(unsafe { sys::llama_sampler_init_greedy() });
            return Ok(chain);
        }
        // SAFETY: llama.cpp's sampler constructors take plain values and return new samplers,
        // which the chain takes ownership of.
        let filters = unsafe {
            [
                (self.top_k > 0).then(|| sys::llama_sampler_init_top_k(self.top_k)),
                (self.top_p < 1.0).then(|| sys::llama_sampler_init_top_p(self.top_p, 1)),
                (self.min_p > 0.0).then(|| sys::llama_sampler_init_min_p(self.min_p, 1)),
                Some(sys::llama_sampler_init_temp(self.temperature)),
                Some(sys::llama_sampler_init_dist(self.seed.unwrap_or(default_seed))),
            ]
        };
        filters.into_iter().flatten().for_each(|s| chain.add(s));
        Ok(chain)
    }
}
