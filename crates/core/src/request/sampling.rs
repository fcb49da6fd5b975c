//! Sampling settings of one request, and the llama.cpp sampler chain they make.

use std::borrow::Cow;
use std::ffi::CString;

use crate::llama::{Model, Sampler, Token};
use crate::request::grammar;
use crate::request::json_schema;
use crate::util::error::{fail, ErrorKind::*, Result};
use crate::util::log;

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
    /// Locally typical sampling; 1: off.
    pub typical_p: f32,
    /// `None`: the session's seed.
    pub seed: Option<u32>,
    /// Generation stops before any of these; none may be empty.
    pub stop: Vec<String>,
    /// A GBNF grammar (rule `root`) the output must follow.
    pub grammar: Option<String>,
    /// A JSON Schema (text) the output must validate against; converted to a grammar, so it
    /// excludes `grammar`.
    pub json_schema: Option<String>,
    pub penalties: Penalties,
    pub dry: Dry,
    /// (token, bias) pairs added to the model's logits; `-inf` bans a token.
    pub logit_bias: Vec<(i32, f32)>,
    /// How many of the most likely alternatives to report with each generated token.
    pub n_probs: usize,
}

/// The grammar of a chat's tool calls (llama.cpp's chat layer makes it from the tools).
pub(crate) struct ToolGrammar {
    pub text: String,
    /// The patterns and tokens that start the grammar; `None`: it applies from the start.
    pub lazy: Option<(Vec<CString>, Vec<Token>)>,
    /// Tokens at the prompt's end the grammar reads first (when it applies from the start).
    pub prefill: Vec<Token>,
}

/// Repetition penalties over the last `last_n` tokens (the prompt's text tokens, then the
/// answer's), as llama.cpp's penalties sampler applies them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Penalties {
    /// Window in tokens; 0: off; -1: the whole context.
    pub last_n: i32,
    /// Divides a seen token's positive logit (multiplies a negative one); 1: off.
    pub repeat: f32,
    /// Subtracted from a seen token's logit once per occurrence; 0: off.
    pub frequency: f32,
    /// Subtracted once from the logit of any seen token; 0: off.
    pub presence: f32,
}

/// DRY ("don't repeat yourself"): a token that would extend a repetition of more than
/// `allowed_length` tokens loses `multiplier * base^(length - allowed_length)` of its logit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dry {
    /// 0: off.
    pub multiplier: f32,
    pub base: f32,
    pub allowed_length: i32,
    /// Window in tokens; 0: off; -1: the whole context.
    pub last_n: i32,
}

/// llama.cpp's default DRY sequence breakers: a repetition that crosses one is not penalised.
const DRY_BREAKERS: [&std::ffi::CStr; 4] = [c"\n", c":", c"\"", c"*"];

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            max_tokens: 256,
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            seed: None,
            stop: Vec::new(),
            grammar: None,
            json_schema: None,
            penalties: Penalties { last_n: 64, repeat: 1.0, frequency: 0.0, presence: 0.0 },
            dry: Dry { multiplier: 0.0, base: 1.75, allowed_length: 2, last_n: -1 },
            logit_bias: Vec::new(),
            n_probs: 0,
        }
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
        for (name, value, off) in
            [("top_p", self.top_p, "1: off"), ("min_p", self.min_p, "0: off"), ("typical_p", self.typical_p, "1: off")]
        {
            if !(0.0..=1.0).contains(&value) {
                return bad(format!("{name} is {value}; it must be in [0, 1] ({off})"));
            }
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("a stop string is empty".into());
        }
        if self.grammar.is_some() && self.json_schema.is_some() {
            return bad("both grammar and json_schema are set; set one".into());
        }
        self.validate_penalties()?;
        match self.logit_bias.iter().enumerate().find(|(_, (_, bias))| bias.is_nan() || *bias == f32::INFINITY) {
            Some((i, (_, bias))) => {
                bad(format!("logit_bias[{i}].bias is {bias}; it must be a finite number or -INFINITY (a ban)"))
            }
            None => Ok(()),
        }
    }

    fn validate_penalties(&self) -> Result<()> {
        let bad = |m: String| fail(InvalidArgument, m);
        let (p, d) = (&self.penalties, &self.dry);
        for (name, window) in [("penalty_last_n", p.last_n), ("dry_penalty_last_n", d.last_n)] {
            if window < -1 {
                return bad(format!("{name} is {window}; it must be >= -1 (0: off, -1: the whole context)"));
            }
        }
        if !(p.repeat > 0.0 && p.repeat.is_finite()) {
            return bad(format!("repeat_penalty is {}; it must be a finite number > 0 (1: off)", p.repeat));
        }
        for (name, value) in [("frequency_penalty", p.frequency), ("presence_penalty", p.presence)] {
            if !value.is_finite() {
                return bad(format!("{name} is {value}; it must be a finite number (0: off)"));
            }
        }
        if !(d.multiplier >= 0.0 && d.multiplier.is_finite()) {
            return bad(format!("dry_multiplier is {}; it must be a finite number >= 0 (0: off)", d.multiplier));
        }
        if !(d.base >= 1.0 && d.base.is_finite()) {
            return bad(format!("dry_base is {}; it must be a finite number >= 1", d.base));
        }
        if d.allowed_length < 1 {
            return bad(format!("dry_allowed_length is {}; it must be at least 1", d.allowed_length));
        }
        Ok(())
    }

    /// The sampler chain: the grammar first (it rules tokens out), then the logit bias and
    /// the penalties (greedy sampling too), then the filters, then the pick. A penalty window
    /// is at most `n_ctx` (-1: `n_ctx`): no more tokens than that can be seen, and llama.cpp
    /// allocates the window whole (`INT32_MAX` made it throw `bad_alloc`).
    pub(crate) fn sampler(
        &self,
        model: &Model,
        n_ctx: u32,
        default_seed: u32,
        tools: Option<&ToolGrammar>,
    ) -> Result<Sampler> {
        let mut chain = Sampler::chain();
        if let Some(g) = tools {
            add_grammar(&mut chain, model, &g.text, "tool call grammar", g.lazy.as_ref())?;
            chain.prefill_grammar(&g.prefill)?;
        } else if let Some((text, origin)) = self.grammar_text()? {
            add_grammar(&mut chain, model, &text, origin, None)?;
        }
        self.add_logit_bias(&mut chain, model)?;
        let n_ctx = n_ctx.min(i32::MAX as u32) as i32;
        let window = |last_n: i32| if last_n < 0 { n_ctx } else { last_n.min(n_ctx) };
        let p = &self.penalties;
        chain.add_penalties(model.n_vocab(), window(p.last_n), p.repeat, p.frequency, p.presence);
        let d = &self.dry;
        chain.add_dry(model, (d.multiplier, d.base, d.allowed_length), window(d.last_n), &DRY_BREAKERS);
        if self.temperature <= 0.0 {
            chain.add_greedy();
            return Ok(chain);
        }
        chain.add_filters_and_pick(
            (self.top_k, self.typical_p, self.top_p, self.min_p),
            self.temperature,
            self.seed.unwrap_or(default_seed),
        );
        Ok(chain)
    }

    /// Whether a grammar (given, or made from `json_schema`) constrains the answer.
    pub(crate) fn is_constrained(&self) -> bool {
        self.grammar.is_some() || self.json_schema.is_some()
    }

    /// The GBNF grammar the answer must follow, and what it came from: `grammar` as given, or
    /// `json_schema` converted.
    fn grammar_text(&self) -> Result<Option<(Cow<'_, str>, &'static str)>> {
        match (&self.grammar, &self.json_schema) {
            (Some(text), _) => Ok(Some((Cow::Borrowed(text), "grammar"))),
            (None, Some(schema)) => {
                json_schema::to_grammar(schema).map(|g| Some((Cow::Owned(g), "json_schema (as a grammar)")))
            }
            (None, None) => Ok(None),
        }
    }

    /// Adds the logit bias sampler; every token must be in the vocabulary.
    fn add_logit_bias(&self, chain: &mut Sampler, model: &Model) -> Result<()> {
        let n_vocab = model.n_vocab();
        if let Some((i, (token, _))) =
            self.logit_bias.iter().enumerate().find(|(_, (t, _))| !(0..n_vocab as i64).contains(&(*t as i64)))
        {
            return fail(
                InvalidArgument,
                format!("logit_bias[{i}].token is {token}; the vocabulary has tokens 0 to {}", n_vocab - 1),
            );
        }
        chain.add_logit_bias(n_vocab, &self.logit_bias);
        Ok(())
    }
}

/// llama.cpp's parser error, whose "at ..." quotes the rest of the grammar, cut to its first
/// 60 characters.
fn parse_error(why: &str) -> String {
    const QUOTED: usize = 60;
    match why.split_once(" at ") {
        Some((what, rest)) if rest.chars().count() > QUOTED => {
            format!("{what} at \"{}...\"", rest.chars().take(QUOTED).collect::<String>())
        }
        Some((what, "")) => format!("{what} at the end"),
        Some((what, rest)) => format!("{what} at \"{rest}\""),
        None => why.to_string(),
    }
}

/// Checks a GBNF grammar against the project's limits and adds it to the chain, applying from
/// the start or, with `lazy`, from the first of its triggers on; `origin` names it in errors.
/// The text is checked first (what would stop llama.cpp's parser), then what llama.cpp's
/// sampler would make of it (what would make each token cost seconds).
fn add_grammar(
    chain: &mut Sampler,
    model: &Model,
    text: &str,
    origin: &str,
    lazy: Option<&(Vec<CString>, Vec<Token>)>,
) -> Result<()> {
    grammar::check(text).or_else(|why| fail(InvalidArgument, format!("{origin} refused: {why}")))?;
    let g = CString::new(text).or_else(|_| fail(InvalidArgument, format!("the {origin} contains a NUL byte")))?;
    if let Err(why) = model.grammar_parse(&g) {
        // Logged as llama.cpp logs a grammar it cannot parse, through the log route (never
        // straight to stderr), and returned.
        let message = format!("invalid {origin}: {}", parse_error(&why));
        log::emit(log::LogLevel::Error, &message);
        return fail(InvalidArgument, message);
    }
    let ((steps, added), log) = log::capture(|| {
        let steps = model.grammar_steps(&g, grammar::TOKEN_CHARS, grammar::POSITIONS, grammar::MAX_STEPS);
        let add = |chain: &mut Sampler| match lazy {
            Some((patterns, tokens)) => chain.add_lazy_grammar(model, &g, patterns, tokens),
            None => chain.add_grammar(model, &g),
        };
        (steps, (steps <= grammar::MAX_STEPS).then(|| add(chain)).flatten())
    });
    if steps > grammar::MAX_STEPS {
        return fail(InvalidArgument, format!("{origin} refused: {}", grammar::too_ambiguous()));
    }
    if added.is_none() {
        return fail(InvalidArgument, format!("invalid {origin}: {}", log::last_lines(&log)));
    }
    Ok(())
}
