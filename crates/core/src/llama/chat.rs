//! Chat templates, rendered by llama.cpp: its Jinja chat layer (`common/chat.h`, through
//! shim/chat.cpp), which also makes tool call grammars and parses answers, and its fixed
//! renderer of known templates (`llama_chat_apply_template`).

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{self, check, THREW};
use crate::llama::model::{Model, Token};
use crate::llama::render_thread;
use crate::util::error::{fail, ErrorKind::*, Result};

/// Renders messages (with their markers placed) with `template`, a Jinja template string
/// llama.cpp recognises or a built-in name such as "chatml".
pub fn render_chat(template: &str, messages: &[(String, String)]) -> Result<String> {
    let template_c =
        CString::new(template).or_else(|_| fail(InvalidArgument, "the chat template contains a NUL byte"))?;
    let c_strings = messages
        .iter()
        .enumerate()
        .map(|(i, (role, text))| match (CString::new(role.as_str()), CString::new(text.as_str())) {
            (Ok(r), Ok(t)) => Ok((r, t)),
            _ => fail(InvalidArgument, format!("message {i} contains a NUL byte")),
        })
        .collect::<Result<Vec<_>>>()?;
    let chat: Vec<sys::llama_chat_message> =
        c_strings.iter().map(|(r, t)| sys::llama_chat_message { role: r.as_ptr(), content: t.as_ptr() }).collect();
    let mut buf = vec![0u8; 256 + 2 * messages.iter().map(|(r, t)| r.len() + t.len()).sum::<usize>()];
    for _ in 0..2 {
        let n = apply_chat_template(&template_c, &chat, &mut buf)?;
        if n < 0 {
            return fail(Unsupported, "llama.cpp does not recognise this model's chat template (tokenizer.chat_template); set chat_template to a built-in name such as \"chatml\"");
        }
        if (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return String::from_utf8(buf).or_else(|_| fail(InvalidArgument, "the rendered chat is not UTF-8"));
        }
        buf.resize(n as usize, 0);
    }
    fail(Internal, "llama_chat_apply_template kept asking for more room")
}

/// Renders chat messages with `template` (Jinja text llama.cpp recognises, or a built-in name)
/// into `buf`; returns the length it needs, or a negative value for an unknown template.
fn apply_chat_template(template: &CStr, chat: &[sys::llama_chat_message], buf: &mut [u8]) -> Result<i32> {
    // SAFETY: the messages' strings outlive the call, and `buf` has room for `buf.len()` bytes.
    let n = unsafe {
        guard::mm_guard_chat_apply_template(
            template.as_ptr(),
            chat.as_ptr(),
            chat.len(),
            buf.as_mut_ptr().cast(),
            buf.len().min(i32::MAX as usize) as i32,
            THREW,
        )
    };
    check(n, "llama_chat_apply_template")
}

/// Whether `name` is one of llama.cpp's built-in template names ("chatml", "llama3", ...),
/// which its fixed renderer knows by name.
pub fn is_builtin_name(name: &str) -> bool {
    let mut names = vec![std::ptr::null::<c_char>(); 128];
    // SAFETY: `names` has room for `names.len()` pointers; llama.cpp fills them with its static
    // strings and returns how many it has.
    let n = unsafe { sys::llama_chat_builtin_templates(names.as_mut_ptr(), names.len()) };
    names.truncate((n.max(0) as usize).min(names.len()));
    // SAFETY: each pointer is one of llama.cpp's static NUL-terminated names.
    names.iter().any(|&p| unsafe { CStr::from_ptr(p) }.to_bytes() == name.as_bytes())
}

/// A model's chat templates parsed by llama.cpp's Jinja engine (`common_chat_templates`), and
/// whether llama.cpp knows their tool call syntax (templates without one get a generic JSON
/// format, shim/chat.cpp).
pub struct Templates(NonNull<c_void>);

// SAFETY: the parsed templates are only read after `parse` (llama.cpp's apply takes them
// const, each render in a context of its own), so they may be shared and sent between threads.
unsafe impl Send for Templates {}
// SAFETY: as above.
unsafe impl Sync for Templates {}

/// Parses `template` and runs the probes llama.cpp's chat layer runs on a template (several
/// renders); the error is the parser's or the render's.
pub fn check_template(template: &str) -> std::result::Result<(), String> {
    let text = CString::new(template).map_err(|_| "the chat template contains a NUL byte".to_string())?;
    // SAFETY: the text outlives the call.
    match unsafe { mm_chat_template_check(text.as_ptr()) } {
        0 => Ok(()),
        _ => Err(guard::what()),
    }
}

impl Templates {
    /// Parses `template` (Jinja text), or the model's own template when `None` (ChatML when it
    /// has none). The error is the Jinja parser's.
    pub fn parse(model: &Model, template: Option<&str>) -> std::result::Result<Templates, String> {
        let text = template.map(|t| CString::new(t).map_err(|_| "the chat template contains a NUL byte".to_string()));
        let text = text.transpose()?;
        let ptr = text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: the model and the text outlive the call; the result is owned here.
        let t = unsafe { mm_chat_templates_init(model.as_ptr(), ptr) };
        NonNull::new(t).map(Templates).ok_or_else(guard::what)
    }

    /// [`Templates::parse`] on the render thread (`render_thread.rs`: its stack is large, as the
    /// Jinja parser recurses once per level of nesting, and it is the process's one such
    /// thread), waited for until it ends once it has started; `limit` bounds only the wait for
    /// it to start.
    pub fn parse_on_render_thread(
        model: &Model,
        template: Option<&str>,
        limit: std::time::Duration,
    ) -> std::result::Result<Templates, String> {
        struct ModelRef<'m>(&'m Model);
        // SAFETY: a `Model` is only read here, as from any thread (llama.cpp models are
        // read-only once loaded).
        unsafe impl Send for ModelRef<'_> {}
        let model = ModelRef(model);
        let template = template.map(str::to_owned);
        render_thread::run_to_end(limit, move || {
            let model = model;
            Templates::parse(model.0, template.as_deref())
        })
        .map_err(|e| e.message)?
    }

    /// Whether llama.cpp's chat layer knows the template's own tool call syntax (it makes a
    /// grammar for a required call); a template without one gets the generic JSON format.
    /// Renders the template (a probe chat).
    pub fn knows_tool_calls(&self) -> std::result::Result<bool, String> {
        // SAFETY: the templates outlive the call.
        match unsafe { mm_chat_templates_native_tools(self.0.as_ptr()) } {
            -1 => Err(guard::what()),
            n => Ok(n == 1),
        }
    }

    /// Renders a chat described by `request` (JSON: see shim/chat.cpp's `mm_chat_apply`),
    /// tools in the template's own syntax when `native_tools`, else in the generic format.
    pub fn apply(&self, model: &Model, native_tools: bool, request: &str) -> std::result::Result<Applied, String> {
        let request = CString::new(request).map_err(|_| "the chat contains a NUL byte".to_string())?;
        // SAFETY: the templates, the vocabulary and the request outlive the call.
        let a = unsafe { mm_chat_apply(self.0.as_ptr(), native_tools, model.vocab(), request.as_ptr()) };
        NonNull::new(a).map(Applied).ok_or_else(guard::what)
    }
}

impl Drop for Templates {
    fn drop(&mut self) {
        // SAFETY: made by mm_chat_templates_init, freed only here.
        unsafe { mm_chat_templates_free(self.0.as_ptr()) }
    }
}

/// One rendered chat: its prompt, and what generating and parsing the answer need (the tool
/// call grammar and its triggers, the tokens whose text the parser must see, extra stops).
pub struct Applied(NonNull<c_void>);

// SAFETY: an owned C++ object with no thread affinity, only read after it is made.
unsafe impl Send for Applied {}
// SAFETY: as above.
unsafe impl Sync for Applied {}

impl Applied {
    fn ptr(&self) -> *const c_void {
        self.0.as_ptr()
    }
    pub fn prompt(&self) -> &str {
        let mut len = 0;
        // SAFETY: the prompt lives as long as `self`, `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(mm_chat_applied_prompt(self.ptr(), &mut len).cast(), len) };
        std::str::from_utf8(bytes).unwrap_or("")
    }
    /// The grammar a tool call must follow, if any.
    pub fn grammar(&self) -> Option<String> {
        // SAFETY: a NUL-terminated string that lives as long as `self`.
        let g = unsafe { CStr::from_ptr(mm_chat_applied_grammar(self.ptr())) }.to_string_lossy().into_owned();
        (!g.is_empty()).then_some(g)
    }
    /// Whether the grammar applies only once a trigger appears (`tool_choice` auto).
    pub fn grammar_lazy(&self) -> bool {
        // SAFETY: a plain read of `self`.
        unsafe { mm_chat_applied_grammar_lazy(self.ptr()) }
    }
    /// The end of the prompt the template added to start the answer ("<|im_start|>assistant\n").
    pub fn generation_prompt(&self) -> String {
        // SAFETY: a NUL-terminated string that lives as long as `self`.
        unsafe { CStr::from_ptr(mm_chat_applied_generation_prompt(self.ptr())) }.to_string_lossy().into_owned()
    }
    /// The lazy grammar's trigger patterns (regular expressions) and tokens.
    pub fn triggers(&self) -> (Vec<CString>, Vec<Token>) {
        // SAFETY: indexes below the counts; the strings and tokens live as long as `self`.
        unsafe {
            let patterns = (0..mm_chat_applied_n_patterns(self.ptr()))
                .map(|i| CStr::from_ptr(mm_chat_applied_pattern(self.ptr(), i)).to_owned())
                .collect();
            let tokens =
                tokens(mm_chat_applied_trigger_tokens(self.ptr()), mm_chat_applied_n_trigger_tokens(self.ptr()));
            (patterns, tokens)
        }
    }
    /// Control tokens whose text stays in the answer (the format's markers, such as
    /// "<tool_call>").
    pub fn preserved_tokens(&self) -> Vec<Token> {
        // SAFETY: the array lives as long as `self` and has the count given.
        unsafe { tokens(mm_chat_applied_preserved(self.ptr()), mm_chat_applied_n_preserved(self.ptr())) }
    }
    /// Stop strings the format adds.
    pub fn stops(&self) -> Vec<String> {
        // SAFETY: indexes below the count; NUL-terminated strings that live as long as `self`.
        unsafe {
            (0..mm_chat_applied_n_stops(self.ptr()))
                .map(|i| CStr::from_ptr(mm_chat_applied_stop(self.ptr(), i)).to_string_lossy().into_owned())
                .collect()
        }
    }
    /// Whether the grammar reads the prompt's generation prompt before the answer (see
    /// [`Applied::generation_prompt`]).
    pub fn grammar_reads_generation_prompt(&self) -> bool {
        // SAFETY: a plain read of `self`.
        unsafe { mm_chat_applied_prefill(self.ptr()) }
    }
    /// Whether the template's answers may think first (reasoning the parser separates).
    pub fn supports_thinking(&self) -> bool {
        // SAFETY: a plain read of `self`.
        unsafe { mm_chat_applied_supports_thinking(self.ptr()) }
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        // SAFETY: made by mm_chat_apply, freed only here.
        unsafe { mm_chat_applied_free(self.0.as_ptr()) }
    }
}

/// Copies `n` tokens from `ptr` (NULL when `n` is 0).
///
/// # Safety
/// `ptr` points to `n` readable tokens when `n` > 0.
unsafe fn tokens(ptr: *const Token, n: usize) -> Vec<Token> {
    if n == 0 {
        return Vec::new();
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec()
}

/// A tool call of an answer: the function's name, its arguments (JSON text) and its id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
    pub id: String,
}

/// What one update of a streamed answer changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub content: String,
    pub reasoning: String,
    /// The tool call that changed (its index among the answer's calls) and what was added to
    /// it: its name and id when it first appears, then pieces of its arguments.
    pub tool_call: Option<(usize, ToolCall)>,
}

#[repr(C)]
struct RawDelta {
    content: *const c_char,
    reasoning: *const c_char,
    tool_index: i64,
    tool_name: *const c_char,
    tool_id: *const c_char,
    tool_arguments: *const c_char,
}

/// An answer parsed by llama.cpp's chat parser (`common_chat_parse`) as it grows: content,
/// reasoning and tool calls, and what each update changed.
pub struct ChatParser(NonNull<c_void>);

// SAFETY: an owned C++ object with no thread affinity.
unsafe impl Send for ChatParser {}

impl ChatParser {
    /// A parser of answers to `applied`; with `reasoning`, thinking goes to the reasoning, not
    /// the content. Tool call ids the parser makes up come from `seed`.
    pub fn new(applied: &Applied, reasoning: bool, seed: u32) -> Result<ChatParser> {
        // SAFETY: `applied` outlives the call; the parser copies what it needs.
        let p = unsafe { mm_chat_stream_new(applied.ptr(), reasoning, seed) };
        match NonNull::new(p) {
            Some(p) => Ok(ChatParser(p)),
            None => fail(Internal, format!("the chat parser could not be made: {}", guard::what())),
        }
    }

    /// Parses the whole answer so far (`partial`: more may follow). `Ok(false)`: the final text
    /// is not in the format (it is then all content, and the parser's reason is in `what`).
    pub fn update(&mut self, text: &str, partial: bool) -> Result<bool> {
        // SAFETY: `text` outlives the call, `text.len()` bytes.
        match unsafe { mm_chat_stream_update(self.0.as_ptr(), text.as_ptr().cast(), text.len(), partial) } {
            0 => Ok(true),
            1 => Ok(false),
            _ => fail(Internal, format!("parsing the answer failed: {}", guard::what())),
        }
    }

    /// What the last update changed.
    pub fn deltas(&self) -> Vec<Delta> {
        let p = self.0.as_ptr();
        let text = |s: *const c_char| {
            // SAFETY: NUL-terminated strings of the parser, valid until its next update.
            unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
        };
        // SAFETY: indexes below the count; `raw` is written whole by the shim.
        (0..unsafe { mm_chat_stream_n_diffs(p) })
            .map(|i| {
                let mut raw = RawDelta {
                    content: std::ptr::null(),
                    reasoning: std::ptr::null(),
                    tool_index: -1,
                    tool_name: std::ptr::null(),
                    tool_id: std::ptr::null(),
                    tool_arguments: std::ptr::null(),
                };
                // SAFETY: as above.
                unsafe { mm_chat_stream_diff(p, i, &mut raw) };
                Delta {
                    content: text(raw.content),
                    reasoning: text(raw.reasoning),
                    tool_call: (raw.tool_index >= 0).then(|| {
                        let call = ToolCall {
                            name: text(raw.tool_name),
                            arguments: text(raw.tool_arguments),
                            id: text(raw.tool_id),
                        };
                        (raw.tool_index as usize, call)
                    }),
                }
            })
            .collect()
    }

    /// The answer's content, reasoning and tool calls as last parsed.
    pub fn message(&self) -> (String, String, Vec<ToolCall>) {
        let p = self.0.as_ptr();
        // SAFETY: NUL-terminated strings of the parser; indexes below the count.
        unsafe {
            let content = CStr::from_ptr(mm_chat_stream_content(p)).to_string_lossy().into_owned();
            let reasoning = CStr::from_ptr(mm_chat_stream_reasoning(p)).to_string_lossy().into_owned();
            let calls = (0..mm_chat_stream_n_tool_calls(p))
                .map(|i| {
                    let (mut name, mut arguments, mut id) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
                    mm_chat_stream_tool_call(p, i, &mut name, &mut arguments, &mut id);
                    ToolCall {
                        name: CStr::from_ptr(name).to_string_lossy().into_owned(),
                        arguments: CStr::from_ptr(arguments).to_string_lossy().into_owned(),
                        id: CStr::from_ptr(id).to_string_lossy().into_owned(),
                    }
                })
                .collect();
            (content, reasoning, calls)
        }
    }
}

impl Drop for ChatParser {
    fn drop(&mut self) {
        // SAFETY: made by mm_chat_stream_new, freed only here.
        unsafe { mm_chat_stream_free(self.0.as_ptr()) }
    }
}

/// Silences llama.cpp `common`'s own log (it prints to stderr from a thread of its own). Call
/// once, before any other thread may log through it.
pub(crate) fn quiet_common_log() {
    // SAFETY: sets one int of llama.cpp common; called once, at backend init.
    unsafe { mm_chat_quiet_common_log() }
}

extern "C" {
    fn mm_chat_quiet_common_log();
    fn mm_chat_template_check(src: *const c_char) -> i32;
    fn mm_chat_templates_init(model: *const sys::llama_model, tmpl: *const c_char) -> *mut c_void;
    fn mm_chat_templates_free(t: *mut c_void);
    fn mm_chat_templates_native_tools(t: *const c_void) -> i32;
    fn mm_chat_apply(
        t: *const c_void,
        native_tools: bool,
        vocab: *const sys::llama_vocab,
        request: *const c_char,
    ) -> *mut c_void;
    fn mm_chat_applied_free(a: *mut c_void);
    fn mm_chat_applied_prompt(a: *const c_void, len: *mut usize) -> *const c_char;
    fn mm_chat_applied_grammar(a: *const c_void) -> *const c_char;
    fn mm_chat_applied_grammar_lazy(a: *const c_void) -> bool;
    fn mm_chat_applied_generation_prompt(a: *const c_void) -> *const c_char;
    fn mm_chat_applied_n_patterns(a: *const c_void) -> usize;
    fn mm_chat_applied_pattern(a: *const c_void, i: usize) -> *const c_char;
    fn mm_chat_applied_n_trigger_tokens(a: *const c_void) -> usize;
    fn mm_chat_applied_trigger_tokens(a: *const c_void) -> *const Token;
    fn mm_chat_applied_n_preserved(a: *const c_void) -> usize;
    fn mm_chat_applied_preserved(a: *const c_void) -> *const Token;
    fn mm_chat_applied_n_stops(a: *const c_void) -> usize;
    fn mm_chat_applied_stop(a: *const c_void, i: usize) -> *const c_char;
    fn mm_chat_applied_supports_thinking(a: *const c_void) -> bool;
    fn mm_chat_applied_prefill(a: *const c_void) -> bool;
    fn mm_chat_stream_new(a: *const c_void, reasoning: bool, seed: u32) -> *mut c_void;
    fn mm_chat_stream_free(s: *mut c_void);
    fn mm_chat_stream_update(s: *mut c_void, text: *const c_char, len: usize, partial: bool) -> i32;
    fn mm_chat_stream_n_diffs(s: *const c_void) -> usize;
    fn mm_chat_stream_diff(s: *const c_void, i: usize, out: *mut RawDelta);
    fn mm_chat_stream_content(s: *const c_void) -> *const c_char;
    fn mm_chat_stream_reasoning(s: *const c_void) -> *const c_char;
    fn mm_chat_stream_n_tool_calls(s: *const c_void) -> usize;
    fn mm_chat_stream_tool_call(
        s: *const c_void,
        i: usize,
        name: *mut *const c_char,
        arguments: *mut *const c_char,
        id: *mut *const c_char,
    );
}
