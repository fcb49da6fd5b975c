//! Threads: sessions on many threads at once, one session called from several threads (calls
//! are serialized), and a timed stress mix of create, ask, cancel, destroy and stale handles on
//! 8 threads. `MM_STRESS_SECONDS` sets the mix's duration (default 5).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;

use mm_status::*;

/// A handle that can cross threads (it is a number, checked by the library).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Handle(usize);

impl Handle {
    fn ptr(self) -> *mut mm_session {
        self.0 as *mut mm_session
    }
}

fn small_params() -> mm_session_params {
    let mut p = params(models());
    p.n_ctx = 512;
    p
}

fn ask_once(h: Handle, prompt: &str, max_tokens: i32, with_image: bool) -> Result<String, (mm_status, String)> {
    let prompt = CString::new(prompt).unwrap();
    let media = [image_item(models())];
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = max_tokens;
    a.seed = 3;
    if with_image {
        a.media = media.as_ptr();
        a.n_media = 1;
    }
    ask(h.ptr(), &a)
}

#[test]
fn sessions_on_many_threads_at_once() {
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                let s = Handle(create(&small_params()).unwrap() as usize);
                for i in 0..3 {
                    ask_once(s, &format!("thread {t} question {i}"), 8, i % 2 == 0).unwrap();
                }
                assert_eq!(mm_session_destroy(s.ptr()), MM_OK);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(mm_live_sessions(), 0);
}

#[test]
fn one_session_from_several_threads_is_serialized() {
    let s = Handle(create(&small_params()).unwrap() as usize);
    let answers: Vec<String> = (0..6)
        .map(|_| std::thread::spawn(move || ask_once(s, "The same question", 12, true).unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    // Calls ran one at a time on a consistent cache: the same request gave the same answer.
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(mm_session_destroy(s.ptr()), MM_OK);
    assert_eq!(mm_live_sessions(), 0);
}

/// What each operation may answer while other threads destroy sessions under it.
fn allowed(op: &str, st: mm_status) -> bool {
    match op {
        "create" | "count" => st == MM_OK,
        "fork" => matches!(st, MM_OK | MM_ERR_INVALID_HANDLE),
        "ask" | "ask-long" => matches!(st, MM_OK | MM_ERR_CANCELLED | MM_ERR_INVALID_HANDLE),
        "cancel" | "info" | "reset" => matches!(st, MM_OK | MM_ERR_INVALID_HANDLE),
        "destroy" => st == MM_OK,
        "stale" => st == MM_ERR_INVALID_HANDLE,
        _ => false,
    }
}

#[test]
fn stress_mix_on_eight_threads() {
    let seconds: u64 = std::env::var("MM_STRESS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let live: Arc<Mutex<Vec<Handle>>> = Arc::new(Mutex::new(Vec::new()));
    let dead: Arc<Mutex<Vec<Handle>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (live, dead) = (live.clone(), dead.clone());
            std::thread::spawn(move || {
                let mut rng = t * 7919 + 1;
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                let mut failures = Vec::new();
                while Instant::now() < deadline {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let pick = |v: &Vec<Handle>| (!v.is_empty()).then(|| v[(rng >> 8) as usize % v.len()]);
                    let roll = rng % 100;
                    let (op, st) = if roll < 12 && live.lock().unwrap().len() < 6 {
                        match create(&small_params()) {
                            Ok(s) => {
                                live.lock().unwrap().push(Handle(s as usize));
                                ("create", MM_OK)
                            }
                            Err((st, _)) => ("create", st),
                        }
                    } else if roll < 16 && live.lock().unwrap().len() < 8 {
                        let Some(parent) = pick(&live.lock().unwrap()) else { continue };
                        let mut fp = mm_fork_params_default();
                        fp.copy_conversation = rng % 2 == 0;
                        let mut out = std::ptr::null_mut();
                        let st = unsafe { mm_session_fork(parent.ptr(), &fp, &mut out) };
                        if st == MM_OK {
                            live.lock().unwrap().push(Handle(out as usize));
                        }
                        ("fork", st)
                    } else if roll < 20 {
                        let victim = {
                            let mut l = live.lock().unwrap();
                            pick(&l).inspect(|h| l.retain(|x| x != h))
                        };
                        match victim {
                            Some(h) => {
                                let st = mm_session_destroy(h.ptr());
                                dead.lock().unwrap().push(h);
                                ("destroy", st)
                            }
                            None => continue,
                        }
                    } else if roll < 28 {
                        match pick(&dead.lock().unwrap()) {
                            Some(h) => ("stale", ask_once(h, "anyone there?", 2, false).err().map_or(MM_OK, |e| e.0)),
                            None => continue,
                        }
                    } else {
                        let Some(h) = pick(&live.lock().unwrap()) else { continue };
                        match roll {
                            28..=39 => ("cancel", mm_session_cancel(h.ptr())),
                            40..=44 => ("reset", mm_session_reset(h.ptr())),
                            45..=49 => {
                                let mut i: mm_session_info = unsafe { std::mem::zeroed() };
                                i.struct_size = std::mem::size_of::<mm_session_info>() as u32;
                                ("info", unsafe { mm_session_get_info(h.ptr(), &mut i) })
                            }
                            50..=59 => {
                                ("ask-long", ask_once(h, "tell a long story", 200, false).err().map_or(MM_OK, |e| e.0))
                            }
                            _ => (
                                "ask",
                                ask_once(h, &format!("question {}", rng % 5), 6, rng % 3 == 0)
                                    .err()
                                    .map_or(MM_OK, |e| e.0),
                            ),
                        }
                    };
                    *counts.entry(format!("{op} {st:?}")).or_default() += 1;
                    if !allowed(op, st) {
                        failures.push(format!("thread {t}: {op} gave {st:?}: {}", last_error()));
                    }
                }
                (counts, failures)
            })
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for t in threads {
        let (c, f) = t.join().unwrap();
        for (k, v) in c {
            *counts.entry(k).or_default() += v;
        }
        failures.extend(f);
    }
    for h in live.lock().unwrap().drain(..) {
        assert_eq!(mm_session_destroy(h.ptr()), MM_OK);
    }
    eprintln!("stress mix, 8 threads, {seconds} s:");
    for (k, v) in &counts {
        eprintln!("  {v:6}  {k}");
    }
    assert!(failures.is_empty(), "{} unexpected results:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(mm_live_sessions(), 0, "every session is gone");
    assert_eq!(mm_loaded_models(), 0, "every model is freed");
    assert!(
        counts.keys().any(|k| k.starts_with("ask MM_OK")) && counts.keys().any(|k| k.starts_with("destroy")),
        "the mix ran: {counts:?}"
    );
}
