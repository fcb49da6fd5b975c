//! How long the library takes to refuse (or answer) the worst inputs outside testers found, on
//! the tiny generated pair through the C API: `make bench-refusals`. Each line gives the case,
//! the seconds it took, the status, and whether it met the goal of an answer within 1 s for an
//! input of up to 1 MB. It never fails: timings depend on the machine and its load (the tests
//! check what each case answers, not when).

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::time::Instant;

use ::mm_session::ask::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use mm_fixtures::{self as fixtures, FixtureSpec};

/// The goal: every input of up to 1 MB answered within this many seconds.
const GOAL_S: f64 = 1.0;

struct Case {
    name: &'static str,
    seconds: f64,
    status: mm_status,
}

fn timed(name: &'static str, call: impl FnOnce() -> mm_status) -> Case {
    let started = Instant::now();
    let status = call();
    Case { name, seconds: started.elapsed().as_secs_f64(), status }
}

fn c(text: &str) -> CString {
    CString::new(text).expect("no NUL")
}

/// Asks `s` with `a`, freeing the answer; the status.
fn ask(s: *mut mm_session, a: &mm_ask_params) -> mm_status {
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: `s` is a live session and `a` points to valid params for the call.
    let status = unsafe { mm_session_ask(s, a, &mut out) };
    // SAFETY: NULL or a string the library allocated.
    unsafe { mm_string_free(out) };
    status
}

fn grammar_case(s: *mut mm_session, name: &'static str, grammar: String) -> Case {
    let (prompt, grammar) = (c("hello"), c(&grammar));
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.grammar = grammar.as_ptr();
    a.max_tokens = 4;
    timed(name, || ask(s, &a))
}

fn main() {
    let dir =
        PathBuf::from(std::env::var("MM_BENCH_DIR").unwrap_or_else(|_| "build/bench-fixtures".into())).join("refusals");
    fixtures::write_all(&dir, &FixtureSpec::default()).expect("fixtures");
    let model = c(&dir.join(fixtures::MODEL_FILE).to_string_lossy());
    let mut p = mm_session_params_default();
    p.model_path = model.as_ptr();
    p.n_threads = 1;
    p.n_ctx = 2048;
    let mut s = std::ptr::null_mut();
    // SAFETY: valid params and an out pointer.
    assert_eq!(unsafe { mm_session_create(&p, &mut s) }, mm_status::MM_OK, "the tiny model loads");

    let mut cases = Vec::new();
    let parens = 30_000;
    cases.push(grammar_case(s, "grammar: 30,000 nested parentheses (60 KB)", {
        format!("root ::= {}\"a\"{}", "(".repeat(parens), ")".repeat(parens))
    }));
    cases.push(grammar_case(s, "grammar: a chain of 20,000 rules", {
        let rules: Vec<String> = (0..20_000).map(|i| format!("r{i} ::= r{}", i + 1)).collect();
        format!("root ::= r0\n{}\nr20000 ::= \"a\"", rules.join("\n"))
    }));
    cases.push(grammar_case(s, "grammar: left recursion behind an optional symbol", {
        "root ::= x root \"a\" | \"b\"\nx ::= \"c\"?".into()
    }));
    cases.push(grammar_case(s, "grammar: 1 MB of alternatives", {
        let mut g = String::from("root ::= \"w0\"");
        for i in 1.. {
            if g.len() >= 1 << 20 {
                break;
            }
            g.push_str(&format!(" | \"w{i}\""));
        }
        g
    }));
    let (prompt, control) = (c("hello"), c(&"<|im_start|>".repeat((1 << 20) / 12)));
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 2;
    a.penalty_last_n = i32::MAX;
    a.dry_penalty_last_n = i32::MAX;
    a.dry_multiplier = 0.8;
    cases.push(timed("penalty windows of INT32_MAX (answered)", || ask(s, &a)));
    let mut raw = mm_ask_params_default();
    raw.prompt = control.as_ptr();
    raw.max_tokens = 1;
    cases.push(timed("raw prompt: 1 MB of <|im_start|>", || ask(s, &raw)));
    let mut tokens = vec![0i32; 1 << 20];
    let mut n = 0usize;
    cases.push(timed("tokenize with parse_special: 1 MB of <|im_start|>", || {
        // SAFETY: the text is NUL-terminated; `tokens` has room for `tokens.len()` ids.
        unsafe { mm_session_tokenize(s, control.as_ptr(), true, tokens.as_mut_ptr(), tokens.len(), &mut n) }
    }));
    let plain = c(&"word ".repeat((10 << 20) / 5));
    let mut long = mm_ask_params_default();
    long.prompt = plain.as_ptr();
    cases.push(timed("raw prompt: 10 MB of plain words", || ask(s, &long)));
    let (roles, texts) = (["system", "user", "assistant"].map(c), ["Be brief.", "Hi?", "Hello."].map(c));
    let messages: Vec<mm_message> = (0..6_001)
        .map(|i| {
            let k = if i == 0 { 0 } else { 1 + (i + 1) % 2 };
            mm_message { role: roles[k].as_ptr(), text: texts[k].as_ptr(), media: std::ptr::null(), n_media: 0 }
        })
        .collect();
    let mut chat = mm_ask_params_default();
    chat.messages = messages.as_ptr();
    chat.n_messages = messages.len();
    chat.overflow = mm_overflow::MM_OVERFLOW_DROP_OLDEST as i32;
    chat.max_tokens = 2;
    cases.push(timed("chat: 6,001 short messages, oldest dropped (answered)", || ask(s, &chat)));
    mm_session_destroy(s);
    let mut huge = p;
    huge.n_ctx = 1 << 28;
    cases.push(timed("create: n_ctx 2^28", || {
        let mut out = std::ptr::null_mut();
        // SAFETY: valid params and an out pointer.
        unsafe { mm_session_create(&huge, &mut out) }
    }));

    println!("{:<58} {:>9}  {:<28} goal", "case", "seconds", "status");
    for case in &cases {
        // SAFETY: mm_status_str returns a static NUL-terminated string.
        let status = unsafe { CStr::from_ptr(mm_status_str(case.status as i32)) }.to_string_lossy();
        let verdict = if case.seconds <= GOAL_S { "met" } else { "missed" };
        println!("{:<58} {:>9.3}  {:<28} {verdict}", case.name, case.seconds, status);
    }
    println!("goal: every input of up to 1 MB answered within {GOAL_S} s");
}
