//! Asking a session: the request is evaluated from its first difference with the KV cache
//! record, then the answer is generated and streamed.

use std::collections::HashSet;
use std::time::Instant;

use crate::llama::chat::{render_chat, Applied};
use crate::llama::{Bitmap, Sampler, Token};
use crate::media;
use crate::model::loaded::Loaded;
use crate::model::template::ChatTemplate;
use crate::request::chat::{self, AnswerSinks, AnswerStream, Reasoning, ToolChoice};
use crate::request::logprobs::TokenChoice;
use crate::request::prompt::{Input, Message, Prompt};
use crate::request::sampling::ToolGrammar;
use crate::request::text::{Flow, TextStream};
use crate::request::utf8::Utf8Guard;
use crate::request::{logprobs, prompt, Overflow, PromptCount, Request, Sinks};
use crate::session::cache::Item;
use crate::session::report::{Answer, AskInfo, StopReason};
use crate::session::Session;
use crate::util::error::{fail, ErrorKind::*, Result};
use crate::util::log;

impl Session {
    /// Positions the request's prompt would take (after dropping the messages the overflow
    /// policy drops), without evaluating anything; a prompt that does not fit is counted too.
    pub fn count_positions(&mut self, req: &Request) -> Result<PromptCount> {
        // Counting evaluates nothing: images the cache holds (decoded before) need no pixels.
        let bitmaps = self.media_bitmaps(&req.input, &|id| self.cache().holds_media(id))?;
        let (prompt, dropped, _) = self.build_prompt(req, &bitmaps)?;
        Ok(PromptCount { positions: prompt.n_pos() as u32, messages_dropped: dropped, n_ctx: self.n_ctx() })
    }

    /// Evaluates what the request adds to the cache and generates the answer, streaming it to
    /// `sinks`. Returns the whole answer.
    pub fn ask(&mut self, req: &Request, sinks: Sinks) -> Result<String> {
        let abort = self.abort_state();
        abort.begin_call();
        log::in_call(&abort, || self.ask_cancellable(req, sinks))
    }

    fn ask_cancellable(&mut self, req: &Request, sinks: Sinks) -> Result<String> {
        self.loaded().check_remote()?;
        req.sampling.validate()?;
        if req.sampling.n_probs > 0 && sinks.on_token.is_none() {
            return fail(
                InvalidArgument,
                format!("n_probs is {} but there is no token callback to receive them", req.sampling.n_probs),
            );
        }
        check_tools(req)?;
        let started = Instant::now();
        let mut info = AskInfo::default();
        let plan = match self.plan(req, true)? {
            plan if plan.evaluates_placeholder(self) => self.plan(req, false)?,
            plan => plan,
        };
        let lease = self.lease()?;
        info.slot_wait_ms = lease.waited_ms();
        // A KV cache lost while its slot was lent (see `Session::lease`) holds nothing now.
        let Plan { prompt, dropped, common, reuse_logits, chat } =
            if lease.kv_lost() { self.plan(req, false)? } else { plan };
        let tool_grammar = match (&chat, req.tools) {
            (Some(applied), Some(_)) => self.tool_grammar(applied)?,
            _ => None,
        };
        let mut sampler = req.sampling.sampler(self.model(), self.n_ctx(), self.seed(), tool_grammar.as_ref())?;
        info.messages_dropped = dropped;
        info.prompt_positions = prompt.n_pos() as u32;
        info.prompt_usage = prompt.usage();
        sampler.remember(&prompt.text_tokens())?;
        let n_parts = prompt.parts.len();
        self.check_media_steps(&prompt, common)?;
        let cut = self.cache_mut().truncate(common);
        self.forget_from(cut);
        info.positions_reused = cut as u32;

        let evaluated = self.evaluate(&prompt, common, &mut info);
        info.prompt_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = evaluated {
            info.most_together = self.most_together();
            self.set_last_ask(info);
            return Err(e);
        }
        if !reuse_logits {
            let logits = self.logits().to_vec();
            self.cache_mut().save_logits(logits);
        }
        let logits = self.cache().logits_after(n_parts).expect("kept above").to_vec();

        let generating = Instant::now();
        let constrained = req.sampling.is_constrained() || tool_grammar.is_some();
        let result = self.answer(req, chat.as_ref(), &mut sampler, constrained, logits, sinks, &mut info);
        info.generate_ms = generating.elapsed().as_secs_f64() * 1e3;
        info.most_together = self.most_together();
        drop(lease);
        self.set_last_ask(info);
        let answer = result?;
        let content = answer.content.clone();
        self.set_last_answer(answer);
        Ok(content)
    }

    /// The grammar that makes a required tool call well-formed, or that a tool call follows
    /// once it starts (`tool_choice` auto), with the tokens of the prompt's end that a required
    /// call's grammar reads first.
    fn tool_grammar(&self, applied: &Applied) -> Result<Option<ToolGrammar>> {
        let Some(mut text) = applied.grammar() else { return Ok(None) };
        if applied.grammar_reads_generation_prompt() {
            text = chat::call_at_once(&text);
        }
        let (patterns, tokens) = applied.triggers();
        let lazy = applied.grammar_lazy().then_some((patterns, tokens));
        let mut prefill = Vec::new();
        let generation_prompt = applied.generation_prompt();
        if applied.grammar_reads_generation_prompt() && !generation_prompt.is_empty() {
            // As llama.cpp's sampler does: a tokenizer may put a space before the first
            // control token, which the generation prompt does not have.
            let mut piece = Vec::new();
            for (i, t) in self.model().tokenize(&generation_prompt, false, true)?.into_iter().enumerate() {
                self.model().token_text(t, true, &mut piece)?;
                let space = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_whitespace());
                if i == 0 && space(piece.first()) && !space(generation_prompt.as_bytes().first()) {
                    continue;
                }
                prefill.push(t);
            }
        }
        Ok(Some(ToolGrammar { text, lazy, prefill }))
    }

    /// Tokenizes the request and finds what of it the cache holds. With `placeholders`, the
    /// images the cache holds are neither decoded nor preprocessed (a follow-up question about
    /// earlier images costs what its new text costs); the plan then must not evaluate any of
    /// them ([`Plan::evaluates_placeholder`]), or the request is planned again without.
    fn plan(&self, req: &Request, placeholders: bool) -> Result<Plan> {
        let bitmaps = self.media_bitmaps(&req.input, &|id| placeholders && self.cache().holds_media(id))?;
        let (prompt, dropped, chat) = self.build_prompt(req, &bitmaps)?;
        fits(prompt.n_pos(), self.n_ctx() as i32)?;
        if prompt.parts.is_empty() {
            return fail(InvalidArgument, "the prompt is empty: it has no token and no media");
        }
        // Reuse the cached prefix. Evaluate at least one part unless the logits that followed
        // exactly this prompt were kept.
        let n_parts = prompt.parts.len();
        let mut common = self.cache().common_prefix(prompt.items());
        let reuse_logits = common == n_parts && self.cache().logits_after(common).is_some();
        if common == n_parts && !reuse_logits {
            common -= 1;
        }
        Ok(Plan { prompt, dropped, common, reuse_logits, chat })
    }

    /// The bitmap of every media item of the request, in order; images whose content id
    /// `placeholder` accepts become placeholders (see [`media::to_bitmap`]).
    fn media_bitmaps(&self, input: &Input, placeholder: &dyn Fn(&str) -> bool) -> Result<Vec<Bitmap>> {
        let all: Vec<&media::Media> = match input {
            Input::Prompt { media, .. } => media.iter().collect(),
            Input::Chat(messages) => messages.iter().flat_map(|m| m.media.iter()).collect(),
        };
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let Some(projector) = self.projector() else {
            return fail(
                Unsupported,
                format!("{} media item(s) given, but this session has no projector (text only)", all.len()),
            );
        };
        all.iter().enumerate().map(|(i, m)| media::to_bitmap(projector, i, m, placeholder)).collect()
    }

    /// Renders and tokenizes the request; with `Overflow::DropOldest`, drops the oldest
    /// messages after a leading system message until the prompt fits. Returns the prompt, the
    /// number of messages dropped and, for a chat rendered by llama.cpp's chat layer, the
    /// render (what generating and parsing the answer need); the prompt may still not fit (see
    /// [`fits`]).
    fn build_prompt(&self, req: &Request, bitmaps: &[Bitmap]) -> Result<(Prompt, u32, Option<Applied>)> {
        let n_ctx = self.n_ctx() as i32;
        let marker = self.marker();
        let messages = match &req.input {
            Input::Prompt { text, media } => {
                let segments = prompt::prompt_segments(text, media.len(), marker, !req.plain_prompt)?;
                return Ok((self.tokenize_prompt(&segments, bitmaps)?, 0, None));
            }
            Input::Chat([]) => return fail(InvalidArgument, "the chat has no message"),
            Input::Chat(messages) => messages,
        };
        let first_media = first_media(messages);
        let system = (messages[0].role == "system") as usize;
        // The chat without the messages from `system` to `start`.
        let build = |start: usize| -> Result<(Prompt, Option<Applied>)> {
            let (segments, applied) = self.chat_segments(req, messages, &first_media, system, start)?;
            Ok((self.tokenize_prompt(&segments, bitmaps)?, applied))
        };
        let (whole, applied) = build(system)?;
        if whole.n_pos() < n_ctx || req.overflow == Overflow::Fail {
            return Ok((whole, 0, applied));
        }
        // Whole turns are dropped, oldest first: a chat may start after the system message at
        // any user message. A chat only gets shorter as turns are dropped, so the fewest turns
        // to drop are found by bisection: a few renders, not one per turn (renders of thousands
        // of messages one turn at a time take minutes).
        let starts: Vec<usize> = (system + 1..messages.len()).filter(|&i| messages[i].role == "user").collect();
        let Some(&last) = starts.last() else { return Ok((whole, 0, applied)) };
        let (mut fits_from, mut too_long_until) = (starts.len(), 0);
        let mut fitting = None;
        while too_long_until < fits_from {
            let mid = (too_long_until + fits_from) / 2;
            let (prompt, applied) = build(starts[mid])?;
            if prompt.n_pos() < n_ctx {
                fitting = Some((prompt, applied, starts[mid]));
                fits_from = mid;
            } else {
                too_long_until = mid + 1;
            }
        }
        match fitting {
            Some((prompt, applied, start)) => Ok((prompt, (start - system) as u32, applied)),
            // Nothing fits: the shortest chat, for the error to count.
            None => build(last).map(|(prompt, applied)| (prompt, 0, applied)),
        }
    }

    /// The text of the request's prompt as the chat template renders it (a raw prompt as it
    /// is), with the marker where each media item goes: what is tokenized, before it is.
    pub fn prompt_text(&self, req: &Request) -> Result<String> {
        let marker = self.marker();
        let segments = match &req.input {
            Input::Prompt { text, media } => prompt::prompt_segments(text, media.len(), marker, !req.plain_prompt)?,
            Input::Chat([]) => return fail(InvalidArgument, "the chat has no message"),
            Input::Chat(messages) => {
                check_tools(req)?;
                self.chat_segments(req, messages, &first_media(messages), 0, 0)?.0
            }
        };
        Ok(segments
            .iter()
            .map(|s| match s {
                prompt::Segment::Text { text, .. } => text.as_str(),
                prompt::Segment::Media(_) => marker,
            })
            .collect())
    }

    /// The segments of the chat `messages` without those from `system` to `start` (the
    /// messages whose media start at `first_media`), and what llama.cpp's chat layer made of it.
    fn chat_segments(
        &self,
        req: &Request,
        messages: &[Message],
        first_media: &[usize],
        system: usize,
        start: usize,
    ) -> Result<(Vec<prompt::Segment>, Option<Applied>)> {
        let marker = self.marker();
        let kept = (0..system).chain(start..messages.len());
        let chat = kept
            .map(|i| {
                let text =
                    prompt::place_markers(messages[i].text, messages[i].media.len(), marker, &format!("message {i}"))?;
                Ok(prompt::ChatMessage {
                    role: messages[i].role.to_string(),
                    text,
                    first_media: first_media[i],
                    source: i,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut applied = None;
        let segments = prompt::chat_segments(&chat, marker, &mut |placeholders, texts| {
            self.render(req, messages, &chat, [placeholders, texts], &mut applied)
        })?;
        check_media_once(&segments, messages, first_media, system, start)?;
        Ok((segments, applied))
    }

    /// Renders the chat `chat` (messages of `messages`) twice, with the placeholders and with
    /// the texts of `versions` in place of their texts, keeping in `applied` what llama.cpp's
    /// chat layer made of the texts' render (the placeholders' render wants its prompt alone).
    fn render(
        &self,
        req: &Request,
        messages: &[Message],
        chat: &[prompt::ChatMessage],
        versions: [&[&str]; 2],
        applied: &mut Option<Applied>,
    ) -> Result<(String, String)> {
        match &self.loaded().chat {
            ChatTemplate::Builtin(template) => {
                if req.tools.is_some() {
                    return fail(Unsupported, "tools need a Jinja chat template, and this session renders chats with llama.cpp's built-in renderer (create it with a Jinja chat_template)");
                }
                let [placeholders, texts] = versions.map(|texts| {
                    let plain: Vec<(String, String)> =
                        chat.iter().zip(texts).map(|(m, t)| (m.role.clone(), t.to_string())).collect();
                    render_chat(template, &plain)
                });
                Ok((placeholders?, texts?))
            }
            ChatTemplate::Jinja(jinja) => {
                let [placeholders, texts] = [(versions[0], true), (versions[1], false)].map(|(texts, prompt_only)| {
                    let described: Vec<(&Message, &str)> =
                        chat.iter().zip(texts).map(|(m, t)| (&messages[m.source], *t)).collect();
                    chat::render_request(&described, req.tools.as_ref(), req.reasoning, prompt_only)
                });
                let [placeholders, texts] = jinja.apply(self.loaded(), |l: &Loaded| &l.model, [placeholders, texts])?;
                let prompts = (placeholders.prompt().to_string(), texts.prompt().to_string());
                *applied = Some(texts);
                Ok(prompts)
            }
        }
    }

    fn tokenize_prompt(&self, segments: &[prompt::Segment], bitmaps: &[Bitmap]) -> Result<Prompt> {
        match self.projector() {
            Some(p) => prompt::tokenize_media(p, &prompt::cut_special(self.model(), segments), bitmaps),
            None => prompt::tokenize_text(self.model(), segments),
        }
    }

    /// Fails, before anything is evaluated, when a media item of `prompt.parts[from..]` would
    /// be evaluated with non-causal attention in steps larger than the context computes at once:
    /// mtmd evaluates it `n_batch` embeddings a call, and llama.cpp asserts that a non-causal call
    /// fits in one `n_ubatch` step.
    fn check_media_steps(&self, prompt: &Prompt, from: usize) -> Result<()> {
        let (Some(projector), Some(chunks)) = (self.projector(), prompt.chunks.as_ref()) else { return Ok(()) };
        let (n_batch, n_ubatch) = (self.group().n_batch(), self.group().n_ubatch());
        for chunk in prompt.parts[from..].iter().filter_map(|p| p.chunk) {
            let (non_causal, n_tokens) = projector.media_eval_shape(chunks, chunk);
            if non_causal && n_tokens.min(n_batch) > n_ubatch {
                return fail(
                    InvalidArgument,
                    format!("a media item of {n_tokens} embeddings would be decoded with non-causal attention {} at a time, but the session's n_ubatch is {n_ubatch}; create it with n_ubatch = n_batch", n_tokens.min(n_batch)),
                );
            }
        }
        Ok(())
    }

    fn cancelled(&self) -> Result<()> {
        if self.abort_state().is_cancelled() {
            return fail(Cancelled, "the call was cancelled");
        }
        Ok(())
    }

    /// Evaluates `prompt.parts[from..]`, recording each once it is in the KV cache. On failure
    /// or cancellation the KV cache is cut back to what the record holds.
    fn evaluate(&mut self, prompt: &Prompt, from: usize, info: &mut AskInfo) -> Result<()> {
        let result = self.evaluate_parts(prompt, from, info);
        if result.is_err() {
            self.forget_from(self.cache().n_pos());
        }
        result
    }

    fn evaluate_parts(&mut self, prompt: &Prompt, from: usize, info: &mut AskInfo) -> Result<()> {
        let n_batch = self.group().n_batch() as usize;
        let last = prompt.parts.len() - 1;
        let mut i = from;
        let mut tokens = Vec::with_capacity(n_batch);
        while i < prompt.parts.len() {
            self.cancelled()?;
            let part = &prompt.parts[i];
            if let (Item::Media { n_pos, .. }, Some(chunk)) = (&part.item, part.chunk) {
                let chunks = prompt.chunks.as_ref().expect("media parts have chunks");
                let n_past = self.cache().n_pos();
                let (result, log) = log::capture(|| self.eval_media(chunks, chunk, n_past, i == last));
                let (status, new_n_past) = result?;
                self.loaded().check_remote()?;
                self.cancelled()?;
                if status != 0 {
                    return fail(Eval, format!("encoding media item failed ({status}): {}", log::last_lines(&log)));
                }
                info.media_encoded += 1;
                info.tokens_evaluated += *n_pos as u32;
                self.cache_mut().push(part.item.clone(), new_n_past);
                i += 1;
                continue;
            }
            tokens.clear();
            while let Some(Item::Token(t)) = prompt.parts.get(i).map(|p| &p.item) {
                if tokens.len() == n_batch {
                    break;
                }
                tokens.push(*t);
                i += 1;
            }
            self.eval_tokens(&tokens, i - 1 == last)?;
            info.tokens_evaluated += tokens.len() as u32;
        }
        Ok(())
    }

    /// Generates the answer and hands it to `sinks`: as it is generated, or, for a chat whose
    /// format has tool calls or reasoning to parse, as llama.cpp's chat parser splits it.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        req: &Request,
        chat: Option<&Applied>,
        sampler: &mut Sampler,
        constrained: bool,
        first_logits: Vec<f32>,
        sinks: Sinks,
        info: &mut AskInfo,
    ) -> Result<Answer> {
        let Sinks { on_text, on_token, on_reasoning, on_tool_call } = sinks;
        let parsed =
            chat.filter(|a| req.tools.is_some() || (req.reasoning != Reasoning::Inline && a.supports_thinking()));
        let mut stops = req.sampling.stop.clone();
        stops.extend(chat.map(Applied::stops).unwrap_or_default());
        let Some(applied) = parsed else {
            let gen = Generation { req, stops: &stops, preserved: HashSet::new(), constrained };
            let content = self.generate(&gen, sampler, first_logits, on_text, on_token, info)?;
            return Ok(Answer { content, ..Answer::default() });
        };
        let seed = req.sampling.seed.unwrap_or(self.seed());
        let sinks = AnswerSinks { on_text, on_reasoning, on_tool_call };
        let mut stream = AnswerStream::new(applied, req.reasoning, seed, sinks)?;
        let mut failed = None;
        let gen =
            Generation { req, stops: &stops, preserved: applied.preserved_tokens().into_iter().collect(), constrained };
        let mut feed = |piece: &str| match stream.push(piece) {
            Ok(go_on) => go_on,
            Err(e) => {
                failed = Some(e);
                false
            }
        };
        self.generate(&gen, sampler, first_logits, &mut feed, on_token, info)?;
        if let Some(e) = failed {
            return Err(e);
        }
        let answer = stream.finish()?;
        info.tool_calls = answer.tool_calls.len() as u32;
        if info.tool_calls > 0 && matches!(info.stop_reason, StopReason::Eog | StopReason::StopString) {
            info.stop_reason = StopReason::ToolCalls;
        }
        Ok(answer)
    }

    /// Generates tokens until one of the ends, streaming their text to `on_text`; returns the
    /// whole text (stop strings cut off).
    fn generate(
        &mut self,
        gen: &Generation,
        sampler: &mut Sampler,
        first_logits: Vec<f32>,
        on_text: &mut dyn FnMut(&str) -> bool,
        mut on_token: Option<&mut dyn FnMut(&TokenChoice)>,
        info: &mut AskInfo,
    ) -> Result<String> {
        let req = gen.req;
        let n_ctx = self.n_ctx() as i32;
        let mut stream = TextStream::new(gen.stops, on_text);
        let mut reason = StopReason::MaxTokens;
        let mut piece = Vec::new();
        let mut candidates = Vec::new();
        // A grammar's answer stays valid UTF-8 (see utf8.rs).
        let mut utf8_guard = if gen.constrained { Some(Utf8Guard::of(self.model())?) } else { None };
        for n in 0..req.sampling.max_tokens {
            let logits = if n == 0 { &first_logits[..] } else { self.logits() };
            let token = match utf8_guard.as_mut() {
                Some(guard) => sampler.sample_from(
                    logits,
                    Some(&mut |t| guard.keeps_valid(stream.unfinished(), t)),
                    &mut candidates,
                )?,
                None => sampler.sample_from(logits, None, &mut candidates)?,
            };
            if self.model().is_eog(token) {
                reason = StopReason::Eog;
                break;
            }
            info.tokens_generated += 1;
            if let Some(on_token) = on_token.as_mut() {
                on_token(&logprobs::choice(self.model(), logits, token, req.sampling.n_probs)?);
            }
            self.model().token_text(token, gen.preserved.contains(&token), &mut piece)?;
            if let Flow::Stop(r) = stream.push(&piece) {
                reason = r;
                break;
            }
            if n + 1 == req.sampling.max_tokens {
                break;
            }
            if self.cache().n_pos() >= n_ctx {
                reason = StopReason::ContextFull;
                break;
            }
            if let Err(e) = self.cancelled().and_then(|_| self.eval_tokens(&[token], true)) {
                self.forget_from(self.cache().n_pos());
                info.stop_reason = StopReason::None;
                return Err(e);
            }
        }
        info.stop_reason = reason;
        Ok(stream.finish())
    }
}

/// What generating an answer goes by besides the sampling settings.
struct Generation<'r> {
    req: &'r Request<'r>,
    /// The request's stop strings and the chat format's.
    stops: &'r [String],
    /// Control tokens whose text the answer keeps (a chat format's markers).
    preserved: HashSet<Token>,
    /// Whether a grammar constrains the answer.
    constrained: bool,
}

/// Fails when a request's tools cannot be: a raw prompt, a grammar or JSON Schema besides, or
/// tools too large or too deep.
fn check_tools(req: &Request) -> Result<()> {
    let Some(tools) = &req.tools else { return Ok(()) };
    if matches!(req.input, Input::Prompt { .. }) {
        return fail(InvalidArgument, "tools are for chats: give messages, not a prompt");
    }
    if req.sampling.is_constrained() && tools.choice != ToolChoice::None {
        return fail(InvalidArgument, "tools cannot be combined with a grammar or a JSON Schema (the tool calls have a grammar of their own); set tool_choice to none, or leave out the grammar");
    }
    chat::check_tools(tools)
}

/// The index of each message's first media item among the chat's, and after them the number
/// of media items.
fn first_media(messages: &[Message]) -> Vec<usize> {
    let mut first = vec![0];
    for m in messages {
        first.push(first.last().expect("starts with 0") + m.media.len());
    }
    first
}

/// Fails unless every media item of the kept messages (`0..system` and `start..`) appears once
/// among the segments: a chat template that drops or repeats a message with media is refused.
fn check_media_once(
    segments: &[prompt::Segment],
    messages: &[crate::request::prompt::Message],
    first_media: &[usize],
    system: usize,
    start: usize,
) -> Result<()> {
    let mut seen = vec![0u32; *first_media.last().unwrap_or(&0)];
    for s in segments {
        if let prompt::Segment::Media(i) = s {
            match seen.get_mut(*i) {
                Some(n) => *n += 1,
                None => return fail(MediaCount, "a media marker without its media item"),
            }
        }
    }
    for i in (0..system).chain(start..messages.len()) {
        if seen[first_media[i]..first_media[i + 1]].iter().any(|&n| n != 1) {
            return fail(MediaCount, format!("the chat template dropped or repeated message {i}, which has media"));
        }
    }
    Ok(())
}

/// A tokenized request and what of it the cache holds.
struct Plan {
    prompt: Prompt,
    /// What llama.cpp's chat layer made of a chat (see [`Session::build_prompt`]).
    chat: Option<Applied>,
    /// Messages dropped to make the chat fit.
    dropped: u32,
    /// Leading parts reused from the cache.
    common: usize,
    /// Whether the logits after the whole prompt were kept (nothing needs evaluating).
    reuse_logits: bool,
}

impl Plan {
    /// Whether a media part to evaluate was tokenized as a placeholder (an image the cache
    /// holds, but not at this place).
    fn evaluates_placeholder(&self, session: &Session) -> bool {
        self.prompt.parts[self.common..]
            .iter()
            .any(|p| matches!(&p.item, Item::Media { id, .. } if session.cache().holds_media(id)))
    }
}

/// Fails unless a prompt of `n_pos` positions leaves room for an answer.
fn fits(n_pos: i32, n_ctx: i32) -> Result<()> {
    if n_pos >= n_ctx {
        return fail(
            ContextFull,
            format!("the prompt takes {n_pos} positions but the context holds {n_ctx} (one more is needed to answer)"),
        );
    }
    Ok(())
}
