//! Chats through llama.cpp's chat layer: the Jinja templates of six vision model families
//! render as llama.cpp renders them, required tool calls are well-formed even with random
//! weights, a tool call's round trip reuses the cache, and bad tools, tool results and
//! templates get clear errors in bounded time.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::json::Json;
use crate::common::llama_chat::{q, LlamaChat};
use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status::{self, *};

/// One message of a chat, with its tool call fields.
#[derive(Clone, Default)]
struct Msg {
    role: &'static str,
    text: String,
    media: Vec<mm_media>,
    tool_calls: Option<String>,
    tool_call_id: Option<String>,
    name: Option<String>,
}

fn msg(role: &'static str, text: &str) -> Msg {
    Msg { role, text: text.into(), ..Msg::default() }
}

/// A chat with tools, whose strings stay alive with it.
struct ToolChat {
    _strings: Vec<CString>,
    _media: Vec<Vec<mm_media>>,
    messages: Vec<mm_message>,
    ext: Vec<mm_message_ext>,
    tools: Option<CString>,
    choice: Option<CString>,
}

impl ToolChat {
    fn new(msgs: &[Msg], tools: Option<&str>, choice: Option<&str>) -> ToolChat {
        let mut strings = Vec::new();
        let mut keep = |s: &str| {
            let c = c(s);
            let p = c.as_ptr();
            strings.push(c);
            p
        };
        let media: Vec<Vec<mm_media>> = msgs.iter().map(|m| m.media.clone()).collect();
        let mut messages = Vec::new();
        let mut ext = Vec::new();
        for (m, items) in msgs.iter().zip(&media) {
            messages.push(mm_message {
                role: keep(m.role),
                text: keep(&m.text),
                media: if items.is_empty() { std::ptr::null() } else { items.as_ptr() },
                n_media: items.len(),
            });
            let mut opt = |s: &Option<String>| s.as_deref().map_or(std::ptr::null(), &mut keep);
            ext.push(mm_message_ext {
                tool_calls: opt(&m.tool_calls),
                tool_call_id: opt(&m.tool_call_id),
                name: opt(&m.name),
                reasoning_content: std::ptr::null(),
            });
        }
        ToolChat { _strings: strings, _media: media, messages, ext, tools: tools.map(c), choice: choice.map(c) }
    }

    /// Greedy request parameters for this chat.
    fn params(&self) -> mm_ask_params {
        let mut a = mm_ask_params_default();
        a.messages = self.messages.as_ptr();
        a.n_messages = self.messages.len();
        a.message_ext = self.ext.as_ptr();
        a.tools = self.tools.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        a.tool_choice = self.choice.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        a.temperature = 0.0;
        a.max_tokens = 8;
        a
    }
}

fn apply_template(s: *mut mm_session, a: &mm_ask_params) -> Result<String, (mm_status, String)> {
    let mut out: *mut c_char = std::ptr::null_mut();
    match unsafe { mm_session_apply_template(s, a, &mut out) } {
        MM_OK => {
            let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
            unsafe { mm_string_free(out) };
            Ok(text)
        }
        st => Err((st, last_error())),
    }
}

fn last_message(s: *mut mm_session) -> Json {
    let mut out: *mut c_char = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_last_message(s, &mut out) }, MM_OK);
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { mm_string_free(out) };
    Json::parse(&text).unwrap_or_else(|| panic!("not JSON: {text}"))
}

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/capi/templates")
}

const WEATHER_TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}, "days": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["city", "days"], "additionalProperties": false}}}, {"type": "function", "function": {"name": "get_time", "description": "The time in a time zone.", "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}}}]"#;

/// The chat every template renders: a system message, a user message with an image, the
/// assistant's tool call, its result, and the next user message.
fn tool_round(image: mm_media, marker: &str) -> Vec<Msg> {
    vec![
        msg("system", "You are a helpful assistant. Answer briefly."),
        Msg { media: vec![image], ..msg("user", &format!("What city is in {marker} this picture? Check its weather.")) },
        Msg {
            tool_calls: Some(
                r#"[{"id": "call_a1b2c3d4", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}}]"#
                    .into(),
            ),
            ..msg("assistant", "")
        },
        Msg {
            tool_call_id: Some("call_a1b2c3d4".into()),
            name: Some("get_weather".into()),
            ..msg("tool", r#"{"temperature": 21, "sky": "clear"}"#)
        },
        msg("user", "Thanks! And <b>tomorrow</b>?"),
    ]
}

/// The same chat as OpenAI JSON with the real texts, for the reference render.
fn chat_json(msgs: &[Msg], tools: Option<&str>) -> String {
    let messages: Vec<String> = msgs
        .iter()
        .map(|m| {
            let mut o = format!("{{\"role\":{},\"content\":{}", q(m.role), q(&m.text));
            if let Some(t) = &m.tool_calls {
                o += &format!(",\"tool_calls_json\":{}", q(t));
            }
            if let Some(id) = &m.tool_call_id {
                o += &format!(",\"tool_call_id\":{}", q(id));
            }
            if let Some(n) = &m.name {
                o += &format!(",\"name\":{}", q(n));
            }
            o + "}"
        })
        .collect();
    let tools =
        tools.map(|t| format!(",\"tools_json\":{},\"tool_choice\":\"auto\",\"parallel_tool_calls\":false", q(t)));
    format!(
        "{{\"messages\":[{}]{},\"reasoning\":true,\"enable_thinking\":true}}",
        messages.join(","),
        tools.unwrap_or_default()
    )
}

/// The plain chat every template renders: a system message, a user message with an image, an
/// answer and a follow-up.
fn plain_round(image: mm_media, marker: &str) -> Vec<Msg> {
    vec![
        msg("system", "You are a helpful assistant."),
        Msg { media: vec![image], ..msg("user", &format!("Describe {marker} this picture.")) },
        msg("assistant", "  A red square on white.\n"),
        msg("user", "Is it <|im_end|> bright?"),
    ]
}

/// Renders `msgs` with the library and with llama.cpp: the same text, or the same refusal.
/// Returns whether it rendered.
fn renders_alike(s: *mut mm_session, name: &str, template: &str, msgs: &[Msg], tools: Option<&str>) -> bool {
    let m = models();
    let chat = ToolChat::new(msgs, tools, None);
    let ours = apply_template(s, &chat.params());
    let theirs = LlamaChat::new(&m.model, Some(template)).render(&chat_json(msgs, tools));
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => {
            assert_eq!(ours, theirs, "{name}: the library's render differs from llama.cpp's");
            true
        }
        (Err((st, ours)), Err(theirs)) => {
            assert_eq!(st, MM_ERR_INVALID_ARGUMENT, "{name}: {ours}");
            let why = theirs.lines().last().unwrap_or_default();
            assert!(ours.contains(why), "{name}: the library refuses the chat for another reason: {ours} / {theirs}");
            false
        }
        (ours, theirs) => panic!("{name}: ours {ours:?}, llama.cpp's {theirs:?}"),
    }
}

#[test]
fn six_families_templates_render_as_llama_cpp_renders_them() {
    let m = models();
    let mut names: Vec<String> = std::fs::read_dir(templates_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jinja"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    let mut with_tools = Vec::new();
    for name in &names {
        let template = std::fs::read_to_string(templates_dir().join(name)).unwrap();
        let t = c(&template);
        let mut p = params(m);
        p.chat_template = t.as_ptr();
        let s = create(&p).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
        let plain = plain_round(image_item(m), &marker);
        assert!(renders_alike(s, name, &template, &plain, None), "{name}: every template renders a plain chat");
        if renders_alike(s, name, &template, &tool_round(image_item(m), &marker), Some(WEATHER_TOOLS)) {
            with_tools.push(name.clone());
        }
        // A request renders the same chat: the image is evaluated where its marker stands.
        let chat = ToolChat::new(&plain, None, None);
        let mut a = chat.params();
        a.max_tokens = 2;
        ask(s, &a).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let mut info = ask_info();
        assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
        assert_eq!(info.media_encoded, 1, "{name}");
        assert_eq!(mm_session_destroy(s), MM_OK);
    }
    // Gemma 3's template raises "Conversation roles must alternate" at a tool message, in
    // llama.cpp as here (renders_alike checked the same refusal).
    assert_eq!(
        with_tools,
        ["internvl.jinja", "llama3_2_vision.jinja", "mistral_small_3_1.jinja", "qwen2_5_vl.jinja", "smolvlm.jinja"]
    );
}

/// Checks a tool call's arguments against WEATHER_TOOLS' schemas: `Err` says what is wrong.
fn validate_call(name: &str, arguments: &str) -> Result<(), String> {
    let args = Json::parse(arguments).ok_or(format!("arguments are not JSON: {arguments}"))?;
    let Json::Object(fields) = &args else { return Err(format!("arguments are not an object: {arguments}")) };
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    match name {
        "get_weather" => {
            if keys != ["city", "days"] {
                return Err(format!("get_weather takes city and days: {arguments}"));
            }
            let city = args.get("city").and_then(Json::as_str).ok_or("city is not a string")?;
            if !["Paris", "Oslo", "Lima"].contains(&city) {
                return Err(format!("city {city} is not in the enum"));
            }
            match args.get("days") {
                Some(Json::Number(d)) if d.fract() == 0.0 && (1.0..=9.0).contains(d) => Ok(()),
                other => Err(format!("days is not an integer in [1, 9]: {other:?}")),
            }
        }
        "get_time" => match (keys.as_slice(), args.get("zone").and_then(Json::as_str)) {
            (["zone"], Some("UTC" | "CET")) => Ok(()),
            _ => Err(format!("get_time takes zone, UTC or CET: {arguments}")),
        },
        other => Err(format!("no tool is named {other}")),
    }
}

/// Assembles streamed tool call deltas by index: (id, name, arguments) each.
unsafe extern "C" fn collect_tool_call(user: *mut c_void, d: *const mm_tool_call_delta) -> bool {
    let calls = &mut *(user as *mut Vec<(String, String, String)>);
    let d = &*d;
    let text = |p: *const c_char| CStr::from_ptr(p).to_str().unwrap().to_string();
    if calls.len() <= d.index {
        calls.resize(d.index + 1, Default::default());
    }
    let call = &mut calls[d.index];
    call.0 += &text(d.id);
    call.1 += &text(d.name);
    call.2 += &text(d.arguments);
    true
}

/// The tool calls of the session's last answer: (id, name, arguments).
fn tool_calls(s: *mut mm_session) -> Vec<(String, String, String)> {
    let message = last_message(s);
    let Some(calls) = message.get("tool_calls").and_then(Json::as_array) else { return Vec::new() };
    calls
        .iter()
        .map(|c| {
            assert_eq!(c.get("type").and_then(Json::as_str), Some("function"), "{c:?}");
            let f = c.get("function").unwrap();
            let text = |j: Option<&Json>| j.and_then(Json::as_str).unwrap().to_string();
            (text(c.get("id")), text(f.get("name")), text(f.get("arguments")))
        })
        .collect()
}

#[test]
fn required_tool_calls_are_well_formed_with_random_weights() {
    let m = models();
    // The fixtures' ChatML (the generic format), and templates whose tool call syntax llama.cpp
    // knows (its grammar, triggers and parser; Mistral's ids are 9 characters).
    let mut templates = vec![("generic (ChatML)".to_string(), None)];
    for name in ["llama3_2_vision", "mistral_small_3_1"] {
        templates.push((
            name.to_string(),
            Some(std::fs::read_to_string(templates_dir().join(format!("{name}.jinja"))).unwrap()),
        ));
    }
    let question = vec![msg("user", "What is the weather in Oslo for the next 3 days?")];
    for (template_name, template) in &templates {
        let t = template.as_deref().map(c);
        let mut p = params(m);
        // The fixture's tokenizer spells most text byte by byte: the tools' description is long.
        p.n_ctx = 4096;
        p.chat_template = t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        let s = create(&p).unwrap();
        for (choice, expected) in [("required", None), ("get_time", Some("get_time"))] {
            let chat = ToolChat::new(&question, Some(WEATHER_TOOLS), Some(choice));
            for seed in 1..=20u32 {
                let mut streamed: Vec<(String, String, String)> = Vec::new();
                let mut a = chat.params();
                a.temperature = 1.0;
                a.seed = seed;
                a.max_tokens = 256;
                a.on_tool_call = Some(collect_tool_call);
                a.user_data = &mut streamed as *mut Vec<(String, String, String)> as *mut c_void;
                let text = ask(s, &a).unwrap_or_else(|e| panic!("{template_name}, {choice}, seed {seed}: {e:?}"));
                let mut info = ask_info();
                assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
                let calls = tool_calls(s);
                let what = format!("{template_name}, {choice}, seed {seed}: text {text:?}, calls {calls:?}");
                assert_eq!(info.stop_reason, mm_stop_reason::MM_STOP_TOOL_CALLS as i32, "{what}");
                assert_eq!((calls.len(), info.tool_calls), (1, 1), "{what}");
                assert_eq!(streamed, calls, "{what}: the streamed deltas, assembled by index, are the calls");
                let (id, name, arguments) = &calls[0];
                validate_call(name, arguments).unwrap_or_else(|why| panic!("{what}: {why}"));
                if let Some(expected) = expected {
                    assert_eq!(name, expected, "{what}");
                }
                assert!(!id.is_empty(), "{what}");
            }
        }
        assert_eq!(mm_session_destroy(s), MM_OK);
    }
}

#[test]
fn a_tool_round_trip_reuses_the_cached_prefix_and_its_image() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 4096;
    let s = create(&p).unwrap();
    let question = Msg { media: vec![image_item(m)], ..msg("user", "Which city is this? Get its weather for 2 days.") };
    let first = ToolChat::new(std::slice::from_ref(&question), Some(WEATHER_TOOLS), Some("get_weather"));
    let mut a = first.params();
    a.max_tokens = 256;
    ask(s, &a).unwrap();
    let mut info = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
    assert_eq!((info.media_encoded, info.tool_calls), (1, 1));
    let call = last_message(s);
    let calls = call.get("tool_calls").unwrap();
    let id = calls.as_array().unwrap()[0].get("id").and_then(Json::as_str).unwrap().to_string();
    let calls_json = json_text(calls);

    // The assistant's call as the answer gave it, its result, and the next question.
    let second = vec![
        question,
        Msg { tool_calls: Some(calls_json), ..msg("assistant", "") },
        Msg { tool_call_id: Some(id.clone()), name: Some("get_weather".into()), ..msg("tool", r#"{"sky": "rain"}"#) },
        msg("user", "Should I take an umbrella?"),
    ];
    let follow_up = ToolChat::new(&second, Some(WEATHER_TOOLS), None);
    // The rendered prefix is byte-stable: the first request's prompt starts the second's.
    let before = apply_template(s, &first.params()).unwrap();
    let after = apply_template(s, &follow_up.params()).unwrap();
    let shared = before.len() - before.lines().last().unwrap().len();
    assert!(after.starts_with(&before[..shared]), "{before:?}\n{after:?}");
    let mut a = follow_up.params();
    a.max_tokens = 4;
    ask(s, &a).unwrap();
    let mut info = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
    assert!(info.positions_reused > 0, "{info:?}");
    assert_eq!(info.media_encoded, 0, "the image is reused from the cache");
    assert!(info.positions_reused as usize > shared / 8, "the question and its image are reused: {info:?}");

    // A tool result for a call no message made is refused.
    let mut stray = second.clone();
    stray[2].tool_call_id = Some("call_nobodymadethis".into());
    let chat = ToolChat::new(&stray, Some(WEATHER_TOOLS), None);
    let (st, why) = ask(s, &chat.params()).unwrap_err();
    assert_eq!(st, MM_ERR_INVALID_ARGUMENT);
    assert!(why.contains("call_nobodymadethis") && why.contains("no earlier assistant message"), "{why}");
    assert_eq!(mm_session_destroy(s), MM_OK);
}

/// JSON text of a value (the subset the tests read back).
fn json_text(j: &Json) -> String {
    match j {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => q(s),
        Json::Array(a) => format!("[{}]", a.iter().map(json_text).collect::<Vec<_>>().join(",")),
        Json::Object(o) => {
            format!("{{{}}}", o.iter().map(|(k, v)| format!("{}:{}", q(k), json_text(v))).collect::<Vec<_>>().join(","))
        }
    }
}

#[test]
fn bad_tools_and_templates_get_clear_errors_in_bounded_time() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let question = vec![msg("user", "Hello?")];
    let refused = |tools: Option<&str>, choice: Option<&str>, expected: &str| {
        let chat = ToolChat::new(&question, tools, choice);
        let started = Instant::now();
        let (st, why) = ask(s, &chat.params()).unwrap_err();
        assert_eq!(st, MM_ERR_INVALID_ARGUMENT, "{why}");
        assert!(why.contains(expected), "expected {expected:?} in: {why}");
        assert!(why.len() < 700, "the message is cut: {}", why.len());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    };
    refused(Some("get_weather"), Some("required"), "tools is not a JSON array");
    refused(Some(r#"{"type": "function"}"#), Some("required"), "tools is not a JSON array");
    refused(Some(r#"[{"type": "retrieval"}]"#), None, "Unsupported tool type");
    refused(Some(""), None, "tools is empty");
    refused(None, Some("required"), "tool_choice is set but params.tools is NULL");
    refused(Some(WEATHER_TOOLS), Some("get_news"), "not among the tools");
    let unresolved = r##"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/definitions/nowhere"}}}}}]"##;
    refused(Some(unresolved), Some("required"), "could not render this chat");
    let deep = format!(
        r#"[{{"type": "function", "function": {{"name": "f", "parameters": {}{}}}}}]"#,
        r#"{"type": "array", "items": "#.repeat(100),
        "}".repeat(100)
    );
    refused(Some(&deep), Some("required"), "nests arrays and objects more than");
    let huge =
        format!(r#"[{{"type": "function", "function": {{"name": "f", "description": "{}"}}}}]"#, "x".repeat(70_000));
    refused(Some(&huge), None, "bytes long");
    // Tools are for chats, and a grammar of their own.
    let prompt = c("Hello");
    let tools = c(WEATHER_TOOLS);
    let mut a = prompt_params(&prompt);
    a.tools = tools.as_ptr();
    assert_eq!(status_of_ask(s, &a), MM_ERR_INVALID_ARGUMENT);
    let chat = ToolChat::new(&question, Some(WEATHER_TOOLS), Some("required"));
    let mut a = chat.params();
    let grammar = c("root ::= \"x\"");
    a.grammar = grammar.as_ptr();
    assert_eq!(status_of_ask(s, &a), MM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("cannot be combined"), "{}", last_error());
    assert_eq!(mm_session_destroy(s), MM_OK);

    // Templates that nest deeply are refused at create, before anything loads.
    for deep in [
        format!("{}{{{{ messages }}}}{}", "{% if true %}".repeat(200), "{% endif %}".repeat(200)),
        format!("{{{{ messages{}{} }}}}", "[(".repeat(5000), ")]".repeat(5000)),
    ] {
        let t = c(&deep);
        let mut p = params(m);
        p.chat_template = t.as_ptr();
        let started = Instant::now();
        let (st, why) = create(&p).unwrap_err();
        assert_eq!(st, MM_ERR_INVALID_ARGUMENT);
        assert!(why.contains("nests blocks or brackets more than 64 deep"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // A template whose text the Jinja engine refuses: at create, with the parser's reason.
    let broken = c("{% for m in messages %}{{ m.content }");
    let mut p = params(m);
    p.chat_template = broken.as_ptr();
    let (st, why) = create(&p).unwrap_err();
    assert_eq!(st, MM_ERR_INVALID_ARGUMENT);
    assert!(why.contains("chat_template could not be parsed"), "{why}");

    // A template that loops for long: the render stops being waited for at the limit, the
    // template is refused from then on, and what it holds is freed once its render ends.
    mm_core::set_chat_render_limit(Duration::from_millis(300));
    let looping =
        c("{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}{{ messages[0]['content'] }}");
    let mut p = params(m);
    p.chat_template = looping.as_ptr();
    let started = Instant::now();
    let (st, why) = create(&p).unwrap_err();
    mm_core::set_chat_render_limit(mm_core::CHAT_RENDER_LIMIT);
    assert_eq!(st, MM_ERR_INVALID_ARGUMENT);
    assert!(why.contains("did not finish rendering a chat within the limit (300 ms)"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(mm_loaded_models(), 0, "the render left behind holds nothing of the model's");
}

/// What the streaming callbacks received.
#[derive(Default)]
struct Streamed {
    text: String,
    reasoning: String,
}

unsafe extern "C" fn on_text(user: *mut c_void, text: *const c_char, _len: usize) -> bool {
    let s = &mut *(user as *mut Streamed);
    s.text.push_str(CStr::from_ptr(text).to_str().unwrap());
    true
}

unsafe extern "C" fn on_reasoning(user: *mut c_void, text: *const c_char, _len: usize) -> bool {
    let s = &mut *(user as *mut Streamed);
    s.reasoning.push_str(CStr::from_ptr(text).to_str().unwrap());
    true
}

#[test]
fn reasoning_is_kept_apart_or_left_inline() {
    let m = models();
    let template = std::fs::read_to_string(templates_dir().join("reasoning/deepseek_r1_distill_qwen.jinja")).unwrap();
    let t = c(&template);
    let mut p = params(m);
    p.chat_template = t.as_ptr();
    let s = create(&p).unwrap();
    let chat = ToolChat::new(&[msg("user", "Hi")], None, None);
    // The template's answer starts inside "<think>\n"; a grammar makes the random weights
    // think, then answer.
    let grammar = c("root ::= \"I think.\\n</think>\\n\\nHello.\"");
    for (reasoning, text, thought) in [
        (mm_reasoning::MM_REASONING_SEPARATE, "Hello.", "I think."),
        (mm_reasoning::MM_REASONING_INLINE, "I think.\n</think>\n\nHello.", ""),
    ] {
        let mut streamed = Streamed::default();
        let mut a = chat.params();
        a.grammar = grammar.as_ptr();
        a.max_tokens = 64;
        a.reasoning = reasoning as i32;
        a.on_text = Some(on_text);
        a.on_reasoning = Some(on_reasoning);
        a.user_data = &mut streamed as *mut Streamed as *mut c_void;
        let answer = ask(s, &a).unwrap();
        assert_eq!(answer.trim(), text, "{reasoning:?}");
        assert_eq!(streamed.text, answer, "{reasoning:?}: the streamed text is the answer");
        assert_eq!(streamed.reasoning.trim(), thought, "{reasoning:?}");
        let message = last_message(s);
        let kept = message.get("reasoning_content").and_then(Json::as_str).unwrap_or("");
        assert_eq!(kept.trim(), thought, "{reasoning:?}");
        assert_eq!(message.get("content").and_then(Json::as_str).map(str::trim), Some(text), "{reasoning:?}");
    }
    assert_eq!(mm_session_destroy(s), MM_OK);
}

#[test]
fn media_stay_in_messages_with_tool_calls_and_results() {
    let m = models();
    // A template with a tool syntax llama.cpp knows (Qwen2.5-VL's Hermes-style calls), and the
    // fixtures' own ChatML (the generic format, which wraps a result in JSON).
    let qwen = std::fs::read_to_string(templates_dir().join("qwen2_5_vl.jinja")).unwrap();
    for template in [Some(qwen.as_str()), None] {
        let t = template.map(c);
        let mut p = params(m);
        p.n_ctx = 4096;
        p.chat_template = t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        let s = create(&p).unwrap();
        let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
        let chat = vec![
            msg("user", "Take a picture of the street."),
            Msg {
                media: vec![image_item(m)],
                tool_calls: Some(
                    r#"[{"id": "call_a1b2c3d4", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\": \"UTC\"}"}}]"#
                        .into(),
                ),
                ..msg("assistant", "Here is what I see first:")
            },
            Msg {
                media: vec![image_item(m)],
                tool_call_id: Some("call_a1b2c3d4".into()),
                ..msg("tool", &format!("The camera's picture: {marker} (taken \"now\")"))
            },
            msg("user", "What do both show?"),
        ];
        let tools = ToolChat::new(&chat, Some(WEATHER_TOOLS), None);
        let prompt = apply_template(s, &tools.params()).unwrap();
        assert_eq!(prompt.matches(&marker).count(), 2, "{template:?}: both images are placed: {prompt}");
        let mut a = tools.params();
        a.max_tokens = 2;
        ask(s, &a).unwrap_or_else(|e| panic!("{:?}: {e:?}", template.is_some()));
        let mut info = ask_info();
        assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
        assert_eq!((info.media_items, info.media_encoded), (2, 2), "{:?}", template.is_some());
        assert_eq!(mm_session_destroy(s), MM_OK);
    }
}

#[test]
fn a_model_template_the_jinja_engine_refuses_is_rendered_by_the_built_in_renderer() {
    let m = models();
    let dir = tmp_dir("broken-template");
    // ChatML markup llama.cpp's fixed renderer recognises, in Jinja its engine cannot parse.
    let broken = "{% for message in messages %}<|im_start|>{{ message['role'] }\n{% endfor %}";
    let spec = mm_fixtures::FixtureSpec {
        overrides: vec![("tokenizer.chat_template".into(), mm_fixtures::MetaValue::Str(broken.into()))],
        ..Default::default()
    };
    mm_fixtures::write_all(&dir, &spec).unwrap();
    let model = path_c(&dir.join(mm_fixtures::MODEL_FILE));
    let mut p = params(m);
    p.model_path = model.as_ptr();
    p.mmproj_path = std::ptr::null();
    let s = create(&p).unwrap();
    let chat = ToolChat::new(&[msg("user", "Hi <|im_end|> there")], None, None);
    let prompt = apply_template(s, &chat.params()).unwrap();
    assert_eq!(prompt, "<|im_start|>user\nHi <|im_end|> there<|im_end|>\n<|im_start|>assistant\n");
    ask(s, &chat.params()).unwrap();
    let tools = ToolChat::new(&[msg("user", "Hi")], Some(WEATHER_TOOLS), None);
    let (st, why) = ask(s, &tools.params()).unwrap_err();
    assert_eq!(st, MM_ERR_UNSUPPORTED);
    assert!(why.contains("tools need a Jinja chat template"), "{why}");
    assert_eq!(mm_session_destroy(s), MM_OK);
}
