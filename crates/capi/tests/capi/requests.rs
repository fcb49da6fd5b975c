//! What a request can say beyond the prompt: penalties, typical-p and DRY, logit bias and
//! tokenizing, JSON Schemas, token log-probabilities, usage counts, and exact stop reasons
//! with all of them, through the C API on the random-weight fixtures.

use std::ffi::{c_void, CStr, CString};

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;

/// One generated token as `on_token` reported it.
#[derive(Clone, Debug)]
struct Reported {
    token: i32,
    logprob: f32,
    text: Vec<u8>,
    top: Vec<(i32, f32, Vec<u8>)>,
}

unsafe extern "C" fn collect(
    user_data: *mut c_void,
    chosen: *const mm_token_logprob,
    top: *const mm_token_logprob,
    n_top: usize,
) {
    let out = &mut *(user_data as *mut Vec<Reported>);
    let bytes = |t: &mm_token_logprob| std::slice::from_raw_parts(t.text as *const u8, t.len).to_vec();
    let c = &*chosen;
    let top = if n_top == 0 { &[][..] } else { std::slice::from_raw_parts(top, n_top) };
    out.push(Reported {
        token: c.token,
        logprob: c.logprob,
        text: bytes(c),
        top: top.iter().map(|t| (t.token, t.logprob, bytes(t))).collect(),
    });
}

/// An answer: its text, the tokens `on_token` saw, and the request's figures.
struct Answer {
    text: String,
    tokens: Vec<Reported>,
    info: mm_ask_info,
}

impl Answer {
    fn ids(&self) -> Vec<i32> {
        self.tokens.iter().map(|t| t.token).collect()
    }
}

fn answer(s: *mut mm_session, a: &mm_ask_params) -> Answer {
    try_answer(s, a).unwrap_or_else(|(st, msg)| panic!("{st:?}: {msg}"))
}

fn try_answer(s: *mut mm_session, a: &mm_ask_params) -> Result<Answer, (mm_status, String)> {
    let mut tokens: Vec<Reported> = Vec::new();
    let mut a = *a;
    a.on_token = Some(collect);
    a.user_data = &mut tokens as *mut Vec<Reported> as *mut c_void;
    let text = ask(s, &a)?;
    let mut info = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, mm_status::MM_OK);
    Ok(Answer { text, tokens, info })
}

fn tokenize(s: *mut mm_session, text: &str, parse_special: bool) -> Vec<i32> {
    let text = CString::new(text).unwrap();
    let mut n = 0usize;
    assert_eq!(
        unsafe { mm_session_tokenize(s, text.as_ptr(), parse_special, std::ptr::null_mut(), 0, &mut n) },
        mm_status::MM_OK,
        "{}",
        last_error()
    );
    let mut tokens = vec![-1; n];
    let mut again = 0usize;
    assert_eq!(
        unsafe { mm_session_tokenize(s, text.as_ptr(), parse_special, tokens.as_mut_ptr(), n, &mut again) },
        mm_status::MM_OK
    );
    assert_eq!(again, n);
    tokens
}

/// The shortest distance from a token at `from..` back to the same token earlier in `ids`, if
/// any comes again.
fn closest_repeat(ids: &[i32], from: usize) -> Option<usize> {
    let mut last = std::collections::HashMap::new();
    ids.iter().enumerate().filter_map(|(i, id)| last.insert(*id, i).filter(|_| i >= from).map(|j| i - j)).min()
}

fn greedy(prompt: &CString, max_tokens: i32) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.temperature = 0.0;
    a.max_tokens = max_tokens;
    a
}

fn text_session() -> *mut mm_session {
    let m = models();
    let mut p = params(m);
    p.mmproj_path = std::ptr::null();
    p.n_ctx = 2048;
    create(&p).unwrap()
}

/// The schema of the JSON Schema test: a string, an integer in a range, an enum and an array.
const FORM_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 12},
    "age": {"type": "integer", "minimum": 18, "maximum": 99},
    "colour": {"enum": ["red", "green", "blue"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "minItems": 1, "maxItems": 3}
  },
  "required": ["name", "age", "colour", "tags"],
  "additionalProperties": false
}"#;

/// Checks `value` against `schema`, for the keywords the tests' schemas use; the error names
/// the path and the rule broken.
fn validate(schema: &serde_json::Value, value: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value;
    let fail = |rule: &str| Err(format!("{path}: {rule} ({value})"));
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return fail("not one of the enum");
        }
    }
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    match schema.get("type").and_then(Value::as_str) {
        None => {}
        Some("object") => {
            let Some(object) = value.as_object() else { return fail("not an object") };
            let properties = schema["properties"].as_object().cloned().unwrap_or_default();
            for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if !object.contains_key(required.as_str().unwrap()) {
                    return fail(&format!("missing {required}"));
                }
            }
            for (key, v) in object {
                match properties.get(key) {
                    Some(sub) => validate(sub, v, &format!("{path}.{key}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return fail(&format!("unexpected key {key}"))
                    }
                    None => {}
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else { return fail("not an array") };
            if count("minItems").is_some_and(|n| (items.len() as u64) < n)
                || count("maxItems").is_some_and(|n| items.len() as u64 > n)
            {
                return fail("item count out of range");
            }
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}[{i}]"))?;
            }
        }
        Some("string") => {
            let Some(text) = value.as_str() else { return fail("not a string") };
            let chars = text.chars().count() as u64;
            if count("minLength").is_some_and(|n| chars < n) || count("maxLength").is_some_and(|n| chars > n) {
                return fail("length out of range");
            }
        }
        Some("integer") => {
            let Some(n) = value.as_i64() else { return fail("not an integer") };
            let bound = |key: &str| schema.get(key).and_then(Value::as_i64);
            if bound("minimum").is_some_and(|m| n < m) || bound("maximum").is_some_and(|m| n > m) {
                return fail("out of range");
            }
        }
        Some(other) => panic!("the test validator does not know type {other}"),
    }
    Ok(())
}

#[test]
fn the_validator_refuses_what_the_schema_forbids() {
    let schema: serde_json::Value = serde_json::from_str(FORM_SCHEMA).unwrap();
    let good = serde_json::json!({"name": "Ann", "age": 30, "colour": "red", "tags": ["x"]});
    assert_eq!(validate(&schema, &good, "$"), Ok(()));
    for (change, value) in [
        ("name", serde_json::json!("a name of 13 c")),
        ("name", serde_json::json!("")),
        ("age", serde_json::json!(17)),
        ("age", serde_json::json!(100)),
        ("age", serde_json::json!(30.5)),
        ("colour", serde_json::json!("pink")),
        ("tags", serde_json::json!([])),
        ("tags", serde_json::json!(["a", "b", "c", "d"])),
        ("tags", serde_json::json!(["123456789"])),
        ("extra", serde_json::json!(1)),
    ] {
        let mut bad = good.clone();
        bad[change] = value;
        assert!(validate(&schema, &bad, "$").is_err(), "{bad}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("tags");
    assert!(validate(&schema, &missing, "$").is_err());
}

const LOOP_PROMPT: &str = "The answer is";

#[test]
fn penalties_break_a_greedy_loop() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let prompt_ids = tokenize(s, LOOP_PROMPT, true);
    let plain = answer(s, &greedy(&prompt, 60));
    assert!(
        closest_repeat(&plain.ids(), 0).is_some_and(|d| d <= 3),
        "greedy decoding of random weights loops: {:?}",
        plain.ids()
    );
    // Presence and frequency penalties far above any logit: no token seen in the window
    // (the whole context: the prompt, then the answer) comes again.
    for (name, presence, frequency) in [("presence", 100.0, 0.0), ("frequency", 0.0, 100.0)] {
        let mut a = greedy(&prompt, 60);
        a.presence_penalty = presence;
        a.frequency_penalty = frequency;
        a.penalty_last_n = -1;
        let all = [&prompt_ids[..], &answer(s, &a).ids()].concat();
        assert_eq!(closest_repeat(&all, prompt_ids.len()), None, "{name}: {all:?}");
    }
    // A repeat penalty divides the logits of seen tokens: repeats come later, if at all.
    let mut a = greedy(&prompt, 60);
    a.repeat_penalty = 1.3;
    let penalised = answer(s, &a);
    assert_ne!(penalised.text, plain.text);
    assert!(
        closest_repeat(&penalised.ids(), 0).unwrap_or(usize::MAX) > closest_repeat(&plain.ids(), 0).unwrap(),
        "{:?}",
        penalised.ids()
    );
    mm_session_destroy(s);
}

#[test]
fn penalty_window_is_honoured() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let prompt_ids = tokenize(s, LOOP_PROMPT, true);
    let mut a = greedy(&prompt, 60);
    a.presence_penalty = 100.0;
    a.penalty_last_n = 4;
    let all = [&prompt_ids[..], &answer(s, &a).ids()].concat();
    let closest = closest_repeat(&all, prompt_ids.len()).expect("tokens come back once they leave the window");
    assert!(closest > 4, "a token came back within the window of 4: {all:?}");

    // The window holds the prompt's tokens too: a token the bias favours is penalised from the
    // start when the prompt has it, and only after its first time when it does not.
    let q = tokenize(s, "Q", false)[0];
    let favour = [mm_logit_bias { token: q, bias: 50.0 }];
    let first_q = |prompt: &str| {
        let prompt = CString::new(prompt).unwrap();
        let mut a = greedy(&prompt, 20);
        a.presence_penalty = 100.0;
        a.penalty_last_n = -1;
        a.logit_bias = favour.as_ptr();
        a.n_logit_bias = 1;
        answer(s, &a).ids().iter().position(|&t| t == q)
    };
    assert_eq!(first_q("The answer is"), Some(0));
    assert_eq!(first_q("The answer is Q"), None);
    mm_session_destroy(s);
}

/// Tokens of the fixture's byte-level vocabulary that are DRY's sequence breakers.
const DRY_BREAKER_TOKENS: [i32; 4] = [b'\n' as i32, b':' as i32, b'"' as i32, b'*' as i32];

/// A run of `n` tokens without a sequence breaker that appears twice in `ids`, if any.
fn repeated_run(ids: &[i32], n: usize) -> Option<&[i32]> {
    let mut seen = std::collections::HashSet::new();
    ids.windows(n).filter(|w| !w.iter().any(|t| DRY_BREAKER_TOKENS.contains(t))).find(|w| !seen.insert(*w))
}

#[test]
fn dry_stops_repeated_sequences() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let prompt_ids = tokenize(s, LOOP_PROMPT, true);
    let plain = [&prompt_ids[..], &answer(s, &greedy(&prompt, 60)).ids()].concat();
    assert!(repeated_run(&plain, 3).is_some(), "the greedy loop repeats runs of 3: {plain:?}");
    let mut a = greedy(&prompt, 60);
    a.dry_multiplier = 100.0;
    a.dry_allowed_length = 2;
    let dry = [prompt_ids, answer(s, &a).ids()].concat();
    assert_eq!(repeated_run(&dry, 3), None, "a run longer than dry_allowed_length came again: {dry:?}");
    mm_session_destroy(s);
}

#[test]
fn typical_p_keeps_the_most_typical_token() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let texts = |typical_p: f32| -> std::collections::HashSet<String> {
        (0..5)
            .map(|seed| {
                let mut a = mm_ask_params_default();
                a.prompt = prompt.as_ptr();
                a.max_tokens = 20;
                a.temperature = 1.0;
                a.seed = seed;
                a.typical_p = typical_p;
                answer(s, &a).text
            })
            .collect()
    };
    assert!(texts(1.0).len() > 1, "seeds give different answers");
    assert_eq!(texts(0.001).len(), 1, "a tiny typical_p leaves one token: every seed gives the same answer");
    mm_session_destroy(s);
}

#[test]
fn logit_bias_forces_and_bans_tokens() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let q = tokenize(s, "Q", false);
    assert_eq!(q.len(), 1);
    let force = [mm_logit_bias { token: q[0], bias: 100.0 }];
    let mut a = greedy(&prompt, 6);
    a.logit_bias = force.as_ptr();
    a.n_logit_bias = 1;
    let forced = answer(s, &a);
    assert_eq!(forced.text, "QQQQQQ");
    assert_eq!(forced.info.stop_reason, mm_stop_reason::MM_STOP_MAX_TOKENS as i32);

    // The plain greedy answer's most frequent token, banned, never comes.
    let plain = answer(s, &greedy(&prompt, 60)).ids();
    let loop_token = *plain.iter().max_by_key(|t| plain.iter().filter(|u| u == t).count()).unwrap();
    let ban = [mm_logit_bias { token: loop_token, bias: f32::NEG_INFINITY }];
    let mut a = greedy(&prompt, 60);
    a.logit_bias = ban.as_ptr();
    a.n_logit_bias = 1;
    let banned = answer(s, &a).ids();
    assert_ne!(banned, plain);
    assert!(!banned.contains(&loop_token), "{loop_token} in {banned:?}");

    // At a temperature, too.
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 8;
    a.temperature = 1.0;
    a.logit_bias = force.as_ptr();
    a.n_logit_bias = 1;
    assert_eq!(answer(s, &a).text, "QQQQQQQQ");
    mm_session_destroy(s);
}

#[test]
fn biased_end_of_generation_stops_exactly() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let eog = tokenize(s, "<|im_end|>", true);
    assert_eq!(eog.len(), 1, "parse_special makes the control token's text one token");
    assert!(tokenize(s, "<|im_end|>", false).len() > 1, "without parse_special it is plain text");
    let end = [mm_logit_bias { token: eog[0], bias: 100.0 }];
    let mut a = greedy(&prompt, 20);
    a.logit_bias = end.as_ptr();
    a.n_logit_bias = 1;
    let r = answer(s, &a);
    assert_eq!(
        (r.text.as_str(), r.info.stop_reason, r.info.tokens_generated, r.tokens.len()),
        ("", mm_stop_reason::MM_STOP_EOG as i32, 0, 0)
    );

    // Inside a constrained answer: the grammar holds the end back until it allows one.
    let grammar = CString::new("root ::= \"ab\"+").unwrap();
    a.grammar = grammar.as_ptr();
    let r = answer(s, &a);
    assert_eq!(
        (r.text.as_str(), r.info.stop_reason, r.info.tokens_generated),
        ("ab", mm_stop_reason::MM_STOP_EOG as i32, 2)
    );
    mm_session_destroy(s);
}

fn form_params(prompt: &CString, schema: &CString, seed: u32) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.json_schema = schema.as_ptr();
    a.max_tokens = 1000;
    a.temperature = 1.0;
    a.seed = seed;
    a
}

#[test]
fn json_schema_answers_from_random_weights_validate() {
    let s = text_session();
    let prompt = CString::new("Fill in the form:").unwrap();
    let schema_text = CString::new(FORM_SCHEMA).unwrap();
    let schema: serde_json::Value = serde_json::from_str(FORM_SCHEMA).unwrap();
    let mut failures = Vec::new();
    for seed in 0..50 {
        let r = answer(s, &form_params(&prompt, &schema_text, seed));
        assert_eq!(
            r.info.stop_reason,
            mm_stop_reason::MM_STOP_EOG as i32,
            "seed {seed}: the grammar ends the answer: {:?}",
            r.text
        );
        let checked = serde_json::from_str::<serde_json::Value>(&r.text)
            .map_err(|e| e.to_string())
            .and_then(|v| validate(&schema, &v, "$"));
        if let Err(e) = checked {
            failures.push(format!("seed {seed}: {e}: {:?}", r.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    mm_session_destroy(s);
}

/// Schemas whose grammars nest repetitions 4 deep (an array of strings: the array, a string's
/// characters, an escape's 4 hex digits) were refused by a bound on nesting depth; the bound on
/// the sampler's steps takes them. Each answer that ends is valid JSON of the schema's kind.
#[test]
fn json_schemas_of_arrays_and_free_objects_are_taken() {
    let s = text_session();
    let prompt = CString::new("List some:").unwrap();
    for (schema, kind) in [
        (r#"{"type": "array", "items": {"type": "string"}}"#, "array"),
        (r#"{"type": "object"}"#, "object"),
        (
            r#"{"type": "array", "items": {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}}}"#,
            "array",
        ),
    ] {
        let schema = CString::new(schema).unwrap();
        for seed in 0..5 {
            let mut a = form_params(&prompt, &schema, seed);
            a.max_tokens = 200;
            let r = answer(s, &a);
            if r.info.stop_reason == mm_stop_reason::MM_STOP_EOG as i32 {
                let v: serde_json::Value = serde_json::from_str(&r.text)
                    .unwrap_or_else(|e| panic!("{schema:?} seed {seed}: {e}: {:?}", r.text));
                assert!(if kind == "array" { v.is_array() } else { v.is_object() }, "{schema:?} seed {seed}: {v}");
            }
        }
    }
    mm_session_destroy(s);
}

#[test]
fn stop_strings_and_max_tokens_inside_a_json_schema_answer() {
    let s = text_session();
    let prompt = CString::new("Fill in the form:").unwrap();
    let schema = CString::new(FORM_SCHEMA).unwrap();
    let whole = answer(s, &form_params(&prompt, &schema, 3));
    let at = whole.text.find("\"age\"").expect("the form has an age");
    let stop = CString::new("\"age\"").unwrap();
    let stops = [stop.as_ptr()];
    let mut a = form_params(&prompt, &schema, 3);
    a.stop = stops.as_ptr();
    a.n_stop = 1;
    let cut = answer(s, &a);
    assert_eq!(cut.text, whole.text[..at], "the same answer, cut before the stop string");
    assert_eq!(cut.info.stop_reason, mm_stop_reason::MM_STOP_STRING as i32);
    assert_eq!(cut.info.tokens_generated as usize, cut.tokens.len());
    assert!(cut.tokens.len() < whole.tokens.len());

    let mut a = form_params(&prompt, &schema, 3);
    a.max_tokens = 10;
    let short = answer(s, &a);
    assert_eq!(short.info.stop_reason, mm_stop_reason::MM_STOP_MAX_TOKENS as i32);
    assert_eq!(short.info.tokens_generated, 10);
    assert!(whole.text.starts_with(&short.text), "{:?} / {:?}", short.text, whole.text);
    mm_session_destroy(s);
}

/// The answer's text as the text stream makes it from token bytes.
fn as_streamed(tokens: &[Reported]) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.text.iter().copied()).collect();
    String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}")
}

#[test]
fn log_probabilities_are_the_models_own() {
    let s = text_session();
    let prompt = CString::new(LOOP_PROMPT).unwrap();
    let mut a = greedy(&prompt, 30);
    a.n_probs = 5;
    let r = answer(s, &a);
    assert_eq!(r.tokens.len(), r.info.tokens_generated as usize);
    assert_eq!(as_streamed(&r.tokens), r.text, "the tokens' texts make the answer");
    for t in &r.tokens {
        assert_eq!(t.top.len(), 5);
        assert!(t.top.windows(2).all(|w| w[0].1 >= w[1].1), "most likely first: {:?}", t.top);
        let sum: f64 = t.top.iter().map(|e| (e.1 as f64).exp()).sum();
        assert!(sum <= 1.0 + 1e-6, "top-5 probabilities sum to {sum}");
        assert_eq!(
            (t.top[0].0, t.top[0].1, &t.top[0].2),
            (t.token, t.logprob, &t.text),
            "greedy picks the most likely token"
        );
        assert!(t.logprob < 0.0);
    }

    // The whole vocabulary: the probabilities sum to 1, and the sampled token's is among them.
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 30;
    a.temperature = 1.5;
    a.seed = 11;
    a.n_probs = 100_000;
    let r = answer(s, &a);
    let mut off_top = 0;
    for t in &r.tokens {
        assert_eq!(t.top.len(), 265, "n_probs beyond the vocabulary gives all of it");
        let sum: f64 = t.top.iter().map(|e| (e.1 as f64).exp()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "all probabilities sum to {sum}");
        let rank = t.top.iter().position(|e| e.0 == t.token).unwrap();
        assert_eq!(t.top[rank].1, t.logprob);
        off_top += (rank > 0) as usize;
    }
    assert!(off_top > 0, "at temperature 1.5 some tokens are not the most likely");

    // Reported before the logit bias: a forced token keeps the model's own log-probability.
    let q = tokenize(s, "Q", false)[0];
    let force = [mm_logit_bias { token: q, bias: 100.0 }];
    let mut a = greedy(&prompt, 1);
    a.logit_bias = force.as_ptr();
    a.n_logit_bias = 1;
    a.n_probs = 100_000;
    let forced = answer(s, &a);
    let unbiased = r.tokens[0].top.iter().find(|e| e.0 == q).unwrap().1;
    assert_eq!(forced.tokens[0].token, q);
    assert_eq!(forced.tokens[0].logprob, unbiased, "the model's own figure, not the biased one");
    assert_ne!(forced.tokens[0].top[0].0, q, "and Q is not the model's favourite");
    mm_session_destroy(s);
}

#[test]
fn usage_counts_match_the_prompt() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
    let pieces = ["Compare ", " and ", " now."];
    let prompt = CString::new(pieces.join(&marker)).unwrap();
    let media = [image_item(m), image_item(m)];
    let mut a = greedy(&prompt, 7);
    a.media = media.as_ptr();
    a.n_media = 2;
    let r = answer(s, &a);
    let text_tokens: usize = pieces.iter().map(|p| tokenize(s, p, true).len()).sum();
    let i = r.info;
    assert_eq!(i.prompt_tokens as usize, text_tokens);
    // The fixture's projector: a 32 px image in 8 px patches, 16 embeddings at 16 positions.
    assert_eq!((i.media_items, i.media_tokens, i.media_positions), (2, 32, 32));
    assert_eq!(i.prompt_positions, i.prompt_tokens + i.media_positions);
    let mut counted = 0u32;
    assert_eq!(unsafe { mm_session_count_tokens(s, &a, &mut counted) }, mm_status::MM_OK);
    assert_eq!(counted, i.prompt_positions);
    assert_eq!((i.tokens_generated, r.tokens.len()), (7, 7));

    // Asked again: the same usage, though nothing is evaluated again.
    let again = answer(s, &a).info;
    assert_eq!(
        (again.prompt_tokens, again.media_items, again.media_tokens, again.media_positions),
        (i.prompt_tokens, 2, 32, 32)
    );
    assert_eq!((again.media_encoded, again.positions_reused), (0, i.prompt_positions));
    mm_session_destroy(s);
}

#[test]
fn tokenize_counts_then_fills() {
    let s = text_session();
    let text = CString::new("hello there").unwrap();
    let all = tokenize(s, "hello there", false);
    assert!(all.len() > 3);
    let mut few = [-1i32; 3];
    let mut n = 0usize;
    assert_eq!(unsafe { mm_session_tokenize(s, text.as_ptr(), false, few.as_mut_ptr(), 2, &mut n) }, mm_status::MM_OK);
    assert_eq!(n, all.len(), "the count is the whole count");
    assert_eq!(few, [all[0], all[1], -1], "only capacity tokens are written");
    let empty = CString::new("").unwrap();
    assert_eq!(unsafe { mm_session_tokenize(s, empty.as_ptr(), false, few.as_mut_ptr(), 3, &mut n) }, mm_status::MM_OK);
    assert_eq!(n, 0);
    mm_session_destroy(s);
}

/// llama.cpp's converter recurses once per character of a property name (`std::regex`): a
/// name of 7,000 characters overflowed a 2 MiB stack. It runs on a thread of its own, so even
/// a caller with a small stack gets the largest schema accepted converted.
#[test]
fn json_schema_conversion_does_not_use_the_callers_stack() {
    let s = text_session() as usize;
    let name = "_".repeat(mm_core::JSON_SCHEMA_MAX_BYTES - 100);
    let schema =
        CString::new(format!(r#"{{"type": "object", "properties": {{"{name}": {{"type": "integer"}}}}}}"#)).unwrap();
    let small_stack = std::thread::Builder::new().stack_size(256 << 10).spawn(move || {
        let prompt = CString::new("x").unwrap();
        let mut a = greedy(&prompt, 3);
        a.json_schema = schema.as_ptr();
        ask(s as *mut mm_session, &a).map(|_| ())
    });
    assert_eq!(small_stack.unwrap().join().unwrap(), Ok(()));
    mm_session_destroy(s as *mut mm_session);
}
