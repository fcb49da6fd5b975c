//! A model's chat template: parsed by llama.cpp's Jinja engine (the model's own, or the one a
//! session is created with), or one of llama.cpp's built-in templates by name, or the model's
//! own rendered by llama.cpp's fixed renderer when the Jinja engine refuses it.
//!
//! llama.cpp's Jinja engine has no limits of its own: its parser recurses once per level of
//! nesting, and a render runs as long as the template says. So a template's size and nesting
//! are checked before it is parsed, parsing and rendering run on a thread with a large stack
//! (the process's render thread, `render_thread.rs`), and a render that takes longer than
//! [`RENDER_LIMIT`] fails the request; that render is left to finish on its thread, and the
//! template is refused from then on (docs/reliability.md).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::llama::chat::{self, Applied, Templates};
use crate::llama::{render_thread, Model};
use crate::util::error::{fail, ErrorKind::*, Result};
use crate::util::log;

/// Largest chat template accepted, in bytes (the largest public templates are about 40 KiB).
pub const MAX_BYTES: usize = 256 * 1024;
/// Most blocks (`{% if %}`, `{% for %}`, ...) and brackets nested in one another in a template.
pub const MAX_DEPTH: usize = 64;
/// Longest render of a chat accepted, by default (see [`set_render_limit`]).
pub const RENDER_LIMIT: Duration = Duration::from_secs(10);

/// The render limit now, in ms.
static LIMIT_MS: AtomicU64 = AtomicU64::new(RENDER_LIMIT.as_millis() as u64);

/// Sets how long a chat template may take to render one chat, for every session of the
/// process (default [`RENDER_LIMIT`]): a render that takes longer fails its request, and its
/// template is refused from then on.
pub fn set_render_limit(limit: Duration) {
    LIMIT_MS.store(limit.as_millis().max(1) as u64, Ordering::Relaxed);
}

fn render_limit() -> Duration {
    Duration::from_millis(LIMIT_MS.load(Ordering::Relaxed))
}

/// How a session renders chats.
pub enum ChatTemplate {
    /// llama.cpp's chat layer with a parsed Jinja template: tools, reasoning and all.
    Jinja(Jinja),
    /// llama.cpp's fixed renderer: a built-in template name, or the text of a template the
    /// Jinja engine refused that the fixed renderer recognises. Plain messages only.
    Builtin(String),
}

/// A parsed template, whether llama.cpp knows its tool call syntax, and whether one of its
/// renders ran out of time.
pub struct Jinja {
    templates: Arc<Templates>,
    native_tools: bool,
    stuck: AtomicBool,
}

impl ChatTemplate {
    /// The template of a session of `model`: `named` (Jinja text, or a built-in name), else the
    /// model's own, else ChatML. A `named` template the Jinja engine refuses is refused with its
    /// error; the model's own falls back to the fixed renderer, with a warning in the log.
    pub fn new(model: &Model, named: Option<&str>) -> Result<ChatTemplate> {
        if let Some(name) = named.filter(|n| chat::is_builtin_name(n)) {
            return Ok(ChatTemplate::Builtin(name.to_string()));
        }
        if let Some(text) = named {
            return Jinja::parse(model, Some(text))
                .map(ChatTemplate::Jinja)
                .or_else(|why| fail(InvalidArgument, format!("chat_template could not be parsed: {}", cut(&why))));
        }
        let own = model.chat_template();
        match Jinja::parse(model, own.as_deref()) {
            Ok(jinja) => Ok(ChatTemplate::Jinja(jinja)),
            Err(why) => {
                log::emit(
                    log::LogLevel::Warn,
                    &format!("the model's chat template could not be parsed as Jinja ({}); chats are rendered by llama.cpp's built-in renderer, without tools", cut(&why)),
                );
                Ok(ChatTemplate::Builtin(own.unwrap_or_default()))
            }
        }
    }
}

/// Checks a template a session is created with before anything loads: a built-in name, or
/// Jinja text of a size and nesting the engine is given, that renders messages.
pub fn check_named(template: &str) -> Result<()> {
    if chat::is_builtin_name(template) {
        return Ok(());
    }
    let shown: String = template.chars().take(60).collect();
    let more = if shown.len() < template.len() { "..." } else { "" };
    if !template.contains("messages") {
        return fail(InvalidArgument, format!("chat_template \"{shown}{more}\" is neither a built-in name (such as \"chatml\", \"llama3\" or \"gemma\") nor a Jinja template that renders `messages`"));
    }
    bounded(template).or_else(|why| fail(InvalidArgument, format!("chat_template refused: {why}")))
}

impl Jinja {
    /// Checks `template`'s size and nesting, then parses it and renders probe chats (what
    /// llama.cpp's chat layer learns of a template, and whether it knows its tool call syntax)
    /// on threads with a large stack, in the time limit.
    fn parse(model: &Model, template: Option<&str>) -> std::result::Result<Jinja, String> {
        let stuck = AtomicBool::new(false);
        if let Some(text) = template {
            bounded(text)?;
            // The first parse and probes, on a thread that holds nothing of the model's.
            let text = text.to_string();
            on_render_thread(&stuck, move || chat::check_template(&text)).map_err(|e| e.message)??;
        }
        let templates = Templates::parse_on_render_thread(model, template, render_limit())?;
        let templates = Arc::new(templates);
        let probed = templates.clone();
        let native_tools = on_render_thread(&stuck, move || probed.knows_tool_calls())
            .map_err(|e| e.message)?
            .map_err(|why| format!("the template could not render a probe chat: {why}"))?;
        Ok(Jinja { templates, native_tools, stuck })
    }

    /// Renders the chats described by `requests` (JSON: see shim/chat.cpp's `mm_chat_apply`),
    /// in order, on one thread of their own, `model` being the one the template was parsed for
    /// and `keep_alive` what owns it (the thread holds it until the renders end).
    pub fn apply<T: Send + Sync + 'static, const N: usize>(
        &self,
        keep_alive: &Arc<T>,
        model: fn(&T) -> &Model,
        requests: [String; N],
    ) -> Result<[Applied; N]> {
        let (templates, owner, native_tools) = (self.templates.clone(), keep_alive.clone(), self.native_tools);
        let rendered = on_render_thread(&self.stuck, move || {
            let model = model(&owner);
            let rendered: std::result::Result<Vec<Applied>, String> =
                requests.iter().map(|r| templates.apply(model, native_tools, r)).collect();
            rendered.map(|all| all.try_into().unwrap_or_else(|_| unreachable!("one render per request")))
        })?;
        rendered.or_else(|why| {
            fail(InvalidArgument, format!("the chat template could not render this chat: {}", cut(&why)))
        })
    }
}

/// Runs `f` on the render thread, waiting for it [`render_limit`] at most: a render that takes
/// longer marks `stuck` and fails (it finishes on its own, holding what `f` owns); once
/// `stuck`, nothing runs.
fn on_render_thread<T: Send + 'static>(stuck: &AtomicBool, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    if stuck.load(Ordering::Relaxed) {
        return fail(InvalidArgument, too_slow());
    }
    match render_thread::run(render_limit(), f)? {
        Some(done) => Ok(done),
        None => {
            stuck.store(true, Ordering::Relaxed);
            log::emit(log::LogLevel::Warn, &too_slow());
            fail(InvalidArgument, too_slow())
        }
    }
}

fn too_slow() -> String {
    format!("the chat template did not finish rendering a chat within the limit ({} ms): it is refused from now on (that render goes on in the background until it ends)", render_limit().as_millis())
}

/// `why` cut to 400 characters (llama.cpp's messages may quote a whole template or tool list).
fn cut(why: &str) -> String {
    match why.char_indices().nth(400) {
        Some((at, _)) => format!("{}...", &why[..at]),
        None => why.to_string(),
    }
}

/// Checks a template's size, and how deep its blocks and, inside its tags, its brackets nest.
fn bounded(template: &str) -> std::result::Result<(), String> {
    if template.len() > MAX_BYTES {
        return Err(format!("it is {} bytes long (limit {MAX_BYTES})", template.len()));
    }
    let too_deep = || Err(format!("it nests blocks or brackets more than {MAX_DEPTH} deep"));
    let (mut blocks, mut rest) = (0usize, template);
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let (tag, next) = tag_body(body, close);
        rest = next;
        if close == "%}" {
            let word = tag.trim_start_matches(['-', '+']).split_whitespace().next().unwrap_or("");
            let opens = matches!(word, "if" | "for" | "macro" | "call" | "filter" | "raw" | "generation")
                || (word == "set" && !tag.contains('='));
            if opens {
                blocks += 1;
            } else if word.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
        }
        if blocks > MAX_DEPTH || bracket_depth(tag) > MAX_DEPTH {
            return too_deep();
        }
    }
    Ok(())
}

/// The text of a tag up to `close` (outside its strings), and the rest after it.
fn tag_body<'t>(body: &'t str, close: &str) -> (&'t str, &'t str) {
    let mut quote = None;
    for (i, c) in body.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if body[i..].starts_with(close) => return (&body[..i], &body[i + close.len()..]),
            None => {}
        }
    }
    (body, "")
}

/// How deep brackets nest in a tag, outside its strings.
fn bracket_depth(tag: &str) -> usize {
    let (mut depth, mut most, mut quote) = (0usize, 0usize, None);
    for c in tag.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                most = most.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_nesting_are_bounded() {
        assert!(bounded("{% for m in messages %}{{ m['content'] | trim }}{% endfor %}").is_ok());
        let deep_blocks = format!("{}x{}", "{% if a %}".repeat(MAX_DEPTH + 1), "{% endif %}".repeat(MAX_DEPTH + 1));
        assert!(bounded(&deep_blocks).unwrap_err().contains("deep"));
        let flat_blocks = "{% if a %}x{% endif %}".repeat(1000);
        assert!(bounded(&flat_blocks).is_ok(), "siblings are not nesting");
        let deep_brackets = format!("{{{{ {}1{} }}}}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(bounded(&deep_brackets).unwrap_err().contains("deep"));
        assert!(bounded(&format!("{{{{ '{}' }}}}", "(".repeat(500))).is_ok(), "brackets in strings do not count");
        assert!(bounded(&format!("text {} text", "((((".repeat(500))).is_ok(), "text outside tags does not count");
        assert!(bounded(&" ".repeat(MAX_BYTES + 1)).unwrap_err().contains("bytes"));
    }
}
