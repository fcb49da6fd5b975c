//! Many conversations on one loaded model: forks share the text model and the projector, each
//! with a context of its own; the weights are freed with the last session, in any order.

use std::ffi::{c_void, CString};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status::*;

fn fork(s: *mut mm_session, copy: bool) -> *mut mm_session {
    let mut p = mm_fork_params_default();
    p.copy_conversation = copy;
    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(s, &p, &mut out) }, MM_OK, "{}", last_error());
    assert!(!out.is_null());
    out
}

fn greedy(prompt: &CString) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 8;
    a.temperature = 0.0;
    a
}

fn memory(s: *mut mm_session) -> mm_memory_stats {
    let mut m = mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(s, &mut m) }, MM_OK, "{}", last_error());
    m
}

fn last(s: *mut mm_session) -> mm_ask_info {
    let mut i = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut i) }, MM_OK);
    i
}

#[test]
fn forks_share_the_weights_and_answer_alike() {
    let m = models();
    let (live, loaded) = (mm_live_sessions(), mm_loaded_models());
    let parent = create(&params(m)).unwrap();
    let forks: Vec<_> = (0..3).map(|_| fork(parent, false)).collect();
    assert_eq!(mm_live_sessions(), live + 4);
    assert_eq!(mm_loaded_models(), loaded + 1, "nothing was loaded again");
    let pm = memory(parent);
    assert_eq!(pm.shared_by, 4);
    for &f in &forks {
        let fm = memory(f);
        assert_eq!((fm.model_host, fm.projector_host, fm.shared_by), (pm.model_host, pm.projector_host, 4));
        assert!(fm.kv_host > 0, "each fork has its own KV cache");
    }
    let prompt = CString::new("Describe <__media__> briefly.").unwrap();
    let media = [image_item(m)];
    let mut a = greedy(&prompt);
    a.media = media.as_ptr();
    a.n_media = 1;
    let answer = ask(parent, &a).unwrap();
    for &f in &forks {
        assert_eq!(ask(f, &a).unwrap(), answer, "a fork answers as its parent");
    }
    // A fork of a fork, with its own context size and seed.
    let mut p = mm_fork_params_default();
    p.n_ctx = 512;
    p.seed = 99;
    let mut grandchild = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(forks[0], &p, &mut grandchild) }, MM_OK);
    let mut info: mm_session_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    assert_eq!(unsafe { mm_session_get_info(grandchild, &mut info) }, MM_OK);
    assert_eq!(info.n_ctx, 512);
    assert_eq!(ask(grandchild, &a).unwrap(), answer);
    for s in forks.into_iter().chain([parent, grandchild]) {
        assert_eq!(mm_session_destroy(s), MM_OK);
    }
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (live, loaded));
}

#[test]
fn destroyed_in_any_order_the_weights_go_with_the_last() {
    let m = models();
    let (live, loaded) = (mm_live_sessions(), mm_loaded_models());
    // Orders of destroying a parent (0) and three forks (1-3): parent first, children first,
    // interleaved.
    let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 1, 3]];
    let prompt = CString::new("hi").unwrap();
    let mut baseline = 0;
    for cycle in 0..60 {
        let parent = create(&params(m)).unwrap();
        let mut all = vec![parent];
        for i in 0..3 {
            let from = all[i % all.len()];
            all.push(fork(from, i % 2 == 0));
        }
        for &s in &all {
            assert_eq!(ask(s, &greedy(&prompt)).map(|_| ()), Ok(()));
        }
        for (k, &i) in orders[cycle % orders.len()].iter().enumerate() {
            assert_eq!(mm_session_destroy(all[i]), MM_OK);
            let left = all.len() - k - 1;
            assert_eq!(
                mm_loaded_models(),
                loaded + (left > 0) as usize,
                "cycle {cycle}: the weights live while a session uses them"
            );
            if left > 0 {
                // The sessions left still work after any other was destroyed.
                let survivor = orders[cycle % orders.len()][k + 1];
                assert_eq!(ask(all[survivor], &greedy(&prompt)).map(|_| ()), Ok(()));
            }
        }
        assert_eq!((mm_live_sessions(), mm_loaded_models()), (live, loaded));
        if cycle == 19 {
            baseline = rss_kb();
        }
    }
    // A leak of one context or of the weights per cycle would be tens of MB over 40 cycles; the
    // allocator's pools alone have moved a few MB on a busy machine.
    let growth = rss_kb().saturating_sub(baseline);
    eprintln!("fork cycles 20-60: rss growth {growth} kB");
    assert!(growth < 8192, "resident memory grew by {growth} kB over 40 fork/destroy cycles");
}

#[test]
fn a_copied_prefix_is_not_encoded_again() {
    let m = models();
    let parent = create(&params(m)).unwrap();
    let pixels: Vec<Vec<u8>> = (0..4).map(|i| mm_fixtures::test_pattern(24, 24, 200 + i)).collect();
    let media = crate::conversation::rgb_items(&pixels);
    let prefix = CString::new("Four reference pictures: <__media__> <__media__> <__media__> <__media__>.").unwrap();
    let mut a = greedy(&prefix);
    a.media = media.as_ptr();
    a.n_media = 4;
    a.max_tokens = 1;
    ask(parent, &a).unwrap();
    assert_eq!(last(parent).media_encoded, 4);

    let follow =
        CString::new("Four reference pictures: <__media__> <__media__> <__media__> <__media__>. Which is brightest?")
            .unwrap();
    let mut b = greedy(&follow);
    b.media = media.as_ptr();
    b.n_media = 4;
    let forks: Vec<_> = (0..3).map(|_| fork(parent, true)).collect();
    let mut answers = Vec::new();
    for &f in &forks {
        answers.push(ask(f, &b).unwrap());
        let i = last(f);
        assert_eq!(i.media_encoded, 0, "a fork's first follow-up encodes none of the shared images");
        assert!(i.positions_reused > 0);
    }
    // An empty fork encodes them all; every fork answers alike.
    let empty = fork(parent, false);
    answers.push(ask(empty, &b).unwrap());
    assert_eq!(last(empty).media_encoded, 4);
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    for s in forks.into_iter().chain([parent, empty]) {
        assert_eq!(mm_session_destroy(s), MM_OK);
    }
}

#[test]
fn a_fork_during_a_call_waits_and_a_destroyed_handle_is_refused() {
    let m = models();
    let parent = create(&params(m)).unwrap();
    // The callback counts the call's pieces, slowly: a fork that did not wait would return
    // while pieces are still to come.
    static PIECES: AtomicU32 = AtomicU32::new(0);
    unsafe extern "C" fn slow(_: *mut c_void, _: *const c_char, _: usize) -> bool {
        PIECES.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10));
        true
    }
    let handle = parent as usize;
    let call = std::thread::spawn(move || {
        let prompt = CString::new("A long answer, please.").unwrap();
        let mut a = greedy(&prompt);
        a.max_tokens = 30;
        a.on_text = Some(slow);
        let mut out = std::ptr::null_mut();
        let st = unsafe { mm_session_ask(handle as *mut mm_session, &a, &mut out) };
        unsafe { mm_string_free(out) };
        st
    });
    while PIECES.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let child = fork(parent, true);
    let pieces_when_forked = PIECES.load(Ordering::SeqCst);
    assert_eq!(call.join().unwrap(), MM_OK);
    let pieces = PIECES.load(Ordering::SeqCst);
    assert!(pieces > 1, "the call gave {pieces} piece: nothing to wait for");
    assert_eq!(pieces_when_forked, pieces, "the fork returned before the call had finished");
    assert_eq!(mm_session_destroy(child), MM_OK);
    assert_eq!(mm_session_destroy(parent), MM_OK);
    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(parent, std::ptr::null(), &mut out) }, MM_ERR_INVALID_HANDLE);
    assert!(out.is_null());
}

#[test]
fn forks_run_in_parallel() {
    let m = models();
    let parent = create(&params(m)).unwrap();
    let forks: Vec<usize> = (0..4).map(|_| fork(parent, false) as usize).collect();
    let threads: Vec<_> = forks
        .iter()
        .map(|&f| {
            std::thread::spawn(move || {
                let prompt = CString::new("In parallel <__media__>").unwrap();
                let pixels = mm_fixtures::test_pattern(24, 24, f as u64);
                let media = [mm_media { width: 24, height: 24, ..bytes_item(mm_media_kind::MM_MEDIA_RGB, &pixels) }];
                let mut a = greedy(&prompt);
                a.media = media.as_ptr();
                a.n_media = 1;
                (0..5).map(|_| ask(f as *mut mm_session, &a).map(|_| ())).collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|r| r.is_ok()));
    }
    for f in forks {
        assert_eq!(mm_session_destroy(f as *mut mm_session), MM_OK);
    }
    assert_eq!(mm_session_destroy(parent), MM_OK);
}
