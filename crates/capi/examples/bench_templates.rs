//! `make bench-templates`: what rendering a chat costs, against llama.cpp's own render.
//!
//! For the model's own template and each template of tests/capi/templates (six vision families
//! and a thinking model), a four-message chat (system, user, assistant, user) without tools and
//! with two tools:
//!
//! - mm: `mm_session_apply_template` on a session created with the template: what every chat
//!   request renders (the chat with placeholders and with its texts, two runs of llama.cpp's chat
//!   layer, each on a thread with a large stack).
//! - llama: one `common_chat_templates_apply` on the same chat (what llama-server runs per
//!   request), through the shim.
//!
//! Medians of `RUNS` renders each:
//!
//! ```text
//! template=NAME tools=0|2 mm_ms=X llama_ms=Y ratio=X/Y
//! goal: ...
//! ```
//!
//! The model: `MM_TEST_MODEL` when set (its vocabulary gives the templates' BOS and EOS), else
//! the tiny fixture pair's text model (under `MM_BENCH_DIR`).

use std::ffi::{CStr, CString};
use std::path::Path;

use ::mm_session::ask::*;

#[path = "../tests/capi/common/llama_chat.rs"]
mod llama_chat;
mod support;

use llama_chat::{q, LlamaChat};
use support::*;

const RUNS: usize = 30;

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "get_time", "description": "The time in a zone.", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}]"#;

const CHAT: [(&str, &str); 4] = [
    ("system", "You are a helpful assistant."),
    ("user", "Hello there, how are you today?"),
    ("assistant", "Fine, thanks. How can I help?"),
    ("user", "What is the weather like in Oslo?"),
];

fn main() {
    quiet();
    let model = real_model().unwrap_or_else(|| Fixtures::write(&fixture_dir()).tiny.model);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/capi/templates");
    let mut templates: Vec<(String, Option<String>)> = vec![("(model's own)".into(), None)];
    let mut files: Vec<_> = ["", "reasoning"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jinja"))
        .collect();
    files.sort();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        templates.push((name, Some(std::fs::read_to_string(&f).unwrap())));
    }
    let strings: Vec<(CString, CString)> = CHAT.iter().map(|(r, t)| (c(r), c(t))).collect();
    let messages: Vec<mm_message> = strings
        .iter()
        .map(|(r, t)| mm_message { role: r.as_ptr(), text: t.as_ptr(), media: std::ptr::null(), n_media: 0 })
        .collect();
    let tools = c(TOOLS);
    let mut ratios = Vec::new();
    for (name, template) in &templates {
        let text = template.as_deref().map(c);
        let mut p = session_params(&model, None, 4096);
        p.chat_template = text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        let s = create(&p);
        let reference = LlamaChat::new(&model, template.as_deref());
        for with_tools in [false, true] {
            let mut a = mm_ask_params_default();
            a.messages = messages.as_ptr();
            a.n_messages = messages.len();
            if with_tools {
                a.tools = tools.as_ptr();
            }
            let request = request_json(with_tools);
            if reference.render(&request).is_err() {
                println!("template={name} tools={} refused by llama.cpp's chat layer too", 2 * with_tools as u8);
                continue;
            }
            let mm = median(&mut (0..RUNS).map(|_| time(|| apply_template(s, &a))).collect::<Vec<_>>());
            let llama = median(
                &mut (0..RUNS)
                    .map(|_| {
                        time(|| {
                            reference.render(&request).unwrap();
                        })
                    })
                    .collect::<Vec<_>>(),
            );
            ratios.push(mm / llama);
            println!(
                "template={name} tools={} mm_ms={mm:.2} llama_ms={llama:.2} ratio={:.2}",
                2 * with_tools as u8,
                mm / llama
            );
        }
        destroy(s);
    }
    println!(
        "goal: a chat costs two of llama.cpp's renders (ratio about 2, at most 2.5: the texts' render is llama.cpp's own, the placeholders' render finds the markup); ratios {:.2} to {:.2}",
        ratios.iter().cloned().fold(f64::INFINITY, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max)
    );
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// The chat as the shim's request JSON, as the library sends it with the texts in place.
fn request_json(with_tools: bool) -> String {
    let messages: Vec<String> =
        CHAT.iter().map(|(r, t)| format!("{{\"role\":{},\"content\":{}}}", q(r), q(t))).collect();
    let tools = if with_tools {
        format!(",\"tools_json\":{},\"tool_choice\":\"auto\",\"parallel_tool_calls\":false", q(TOOLS))
    } else {
        String::new()
    };
    format!("{{\"messages\":[{}]{tools},\"reasoning\":true,\"enable_thinking\":true}}", messages.join(","))
}

fn apply_template(s: *mut ::mm_session::session::mm_session, a: &mm_ask_params) {
    let mut out = std::ptr::null_mut();
    // SAFETY: the session is live, `a` and what it points to outlive the call; the text is
    // freed once.
    unsafe {
        assert_eq!(
            mm_session_apply_template(s, a, &mut out),
            ::mm_session::status::mm_status::MM_OK,
            "{}",
            last_error()
        );
        assert!(!CStr::from_ptr(out).to_bytes().is_empty());
        ::mm_session::library::mm_string_free(out);
    }
}

fn time(f: impl FnOnce()) -> f64 {
    let start = clock_ms();
    f();
    clock_ms() - start
}
