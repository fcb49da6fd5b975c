//! Conversations: chat templates, reuse of the KV cache across turns, context overflow, saved
//! state, cancellation, grammars, session info and audio, through the C API.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::mm_ask_info;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::state::*;
use ::mm_session::status::mm_status;
use mm_fixtures::audio as fixtures_audio;
use mm_fixtures::{self as fixtures, FixtureSpec};

/// The request parameters of this file's chats.
fn chat_params() -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.max_tokens = 12;
    a.seed = 7;
    a
}

fn info(s: *mut mm_session) -> mm_ask_info {
    let mut i = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut i) }, mm_status::MM_OK);
    i
}

fn session_info(s: *mut mm_session) -> mm_session_info {
    let mut i: mm_session_info = unsafe { std::mem::zeroed() };
    i.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    assert_eq!(unsafe { mm_session_get_info(s, &mut i) }, mm_status::MM_OK);
    i
}

fn count(s: *mut mm_session, a: &mm_ask_params) -> u32 {
    let mut n = 0;
    assert_eq!(unsafe { mm_session_count_tokens(s, a, &mut n) }, mm_status::MM_OK, "{}", last_error());
    n
}

fn images(m: &Models, k: usize) -> Vec<mm_media> {
    vec![image_item(m); k]
}

/// Distinct images: raw pixels with different seeds (owned by the caller).
fn distinct_pixels(k: usize) -> Vec<Vec<u8>> {
    (0..k).map(|i| fixtures::test_pattern(24, 24, 100 + i as u64)).collect()
}

fn rgb_items(pixels: &[Vec<u8>]) -> Vec<mm_media> {
    pixels
        .iter()
        .map(|p| mm_media {
            kind: mm_media_kind::MM_MEDIA_RGB as i32,
            width: 24,
            height: 24,
            reserved0: 0,
            path: std::ptr::null(),
            data: p.as_ptr(),
            size: p.len(),
        })
        .collect()
}

#[test]
fn a_follow_up_encodes_no_image_and_evaluates_only_new_tokens() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let pixels = distinct_pixels(3);
    let first =
        Chat::new(&[("system", "You describe pictures.", vec![]), ("user", "What are these?", rgb_items(&pixels))]);
    let answer = ask(s, &first.on(chat_params())).unwrap();
    let turn1 = info(s);
    assert_eq!(turn1.media_encoded, 3);
    assert_eq!(turn1.positions_reused, 0);

    let second = Chat::new(&[
        ("system", "You describe pictures.", vec![]),
        ("user", "What are these?", rgb_items(&pixels)),
        ("assistant", &answer, vec![]),
        ("user", "And the colours?", vec![]),
    ]);
    ask(s, &second.on(chat_params())).unwrap();
    let turn2 = info(s);
    assert_eq!(turn2.media_encoded, 0, "images of earlier turns are not encoded again");
    assert!(turn2.positions_reused >= turn1.prompt_positions - 1, "{turn1:?} {turn2:?}");
    assert_eq!(
        turn2.tokens_evaluated,
        turn2.prompt_positions - turn2.positions_reused,
        "only what is new is evaluated"
    );
    assert_eq!(count(s, &second.on(chat_params())), turn2.prompt_positions);

    // An edited earlier message: the cache is cut at the first difference (after the images).
    let edited = Chat::new(&[
        ("system", "You describe pictures.", vec![]),
        ("user", "What are these things?", rgb_items(&pixels)),
        ("assistant", &answer, vec![]),
        ("user", "And the colours?", vec![]),
    ]);
    ask(s, &edited.on(chat_params())).unwrap();
    let turn3 = info(s);
    assert_eq!(turn3.media_encoded, 0, "the edit is after the images");
    assert!(turn3.positions_reused < turn2.positions_reused, "{turn3:?}");
    assert!(turn3.positions_reused > 3 * 16, "the images (16 positions each) stay cached: {turn3:?}");
    assert_eq!(turn3.tokens_evaluated, turn3.prompt_positions - turn3.positions_reused);

    // Different images: those are encoded.
    let other_pixels = distinct_pixels(4);
    let changed = Chat::new(&[
        ("system", "You describe pictures.", vec![]),
        ("user", "What are these?", rgb_items(&other_pixels[1..])),
    ]);
    ask(s, &changed.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 3);

    assert_eq!(mm_session_reset(s), mm_status::MM_OK);
    assert_eq!(session_info(s).n_past, 0);
    ask(s, &changed.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 3, "after a reset everything is evaluated again");
    mm_session_destroy(s);
}

#[test]
fn chat_template_and_markers_in_messages() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
    let placed = format!("Here {marker} is a picture.");
    let chat = Chat::new(&[("user", &placed, images(m, 1))]);
    ask(s, &chat.on(chat_params())).expect("marker inside a message");
    let bad = Chat::new(&[("user", &placed, images(m, 2))]);
    let (st, msg) = ask(s, &bad.on(chat_params())).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_MEDIA_COUNT);
    assert!(msg.contains("message 0"), "{msg}");

    // The template adds its own tokens: the chat takes more positions than the bare text.
    let text_only = Chat::new(&[("user", "hello", vec![])]);
    let prompt = CString::new("hello").unwrap();
    let mut raw = mm_ask_params_default();
    raw.prompt = prompt.as_ptr();
    assert!(count(s, &text_only.on(chat_params())) > count(s, &raw) + 4);

    // A prompt and messages at once is refused.
    let mut both = text_only.on(chat_params());
    both.prompt = prompt.as_ptr();
    assert_eq!(ask(s, &both).unwrap_err().0, mm_status::MM_ERR_INVALID_ARGUMENT);
    mm_session_destroy(s);
}

#[test]
fn a_chat_that_does_not_fit_fails_or_drops_oldest_turns() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 256;
    let s = create(&p).unwrap();
    let n_ctx = session_info(s).n_ctx;
    let long = "tell me more about it ".repeat(3);
    let turns: Vec<(&str, &str, Vec<mm_media>)> = vec![
        ("system", "Be brief.", vec![]),
        ("user", &long, images(m, 1)),
        ("assistant", &long, vec![]),
        ("user", &long, images(m, 1)),
        ("assistant", &long, vec![]),
        ("user", "Last question?", vec![]),
    ];
    let chat = Chat::new(&turns);
    let before = session_info(s).n_past;
    let (st, msg) = ask(s, &chat.on(chat_params())).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_CONTEXT_FULL, "{msg}");
    assert_eq!(session_info(s).n_past, before, "nothing was evaluated");

    let mut drop = chat.on(chat_params());
    drop.overflow = mm_overflow::MM_OVERFLOW_DROP_OLDEST as i32;
    ask(s, &drop).expect("fits after dropping turns");
    let dropped = info(s);
    assert!(dropped.messages_dropped >= 2, "{dropped:?}");
    assert!(dropped.prompt_positions < n_ctx);
    // What was kept is the system message and the newest turns.
    let kept = Chat::new(
        &[turns[0].clone()]
            .into_iter()
            .chain(turns[1 + dropped.messages_dropped as usize..].iter().cloned())
            .collect::<Vec<_>>(),
    );
    assert_eq!(count(s, &kept.on(chat_params())), dropped.prompt_positions);

    // Even the last turn alone does not fit: a clear status.
    let huge = "word ".repeat(400);
    let too_big = Chat::new(&[("system", "Be brief.", vec![]), ("user", &huge, vec![])]);
    let mut a = too_big.on(chat_params());
    a.overflow = mm_overflow::MM_OVERFLOW_DROP_OLDEST as i32;
    assert_eq!(ask(s, &a).unwrap_err().0, mm_status::MM_ERR_CONTEXT_FULL);
    mm_session_destroy(s);
}

/// A chat of 6,001 short messages in a context of 512: the fewest oldest turns are dropped
/// (found by bisection; one turn at a time took 101-117 s), and keeping one more would not fit.
#[test]
fn a_long_chat_drops_the_fewest_oldest_turns() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 512;
    let s = create(&p).unwrap();
    let n_ctx = session_info(s).n_ctx;
    let mut turns: Vec<(&str, &str, Vec<mm_media>)> = vec![("system", "Be brief.", vec![])];
    for _ in 0..3_000 {
        turns.push(("user", "Hi?", vec![]));
        turns.push(("assistant", "Hello.", vec![]));
    }
    let chat = Chat::new(&turns);
    let mut a = chat.on(chat_params());
    a.overflow = mm_overflow::MM_OVERFLOW_DROP_OLDEST as i32;
    a.max_tokens = 2;
    ask(s, &a).expect("fits after dropping turns");
    let dropped = info(s).messages_dropped as usize;
    assert!(dropped > 0 && dropped.is_multiple_of(2), "whole turns: {dropped}");
    let kept_from = |first: usize| {
        Chat::new(&[turns[0].clone()].into_iter().chain(turns[first..].iter().cloned()).collect::<Vec<_>>())
    };
    assert_eq!(count(s, &kept_from(1 + dropped).on(chat_params())), info(s).prompt_positions);
    let mut one_more = 0;
    let st = unsafe { mm_session_count_tokens(s, &kept_from(dropped - 1).on(chat_params()), &mut one_more) };
    assert_eq!(st, mm_status::MM_ERR_CONTEXT_FULL, "one more turn would fit: {one_more} of {n_ctx}");
    mm_session_destroy(s);
}

fn save(s: *mut mm_session, path: &std::path::Path) -> mm_status {
    let c = CString::new(path.to_string_lossy().as_bytes()).unwrap();
    unsafe { mm_session_save_state(s, c.as_ptr()) }
}

fn load(s: *mut mm_session, path: &std::path::Path) -> (mm_status, String) {
    let c = CString::new(path.to_string_lossy().as_bytes()).unwrap();
    (unsafe { mm_session_load_state(s, c.as_ptr()) }, last_error())
}

#[test]
fn saved_state_resumes_the_same_conversation_without_encoding() {
    let m = models();
    let dir = fixture_dir().join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let pixels = distinct_pixels(2);
    let turn1 = Chat::new(&[("user", "Describe these.", rgb_items(&pixels))]);

    // Uninterrupted.
    let s = create(&params(m)).unwrap();
    let a1 = ask(s, &turn1.on(chat_params())).unwrap();
    let turn2 = Chat::new(&[
        ("user", "Describe these.", rgb_items(&pixels)),
        ("assistant", &a1, vec![]),
        ("user", "More?", vec![]),
    ]);
    let a2 = ask(s, &turn2.on(chat_params())).unwrap();
    mm_session_destroy(s);

    // Interrupted: save, destroy, create, load, follow up.
    let s = create(&params(m)).unwrap();
    assert_eq!(ask(s, &turn1.on(chat_params())).unwrap(), a1);
    let state = dir.join("conversation.mmstate");
    assert_eq!(save(s, &state), mm_status::MM_OK, "{}", last_error());
    let n_past = session_info(s).n_past;
    mm_session_destroy(s);
    let s = create(&params(m)).unwrap();
    assert_eq!(load(s, &state).0, mm_status::MM_OK, "{}", last_error());
    assert_eq!(session_info(s).n_past, n_past);
    let resumed = ask(s, &turn2.on(chat_params())).unwrap();
    assert_eq!(resumed, a2, "same text as the uninterrupted conversation");
    assert_eq!(info(s).media_encoded, 0, "no image encoded after loading");

    // Bad files leave the session as it was.
    let bytes = std::fs::read(&state).unwrap();
    let truncated = dir.join("truncated.mmstate");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.mmstate");
    std::fs::write(&garbage, b"definitely not a state file, just text").unwrap();
    let mut flipped_bytes = bytes.clone();
    let mid = flipped_bytes.len() / 2;
    flipped_bytes[mid] ^= 0x55;
    let flipped = dir.join("flipped.mmstate");
    std::fs::write(&flipped, &flipped_bytes).unwrap();
    let before = session_info(s).n_past;
    for (path, want) in [
        (&truncated, mm_status::MM_ERR_STATE_CORRUPT),
        (&garbage, mm_status::MM_ERR_STATE_CORRUPT),
        (&flipped, mm_status::MM_ERR_STATE_CORRUPT),
    ] {
        let (st, msg) = load(s, path);
        assert_eq!(st, want, "{}: {msg}", path.display());
        assert!(msg.contains(&path.file_name().unwrap().to_string_lossy().to_string()), "{msg}");
        assert_eq!(session_info(s).n_past, before);
    }
    assert_eq!(load(s, &dir.join("missing.mmstate")).0, mm_status::MM_ERR_FILE_NOT_FOUND);

    // A state of another model.
    let other_dir = dir.join("other-model");
    fixtures::write_all(&other_dir, &FixtureSpec { n_layer: 3, ..FixtureSpec::default() }).unwrap();
    let other_model = CString::new(other_dir.join(fixtures::MODEL_FILE).to_string_lossy().as_bytes()).unwrap();
    let other_proj = CString::new(other_dir.join(fixtures::MMPROJ_FILE).to_string_lossy().as_bytes()).unwrap();
    let mut op = params(m);
    op.model_path = other_model.as_ptr();
    op.mmproj_path = other_proj.as_ptr();
    let o = create(&op).unwrap();
    let (st, msg) = load(o, &state);
    assert_eq!(st, mm_status::MM_ERR_STATE_MISMATCH, "{msg}");
    mm_session_destroy(o);

    // Still the same conversation: a follow-up reuses it.
    assert_eq!(ask(s, &turn2.on(chat_params())).unwrap(), a2);
    assert_eq!(info(s).media_encoded, 0);
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

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
fn grammar_constrains_random_weights() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let prompt = CString::new("Answer yes or no.").unwrap();
    let grammar = CString::new("root ::= (\"yes\" | \"no\") \".\"").unwrap();
    for seed in 0..6 {
        let mut a = mm_ask_params_default();
        a.prompt = prompt.as_ptr();
        a.grammar = grammar.as_ptr();
        a.max_tokens = 10;
        a.temperature = 1.0;
        a.seed = seed;
        let text = ask(s, &a).unwrap();
        assert!(text == "yes." || text == "no.", "seed {seed}: {text:?}");
    }
    let bad = CString::new("root ::= (unclosed").unwrap();
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.grammar = bad.as_ptr();
    let (st, msg) = ask(s, &a).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("grammar"), "{msg}");
    mm_session_destroy(s);
}

#[test]
fn session_info_and_token_counts() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let i = session_info(s);
    assert_eq!(i.n_ctx, 1024);
    assert_eq!(i.n_past, 0);
    assert!(i.supports_vision && !i.supports_audio);
    assert_eq!(i.audio_sample_rate, 0);
    assert_eq!(unsafe { CStr::from_ptr(i.marker) }.to_str().unwrap(), "<__media__>");
    let chat = Chat::new(&[("user", "Two pictures", images(m, 2))]);
    let n = count(s, &chat.on(chat_params()));
    assert_eq!(session_info(s).n_past, 0, "counting evaluates nothing");
    ask(s, &chat.on(chat_params())).unwrap();
    let asked = info(s);
    assert_eq!(n, asked.prompt_positions);
    // Every generated token is in the cache but the last one when max_tokens ended it.
    let last_not_decoded =
        (asked.stop_reason == ::mm_session::conversation::mm_stop_reason::MM_STOP_MAX_TOKENS as i32) as u32;
    assert_eq!(session_info(s).n_past, asked.prompt_positions + asked.tokens_generated - last_not_decoded);
    mm_session_destroy(s);
}

#[test]
fn audio_end_to_end() {
    let m = models();
    let dir = fixture_dir().join("audio");
    std::fs::create_dir_all(&dir).unwrap();
    let proj = dir.join("tiny-audio-mmproj.gguf");
    fixtures_audio::write_audio_projector(&proj, FixtureSpec::default().n_embd, 3).unwrap();
    let wav = fixtures_audio::wav_tone(1.0, 16000, 3);
    let wav_path = dir.join("tone.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let proj_c = CString::new(proj.to_string_lossy().as_bytes()).unwrap();
    let wav_c = CString::new(wav_path.to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.mmproj_path = proj_c.as_ptr();
    p.n_ctx = 2048;
    let s = create(&p).unwrap();
    let i = session_info(s);
    assert!(i.supports_audio && !i.supports_vision);
    assert_eq!(i.audio_sample_rate, 16000);

    let from_file = mm_media {
        kind: mm_media_kind::MM_MEDIA_FILE as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: wav_c.as_ptr(),
        data: std::ptr::null(),
        size: 0,
    };
    let from_buffer = mm_media {
        kind: mm_media_kind::MM_MEDIA_ENCODED as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: std::ptr::null(),
        data: wav.as_ptr(),
        size: wav.len(),
    };
    let chat = Chat::new(&[("user", "What is this sound?", vec![from_file])]);
    let answer = ask(s, &chat.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 1);
    // The same sound from a buffer has the same content hash: a follow-up encodes nothing.
    let follow = Chat::new(&[
        ("user", "What is this sound?", vec![from_buffer]),
        ("assistant", &answer, vec![]),
        ("user", "Louder?", vec![]),
    ]);
    ask(s, &follow.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 0);

    // The same kind of clip as raw f32 samples.
    let samples: Vec<u8> = (0..16000).flat_map(|i| ((i as f32 * 0.05).sin() * 0.3).to_ne_bytes()).collect();
    let pcm = mm_media {
        kind: mm_media_kind::MM_MEDIA_PCM_F32 as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: std::ptr::null(),
        data: samples.as_ptr(),
        size: samples.len(),
    };
    let raw = Chat::new(&[("user", "And this one?", vec![pcm])]);
    ask(s, &raw.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 1);
    ask(s, &raw.on(chat_params())).unwrap();
    assert_eq!(info(s).media_encoded, 0, "the same samples are recognised");
    let odd = Chat::new(&[("user", "Odd?", vec![mm_media { size: 7, ..pcm }])]);
    assert_eq!(ask(s, &odd.on(chat_params())).unwrap_err().0, mm_status::MM_ERR_INVALID_ARGUMENT);

    // An image for an audio-only projector is refused clearly.
    let img = Chat::new(&[("user", "And this?", images(m, 1))]);
    let (st, msg) = ask(s, &img.on(chat_params())).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_UNSUPPORTED, "{msg}");
    mm_session_destroy(s);
}

#[test]
fn media_at_the_very_end_of_a_prompt() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
    let media = [image_item(m)];
    for text in [marker.clone(), format!("Look at this: {marker}")] {
        let prompt = CString::new(text).unwrap();
        let mut a = mm_ask_params_default();
        a.prompt = prompt.as_ptr();
        a.media = media.as_ptr();
        a.n_media = 1;
        a.max_tokens = 4;
        ask(s, &a).expect("media as the last item");
        ask(s, &a).expect("and again, from the cache");
    }
    mm_session_destroy(s);
}
