//! Cancelling: `mm_session_cancel` from another thread or from inside a callback, a text
//! callback that returns false, a load progress callback that returns false, and a destroy
//! while a call runs. Generation, an image encode and a load stop; the session stays usable;
//! a cancel logs nothing above debug.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::Ordering;

use crate::common::*;
use crate::conversation::{info, session_info};
use crate::media::{expect, greedy, session, Image, QUESTION};
use crate::session::ask_params;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use ::mm_session::status::mm_status::*;

unsafe extern "C" fn note_start(user_data: *mut c_void, _t: *const c_char, _l: usize) -> bool {
    let tx = &*(user_data as *const std::sync::mpsc::SyncSender<std::time::Instant>);
    let _ = tx.try_send(std::time::Instant::now());
    true
}

#[test]
fn cancel_from_another_thread_stops_generation_and_the_session_stays_usable() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 4096;
    let s = create(&p).unwrap();
    let handle = s as usize;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::time::Instant>(1);
    let worker = std::thread::spawn(move || {
        let prompt = CString::new("Go on and on.").unwrap();
        let mut a = mm_ask_params_default();
        a.prompt = prompt.as_ptr();
        a.max_tokens = 3500;
        a.temperature = 1.0;
        // Only an end-of-generation token could end it early: a grammar that never ends
        // forbids it.
        let grammar = CString::new("root ::= [a-z ] root").unwrap();
        a.grammar = grammar.as_ptr();
        a.on_text = Some(note_start);
        a.user_data = &tx as *const _ as *mut c_void;
        let r = ask(handle as *mut mm_session, &a);
        (r, std::time::Instant::now())
    });
    rx.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let asked = std::time::Instant::now();
    assert_eq!(mm_session_cancel(s), mm_status::MM_OK);
    let (result, returned) = worker.join().unwrap();
    eprintln!("cancel_ms={:.2}", returned.duration_since(asked).as_secs_f64() * 1e3);
    assert_eq!(result.unwrap_err().0, mm_status::MM_ERR_CANCELLED);
    let cached = session_info(s).n_past;
    assert!(cached > 0, "what was evaluated before the cancel stays cached");

    // The next request works, and an earlier cancel does not touch it.
    let prompt = CString::new("Go on and on.").unwrap();
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 5;
    ask(s, &a).expect("usable after a cancel");
    assert!(info(s).positions_reused > 0);
    assert_eq!(mm_session_cancel(std::ptr::null()), mm_status::MM_ERR_NULL_ARGUMENT);
    mm_session_destroy(s);
    assert_eq!(mm_session_cancel(s), mm_status::MM_ERR_INVALID_HANDLE);
}

#[test]
fn a_cancel_logs_nothing_above_debug() {
    let m = models();
    let s = create(&params(m)).unwrap();
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_DEBUG as i32, Some(record_log), std::ptr::null_mut()), MM_OK);
    LOGGED.lock().unwrap().clear();
    WATCH.store(true, Ordering::SeqCst);
    unsafe extern "C" fn cancel_after_two(user_data: *mut c_void, _: *const c_char, _: usize) -> bool {
        static PIECES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        if PIECES.fetch_add(1, Ordering::SeqCst) == 1 {
            mm_session_cancel(user_data as *mut mm_session);
        }
        true
    }
    let prompt = c("Tell a long story.");
    let mut a = prompt_params(&prompt);
    a.on_text = Some(cancel_after_two);
    a.user_data = s as *mut c_void;
    a.max_tokens = 64;
    a.temperature = 0.8;
    let st = status_of_ask(s, &a);
    WATCH.store(false, Ordering::SeqCst);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), MM_OK);
    assert_eq!(st, MM_ERR_CANCELLED);
    let logged = LOGGED.lock().unwrap().clone();
    assert!(logged.is_empty(), "a cancel logged warnings or errors: {logged:?}");
    assert_eq!(mm_session_destroy(s), MM_OK);
}

/// What the log callback and the cancelling thread share.
struct EncodeWatch {
    to_canceller: std::sync::mpsc::SyncSender<()>,
    cancelled: std::sync::mpsc::Receiver<()>,
}

/// Log callback: when mtmd says it starts encoding an image, asks the other thread to cancel and
/// waits until it has, so that the cancel lands while this image is being encoded. (It does not
/// call into mm-session itself, as the API asks.)
unsafe extern "C" fn cancel_at_encode(user_data: *mut c_void, _level: i32, message: *const c_char) {
    let text = CStr::from_ptr(message).to_string_lossy();
    if text.contains("encoding image slice") {
        let watch = &*(user_data as *const EncodeWatch);
        if watch.to_canceller.try_send(()).is_ok() {
            let _ = watch.cancelled.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

#[test]
fn a_cancelled_encode_then_a_retry_answers() {
    let s = session();
    let handle = s as usize;
    let (to_canceller, at_encode) = std::sync::mpsc::sync_channel::<()>(1);
    let (done, cancelled) = std::sync::mpsc::sync_channel::<()>(1);
    let watch = Box::new(EncodeWatch { to_canceller, cancelled });
    let canceller = std::thread::spawn(move || {
        at_encode.recv().unwrap();
        assert_eq!(mm_session_cancel(handle as *mut mm_session), mm_status::MM_OK);
        done.send(()).unwrap();
    });
    let watch_ptr = &*watch as *const EncodeWatch as *mut c_void;
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_INFO as i32, Some(cancel_at_encode), watch_ptr), mm_status::MM_OK);
    let image = Image::colour_file("green");
    let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
    let result = ask(s, &chat.on(greedy()));
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), mm_status::MM_OK);
    canceller.join().unwrap();
    drop(watch);
    let (st, msg) = result.expect_err("the encode was cancelled");
    assert_eq!(st, mm_status::MM_ERR_CANCELLED, "{msg}");

    let (_, info) = expect(s, &chat.on(greedy()), "green", "retry");
    assert_eq!(info.media_encoded, 1, "the cancelled image was not kept: {info:?}");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

unsafe extern "C" fn stop_after_first(user_data: *mut c_void, text: *const c_char, len: usize) -> bool {
    let seen = &mut *(user_data as *mut Vec<String>);
    let piece = CStr::from_ptr(text).to_str().expect("pieces are whole UTF-8");
    assert_eq!(piece.len(), len);
    seen.push(piece.to_owned());
    false
}

#[test]
fn a_callback_that_returns_false_stops_generation() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let prompt = CString::new("Tell a long story.").unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut a = ask_params(&prompt, &[]);
    a.max_tokens = 64;
    a.temperature = 0.0;
    a.on_text = Some(stop_after_first);
    a.user_data = &mut seen as *mut _ as *mut c_void;
    let text = ask(s, &a).unwrap();
    assert_eq!(seen.len(), 1, "no piece after the callback said stop");
    assert_eq!(text, seen[0], "the whole text is what was streamed");
    let mut info = ask_info();
    unsafe { mm_session_last_ask(s, &mut info) };
    assert_eq!(info.stop_reason, mm_stop_reason::MM_STOP_CALLBACK as i32);
    assert!(info.tokens_generated < 64);
    mm_session_destroy(s);
}

unsafe extern "C" fn cancel_halfway(user_data: *mut c_void, progress: f32) -> bool {
    let calls = &mut *(user_data as *mut Vec<f32>);
    calls.push(progress);
    progress < 0.5
}

unsafe extern "C" fn record_progress(user_data: *mut c_void, progress: f32) -> bool {
    (*(user_data as *mut Vec<f32>)).push(progress);
    true
}

#[test]
fn load_progress_reports_and_cancels() {
    let m = models();
    let mut seen: Vec<f32> = Vec::new();
    let mut p = params(m);
    p.progress_callback = Some(record_progress);
    p.progress_user_data = &mut seen as *mut _ as *mut c_void;
    let s = create(&p).unwrap();
    mm_session_destroy(s);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {seen:?}");
    assert!(seen.iter().any(|&x| x > 0.8), "the projector's part is reported: {seen:?}");

    let mut calls: Vec<f32> = Vec::new();
    p.progress_callback = Some(cancel_halfway);
    p.progress_user_data = &mut calls as *mut _ as *mut c_void;
    let (st, msg) = create(&p).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_CANCELLED, "{msg}");
    assert!(msg.contains("cancelled"), "{msg}");
    assert_eq!(mm_live_sessions(), 0);
}

unsafe extern "C" fn signal_first_piece(user_data: *mut c_void, _text: *const c_char, _len: usize) -> bool {
    let tx = &*(user_data as *const std::sync::mpsc::SyncSender<()>);
    let _ = tx.try_send(());
    // Give destroy time to raise the cancel flag before the next token is sampled.
    std::thread::sleep(std::time::Duration::from_millis(50));
    true
}

#[test]
fn destroy_waits_for_a_call_on_another_thread_and_cancels_it() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 4096;
    let s = create(&p).unwrap();
    let handle = s as usize;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let worker = std::thread::spawn(move || {
        let prompt = CString::new("Go on forever.").unwrap();
        let mut a = ask_params(&prompt, &[]);
        a.max_tokens = 4000;
        a.temperature = 1.0;
        a.on_text = Some(signal_first_piece);
        a.user_data = &tx as *const _ as *mut c_void;
        ask(handle as *mut mm_session, &a)
    });
    rx.recv().expect("generation started");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    // Destroy returned: the call has ended and everything is freed.
    assert_eq!(mm_live_sessions(), 0);
    let (st, msg) = worker.join().unwrap().expect_err("the call was cut short");
    assert_eq!(st, mm_status::MM_ERR_CANCELLED, "{msg}");
}
