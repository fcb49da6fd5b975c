//! Sessions that decode together (`n_parallel`): a session and its forks share one context, and
//! requests that run at the same time are evaluated in shared steps. Each session's answers,
//! cache, cancel, state and destroy stay its own.

use std::sync::Barrier;
use std::thread;

use crate::common::*;
use crate::media::{expect, greedy, pair, Image, QUESTION};
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::state::*;
use ::mm_session::status::mm_status::{self, *};
use mm_fixtures::seeing::COLOURS;

/// A session handle that may cross threads (the library locks each session itself).
#[derive(Clone, Copy)]
struct Handle(usize);

impl Handle {
    fn get(self) -> *mut mm_session {
        self.0 as *mut mm_session
    }
}

fn fork(s: *mut mm_session, copy: bool) -> *mut mm_session {
    let mut p = mm_fork_params_default();
    p.copy_conversation = copy;
    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(s, &p, &mut out) }, MM_OK, "{}", last_error());
    out
}

fn info(s: *mut mm_session) -> mm_session_info {
    let mut i: mm_session_info = unsafe { std::mem::zeroed() };
    i.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    assert_eq!(unsafe { mm_session_get_info(s, &mut i) }, MM_OK, "{}", last_error());
    i
}

fn last(s: *mut mm_session) -> mm_ask_info {
    let mut i = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut i) }, MM_OK);
    i
}

/// The seeing pair with `n_parallel` slots.
fn seeing(n_parallel: u32) -> *mut mm_session {
    let p = pair();
    let mut params = mm_session_params_default();
    params.model_path = p.model.as_ptr();
    params.mmproj_path = p.mmproj.as_ptr();
    params.n_ctx = 512;
    params.n_threads = 1;
    params.n_parallel = n_parallel;
    create(&params).expect("create")
}

/// The parent and `n - 1` forks of it.
fn group(parent: *mut mm_session, n: usize) -> Vec<Handle> {
    let mut all = vec![Handle(parent as usize)];
    all.extend((1..n).map(|_| Handle(fork(parent, false) as usize)));
    all
}

fn destroy_all(sessions: &[Handle]) {
    for s in sessions {
        assert_eq!(mm_session_destroy(s.get()), MM_OK);
    }
}

/// Runs `f(i, session)` for every session at once, one thread each, started together.
fn at_once<T: Send>(sessions: &[Handle], f: impl Fn(usize, Handle) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(sessions.len());
    thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let (start, f) = (&start, &f);
                scope.spawn(move || {
                    start.wait();
                    f(i, s)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

#[test]
fn eight_sessions_asked_at_once_each_see_their_own_picture() {
    let parent = seeing(8);
    let i = info(parent);
    assert_eq!((i.n_parallel, i.n_ctx), (8, 512));
    let sessions = group(parent, 8);
    assert_eq!(info(sessions[7].get()).n_parallel, 8, "a fork joins its parent's context");
    let mut m = mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(parent, &mut m) }, MM_OK);
    assert_eq!(m.context_shared_by, 8);
    let meet = Meet { barrier: Barrier::new(sessions.len()), met: Default::default() };
    let first = at_once(&sessions, |i, s| {
        let image = Image::colour_file(colour(i));
        let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
        // All eight meet at their first piece: the colour token of each is then evaluated in
        // one shared step, and each samples its end from its own logits.
        let data = (&meet, std::sync::atomic::AtomicBool::new(false));
        let mut a = chat.on(greedy());
        a.on_text = Some(meet_at_first_piece);
        a.user_data = &data as *const _ as *mut std::ffi::c_void;
        expect(s.get(), &a, colour(i), &format!("session {i}"))
    });
    let together = first.iter().map(|(_, info)| info.most_together).max().unwrap();
    assert!(together > 1, "sessions asked at once shared steps: {:?}", first.iter().map(|f| f.1).collect::<Vec<_>>());
    // Follow-ups: each session's own image, from its own cache.
    let follow = at_once(&sessions, |i, s| {
        let image = Image::colour_file(colour(i));
        let chat = Chat::new(&[
            ("user", QUESTION, vec![image.item]),
            ("assistant", &first[i].0, vec![]),
            ("user", "And now, what colour was it?", vec![]),
        ]);
        expect(s.get(), &chat.on(greedy()), colour(i), &format!("follow-up {i}")).1
    });
    for (i, f) in follow.iter().enumerate() {
        assert_eq!(f.media_encoded, 0, "session {i} answered from its cache: {f:?}");
        assert!(f.positions_reused > 0, "session {i}: {f:?}");
    }
    destroy_all(&sessions);
}

#[test]
fn a_state_saved_mid_batch_answers_in_a_session_of_its_own() {
    let parent = seeing(4);
    let sessions = group(parent, 4);
    let path = tmp_dir("batch-state").join("mid-batch.state");
    let path_c = path_c(&path);
    // Session 0 asks first; its state is saved while the others generate.
    let image0 = Image::colour_file(colour(1));
    let chat0 = Chat::new(&[("user", QUESTION, vec![image0.item])]);
    expect(sessions[0].get(), &chat0.on(greedy()), colour(1), "session 0");
    at_once(&sessions, |i, s| {
        if i == 0 {
            assert_eq!(unsafe { mm_session_save_state(s.get(), path_c.as_ptr()) }, MM_OK, "{}", last_error());
        } else {
            let image = Image::colour_file(colour(i + 1));
            let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
            expect(s.get(), &chat.on(greedy()), colour(i + 1), &format!("session {i}"));
        }
    });
    let alone = crate::media::session();
    assert_eq!(unsafe { mm_session_load_state(alone, path_c.as_ptr()) }, MM_OK, "{}", last_error());
    assert_eq!(info(alone).n_parallel, 1);
    let follow = Chat::new(&[
        ("user", QUESTION, vec![image0.item]),
        ("assistant", colour(1), vec![]),
        ("user", "And now, what colour was it?", vec![]),
    ]);
    let (_, f) = expect(alone, &follow.on(greedy()), colour(1), "the loaded state");
    assert_eq!(f.media_encoded, 0, "{f:?}");
    assert_eq!(mm_session_destroy(alone), MM_OK);
    destroy_all(&sessions);
}

/// Holds each request at its first piece until `meet` requests have reached theirs (the tiny
/// models answer in microseconds: without it, requests started together rarely overlap).
struct Meet {
    barrier: Barrier,
    met: std::sync::atomic::AtomicBool,
}

unsafe extern "C" fn meet_at_first_piece(
    user_data: *mut std::ffi::c_void,
    _t: *const std::os::raw::c_char,
    _n: usize,
) -> bool {
    let meet = unsafe { &*(user_data as *const (&Meet, std::sync::atomic::AtomicBool)) };
    if !meet.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
        meet.0.barrier.wait();
        meet.0.met.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    true
}

/// Greedy answers of `max_tokens` tokens to a prompt of its own per session, asked at once;
/// with `meet`, the requests wait for each other at their first piece.
fn ask_each(sessions: &[Handle], max_tokens: i32, meet: bool) -> Vec<Result<String, (mm_status, String)>> {
    let together = Meet { barrier: Barrier::new(sessions.len()), met: Default::default() };
    let bias = no_end(sessions[0].get());
    at_once(sessions, |i, s| {
        let prompt = c(&format!("Session {i} says {}", "word ".repeat(i + 1)));
        let mut a = prompt_params(&prompt);
        a.max_tokens = max_tokens;
        a.temperature = 0.0;
        a.stop = std::ptr::null();
        a.logit_bias = bias.as_ptr();
        a.n_logit_bias = bias.len();
        let data = (&together, std::sync::atomic::AtomicBool::new(false));
        if meet {
            a.on_text = Some(meet_at_first_piece);
            a.user_data = &data as *const _ as *mut std::ffi::c_void;
        }
        ask(s.get(), &a)
    })
}

#[test]
fn each_session_keeps_its_own_cache_record_and_count() {
    let m = models();
    let mut p = params(m);
    p.n_parallel = 4;
    let parent = create(&p).unwrap();
    let sessions = group(parent, 4);
    let answers = ask_each(&sessions, 12, true);
    let mut together = 0;
    for (i, (s, a)) in sessions.iter().zip(&answers).enumerate() {
        assert!(a.is_ok(), "session {i}: {a:?}");
        let l = last(s.get());
        together = together.max(l.most_together);
        assert_eq!(l.tokens_generated, 12, "session {i}: {l:?}");
        // The cache holds this session's prompt and answer (the last token is not evaluated).
        assert_eq!(info(s.get()).n_past, l.prompt_positions + 11, "session {i}: {l:?}");
        let prompt = c(&format!("Session {i} says {}", "word ".repeat(i + 1)));
        let mut positions = 0u32;
        let a = prompt_params(&prompt);
        assert_eq!(unsafe { mm_session_count_tokens(s.get(), &a, &mut positions) }, MM_OK);
        assert_eq!(positions, l.prompt_positions, "session {i}");
    }
    assert!(together > 1, "the sessions shared steps");
    // Asked again alone, each session reuses its own cached prompt.
    for (i, s) in sessions.iter().enumerate() {
        let prompt = c(&format!("Session {i} says {}", "word ".repeat(i + 1)));
        let mut a = prompt_params(&prompt);
        a.max_tokens = 12;
        a.temperature = 0.0;
        ask(s.get(), &a).unwrap();
        let l = last(s.get());
        assert_eq!(l.positions_reused, l.prompt_positions, "session {i} reused its own prompt: {l:?}");
    }
    destroy_all(&sessions);
}

/// What a text callback of `a_cancelled_or_destroyed_session_leaves_the_others_complete` sees.
struct Watch {
    session: usize,
    pieces: std::sync::atomic::AtomicU32,
    cancel_at: u32,
}

/// Counts pieces; cancels its own session at the `cancel_at`-th (0: never).
unsafe extern "C" fn watch_pieces(
    user_data: *mut std::ffi::c_void,
    _text: *const std::os::raw::c_char,
    _len: usize,
) -> bool {
    let w = unsafe { &*(user_data as *const Watch) };
    let n = w.pieces.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if n == w.cancel_at {
        assert_eq!(mm_session_cancel(w.session as *mut mm_session), MM_OK);
    }
    true
}

/// Biases that ban the random pair's end-of-generation tokens: its answers then run to
/// `max_tokens` whatever the steps' rounding makes of them.
fn no_end(s: *mut mm_session) -> Vec<mm_logit_bias> {
    ["<|endoftext|>", "<|im_end|>"]
        .iter()
        .map(|t| {
            let (text, mut token, mut n) = (c(t), 0i32, 0usize);
            let st = unsafe { mm_session_tokenize(s, text.as_ptr(), true, &mut token, 1, &mut n) };
            assert_eq!((st, n), (MM_OK, 1), "{t}");
            mm_logit_bias { token, bias: f32::NEG_INFINITY }
        })
        .collect()
}

#[test]
fn a_cancelled_or_destroyed_session_leaves_the_others_complete() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let m = models();
    let mut p = params(m);
    p.n_parallel = 4;
    let parent = create(&p).unwrap();
    let sessions = group(parent, 4);
    let bias = no_end(parent);
    let watches: Vec<Watch> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| Watch { session: s.0, pieces: AtomicU32::new(0), cancel_at: if i == 1 { 3 } else { 0 } })
        .collect();
    let results = at_once(&sessions, |i, s| {
        let prompt = c(&format!("Session {i} counts"));
        let mut a = prompt_params(&prompt);
        a.max_tokens = 64;
        a.temperature = 0.0;
        a.on_text = Some(watch_pieces);
        a.user_data = &watches[i] as *const Watch as *mut std::ffi::c_void;
        a.logit_bias = bias.as_ptr();
        a.n_logit_bias = bias.len();
        if i == 2 {
            // Destroyed from another thread once it has generated a few pieces.
            let (victim, watch) = (s, &watches[2]);
            return thread::scope(|scope| {
                let killer = scope.spawn(move || {
                    while watch.pieces.load(Ordering::SeqCst) < 2 {
                        thread::yield_now();
                    }
                    mm_session_destroy(victim.get())
                });
                let result = ask(s.get(), &a).map_err(|e| e.0);
                assert_eq!(killer.join().unwrap(), MM_OK);
                (result, mm_ask_info { ..ask_info() })
            });
        }
        let result = ask(s.get(), &a).map_err(|e| e.0);
        (result, last(s.get()))
    });
    assert_eq!(results[1].0.as_ref().map(|_| ()), Err(&MM_ERR_CANCELLED));
    assert!(
        matches!(results[2].0, Ok(_) | Err(MM_ERR_CANCELLED) | Err(MM_ERR_INVALID_HANDLE)),
        "the destroyed session's call ended: {:?}",
        results[2].0
    );
    for i in [0, 3] {
        let (result, info) = &results[i];
        assert!(result.is_ok(), "session {i}: {result:?}");
        assert_eq!(info.stop_reason, mm_stop_reason::MM_STOP_MAX_TOKENS as i32, "session {i} ran to its end: {info:?}");
        assert_eq!(info.tokens_generated, 64, "session {i}: {info:?}");
    }
    for i in [0, 1, 3] {
        assert_eq!(mm_session_destroy(sessions[i].get()), MM_OK);
    }
}

/// Holds its request for 200 ms at its first piece (with the slot it has).
unsafe extern "C" fn hold_first_piece(
    user_data: *mut std::ffi::c_void,
    _t: *const std::os::raw::c_char,
    _n: usize,
) -> bool {
    let held = unsafe { &*(user_data as *const std::sync::atomic::AtomicBool) };
    if !held.swap(true, std::sync::atomic::Ordering::SeqCst) {
        thread::sleep(std::time::Duration::from_millis(200));
    }
    true
}

/// Asks every session about its own colour at once (the first `hold` hold their slots for
/// 200 ms at their first piece), then each a follow-up, which must be answered from its own
/// cache; returns the first answers' figures.
fn colours_then_follow_ups(sessions: &[Handle], hold: usize) -> Vec<mm_ask_info> {
    let first = at_once(sessions, |i, s| {
        let image = Image::colour_file(colour(i));
        let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
        let mut a = chat.on(greedy());
        let held = std::sync::atomic::AtomicBool::new(false);
        if i < hold {
            a.on_text = Some(hold_first_piece);
            a.user_data = &held as *const _ as *mut std::ffi::c_void;
        } else if hold > 0 {
            // The holders take the slots first.
            thread::sleep(std::time::Duration::from_millis(50));
        }
        expect(s.get(), &a, colour(i), &format!("session {i}"))
    });
    for (i, s) in sessions.iter().enumerate() {
        let image = Image::colour_file(colour(i));
        let chat = Chat::new(&[
            ("user", QUESTION, vec![image.item]),
            ("assistant", &first[i].0, vec![]),
            ("user", "And now, what colour was it?", vec![]),
        ]);
        let (_, f) = expect(s.get(), &chat.on(greedy()), colour(i), &format!("follow-up {i}"));
        assert_eq!(f.media_encoded, 0, "session {i} answered from its own cache: {f:?}");
    }
    first.into_iter().map(|f| f.1).collect()
}

#[test]
fn more_sessions_than_slots_take_turns_and_keep_their_caches() {
    // Five sessions on two slots: requests wait for a slot or lend an idle one, whose KV cache
    // waits in host memory and comes back for its follow-up.
    let parent = seeing(2);
    let sessions = group(parent, 5);
    let first = colours_then_follow_ups(&sessions, 2);
    let waited = first.iter().filter(|f| f.slot_wait_ms > 0.0).count();
    assert_eq!(waited, 3, "two sessions held both slots while three asked: {first:?}");
    destroy_all(&sessions);
}

#[test]
fn n_parallel_and_batched_forks_are_checked() {
    let m = models();
    for bad in [0, MM_MAX_PARALLEL + 1] {
        let mut p = params(m);
        p.n_parallel = bad;
        let (status, message) = create(&p).unwrap_err();
        assert_eq!(status, MM_ERR_INVALID_ARGUMENT, "{message}");
        assert!(message.contains("n_parallel"), "{message}");
    }
    let mut p = params(m);
    p.n_parallel = 2;
    let parent = create(&p).unwrap();
    let mut f = mm_fork_params_default();
    f.n_ctx = 256;
    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(parent, &f, &mut out) }, MM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("joins its context"), "{}", last_error());
    assert!(out.is_null());
    assert_eq!(mm_session_destroy(parent), MM_OK);
}

/// Four requests of different kinds decode together, each under its own rules: a grammar, a
/// JSON Schema, a seed with sampling and a logit bias, and one that fills its own context.
#[test]
fn requests_in_one_batch_keep_their_own_rules() {
    let m = models();
    let mut p = params(m);
    p.n_parallel = 4;
    p.n_ctx = 96;
    let parent = create(&p).unwrap();
    let sessions = group(parent, 4);
    let meet = Meet { barrier: Barrier::new(4), met: Default::default() };
    let grammar = c(r#"root ::= ("yes" | "no") " " [a-z]{3,8}"#);
    let schema =
        c(r#"{"type":"object","properties":{"n":{"type":"integer"},"ok":{"type":"boolean"}},"required":["n","ok"]}"#);
    let banned = mm_logit_bias { token: 0, bias: f32::NEG_INFINITY };
    let results = at_once(&sessions, |i, s| {
        let prompt = c(&format!("Request {i}: answer"));
        let long = c(&"a b c d ".repeat(8));
        let mut a = prompt_params(if i == 3 { &long } else { &prompt });
        a.max_tokens = 200;
        a.temperature = 0.0;
        a.stop = std::ptr::null();
        match i {
            0 => a.grammar = grammar.as_ptr(),
            1 => a.json_schema = schema.as_ptr(),
            2 => {
                a.temperature = 0.9;
                a.seed = 7;
                a.logit_bias = &banned;
                a.n_logit_bias = 1;
                a.max_tokens = 20;
            }
            _ => {}
        }
        let data = (&meet, std::sync::atomic::AtomicBool::new(false));
        a.on_text = Some(meet_at_first_piece);
        a.user_data = &data as *const _ as *mut std::ffi::c_void;
        (ask(s.get(), &a), last(s.get()))
    });
    let text = |i: usize| results[i].0.as_ref().unwrap_or_else(|e| panic!("request {i}: {e:?}")).clone();
    let answer = text(0);
    let (word, rest) = answer.split_once(' ').expect("the grammar's space");
    assert!(["yes", "no"].contains(&word) && (3..=8).contains(&rest.len()), "{answer:?}");
    let json: serde_json::Value = serde_json::from_str(&text(1)).expect("JSON");
    assert!(json["n"].is_i64() && json["ok"].is_boolean(), "{json}");
    assert_eq!(results[2].1.tokens_generated, 20, "{:?}", results[2].1);
    // The long request ran into its own context's end; the others did not.
    assert_eq!(results[3].1.stop_reason, mm_stop_reason::MM_STOP_CONTEXT_FULL as i32, "{:?}", results[3].1);
    for (i, (_, info)) in results.iter().enumerate().take(3) {
        assert_ne!(info.stop_reason, mm_stop_reason::MM_STOP_CONTEXT_FULL as i32, "request {i}");
    }
    assert!(results.iter().any(|r| r.1.most_together > 1), "the requests shared steps");
    destroy_all(&sessions);
}

unsafe extern "C" fn signal_first_piece(
    user_data: *mut std::ffi::c_void,
    _t: *const std::os::raw::c_char,
    _n: usize,
) -> bool {
    let _ = unsafe { &*(user_data as *const std::sync::mpsc::SyncSender<()>) }.try_send(());
    true
}

/// A step stopped mid-way (every request in it was cancelled) runs on the group's thread: what
/// llama.cpp logs about the stopped computation there is a debug message, as on a session's own.
#[test]
fn a_cancelled_step_logs_nothing_above_debug() {
    use std::sync::atomic::Ordering;
    let m = models();
    let mut p = params(m);
    p.n_parallel = 2;
    p.n_ctx = 4096;
    let s = Handle(create(&p).unwrap() as usize);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_DEBUG as i32, Some(record_log), std::ptr::null_mut()), MM_OK);
    LOGGED.lock().unwrap().clear();
    WATCH.store(true, Ordering::SeqCst);
    let mut cancelled = 0;
    for attempt in 0..20u64 {
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let asking = thread::spawn(move || {
            let prompt = c("Go on and on.");
            let grammar = c("root ::= [a-z ] root");
            let mut a = prompt_params(&prompt);
            a.max_tokens = 3000;
            a.temperature = 1.0;
            a.grammar = grammar.as_ptr();
            a.on_text = Some(signal_first_piece);
            a.user_data = &tx as *const _ as *mut std::ffi::c_void;
            ask(s.get(), &a).err().map(|e| e.0)
        });
        rx.recv().unwrap();
        thread::sleep(std::time::Duration::from_micros(100 * attempt));
        assert_eq!(mm_session_cancel(s.get()), MM_OK);
        cancelled += (asking.join().unwrap() == Some(MM_ERR_CANCELLED)) as u32;
        assert_eq!(mm_session_reset(s.get()), MM_OK);
    }
    WATCH.store(false, Ordering::SeqCst);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), MM_OK);
    let logged = LOGGED.lock().unwrap().clone();
    assert_eq!(cancelled, 20, "every request was cancelled");
    assert!(logged.is_empty(), "a cancelled step logged warnings or errors: {logged:?}");
    assert_eq!(mm_session_destroy(s.get()), MM_OK);
}
