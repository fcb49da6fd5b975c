//! Threads: sessions on many threads at once, one session called from several threads (calls
//! are serialized), and a timed stress mix of create, ask, cancel, destroy and stale handles on
//! 8 threads. `MM_STRESS_SECONDS` sets the mix's duration (default 5). Calls made from inside
//! callbacks never deadlock, and a child forked while a call runs gets a clear error.

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::state::*;
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
        // Loading waits for a slot, which a cancel or a destroy may interrupt.
        "state" => matches!(st, MM_OK | MM_ERR_INVALID_HANDLE | MM_ERR_CANCELLED),
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
    let states = tmp_dir("stress-mix");
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (live, dead, states) = (live.clone(), dead.clone(), states.clone());
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
                        // Half the sessions decode together with their forks (3 slots, so
                        // that forks beyond them wait for one, or lend an idle one).
                        let mut p = small_params();
                        p.n_parallel = if rng % 2 == 0 { 3 } else { 1 };
                        match create(&p) {
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
                    } else if roll < 24 {
                        // A saved conversation goes back in: its slot's, or its parked copy.
                        let Some(h) = pick(&live.lock().unwrap()) else { continue };
                        let path = path_c(&states.join(format!("thread-{t}.state")));
                        let mut st = unsafe { mm_session_save_state(h.ptr(), path.as_ptr()) };
                        if st == MM_OK {
                            st = unsafe { mm_session_load_state(h.ptr(), path.as_ptr()) };
                        }
                        ("state", st)
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

/// Every export that takes a session, called on `s`, with the status each returns. `other` is a
/// second live session (calls on it must work).
fn call_every_export(s: *mut mm_session, other: *mut mm_session, state: &CStr) -> Vec<(&'static str, mm_status)> {
    let prompt = c("hi");
    let a = prompt_params(&prompt);
    let mut n = 0u32;
    let mut info = ask_info();
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    let mut sinfo: mm_session_info = unsafe { std::mem::zeroed() };
    sinfo.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    unsafe {
        vec![
            ("mm_session_ask", status_of_ask(s, &a)),
            ("mm_session_count_tokens", mm_session_count_tokens(s, &a, &mut n)),
            ("mm_session_last_ask", mm_session_last_ask(s, &mut info)),
            ("mm_session_memory", mm_session_memory(s, &mut stats)),
            ("mm_session_get_info", mm_session_get_info(s, &mut sinfo)),
            ("mm_session_save_state", mm_session_save_state(s, state.as_ptr())),
            ("mm_session_load_state", mm_session_load_state(s, state.as_ptr())),
            ("mm_session_reset", mm_session_reset(s)),
            ("mm_session_destroy", mm_session_destroy(s)),
            ("mm_session_marker", if mm_session_marker(s).is_null() { MM_ERR_INTERNAL } else { MM_OK }),
            ("other session: ask", status_of_ask(other, &a)),
            ("mm_live_sessions", if mm_live_sessions() >= 2 { MM_OK } else { MM_ERR_INTERNAL }),
            ("mm_log_set", mm_log_set(mm_log_level::MM_LOG_DEBUG as i32, Some(log_probe), std::ptr::null_mut())),
        ]
    }
}

/// What a re-entrant call on the busy session must answer: every call that needs the session
/// is refused at once with MM_ERR_BUSY (destroy too); the marker and other sessions work.
fn check_reentrant(results: &[(&'static str, mm_status)], where_: &str) {
    assert!(!results.is_empty(), "{where_}: the callback never ran");
    for (name, st) in results {
        let want = if name.starts_with("mm_session_") && *name != "mm_session_marker" { MM_ERR_BUSY } else { MM_OK };
        assert_eq!(*st, want, "{where_}: {name}");
    }
}

/// A probe the callbacks fill: the session they call into, and what the calls returned.
struct Probe {
    session: *mut mm_session,
    other: *mut mm_session,
    state: CString,
    results: Vec<(&'static str, mm_status)>,
}

unsafe extern "C" fn on_text_probe(user_data: *mut c_void, _: *const c_char, _: usize) -> bool {
    let probe = unsafe { &mut *(user_data as *mut Probe) };
    if probe.results.is_empty() {
        probe.results = call_every_export(probe.session, probe.other, &probe.state);
    }
    true
}

/// The probe the log callback uses (a log callback's user data is process-wide).
static LOG_PROBE: AtomicPtr<Probe> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn log_probe(_: *mut c_void, _level: i32, _message: *const c_char) {
    let p = LOG_PROBE.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !p.is_null() {
        let probe = unsafe { &mut *p };
        probe.results = call_every_export(probe.session, probe.other, &probe.state);
    }
}

unsafe extern "C" fn progress_probe(user_data: *mut c_void, _: f32) -> bool {
    let probe = unsafe { &mut *(user_data as *mut Probe) };
    if probe.results.is_empty() {
        // The session being created has no handle yet: calls on other sessions must just work.
        let prompt = c("hi");
        let a = prompt_params(&prompt);
        let mut n = 0;
        probe.results = unsafe {
            vec![
                ("other session: ask", status_of_ask(probe.other, &a)),
                ("other session: count", mm_session_count_tokens(probe.other, &a, &mut n)),
                ("other session: reset", mm_session_reset(probe.other)),
                ("mm_log_set", mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut())),
            ]
        };
    }
    true
}

#[test]
fn calls_from_inside_callbacks_never_deadlock() {
    let m = models();
    let live = mm_live_sessions();
    let state = c(fixture_dir().join("reentrant.mmstate").to_str().unwrap());
    let s = create(&params(m)).unwrap();
    let other = create(&params(m)).unwrap();

    // From inside on_text.
    let mut probe = Probe { session: s, other, state: state.clone(), results: Vec::new() };
    let prompt = c("Describe it.");
    let mut a = prompt_params(&prompt);
    a.on_text = Some(on_text_probe);
    a.user_data = &mut probe as *mut Probe as *mut c_void;
    a.temperature = 0.8;
    a.max_tokens = 8;
    let st = status_of_ask(s, &a);
    assert_eq!(st, MM_OK, "{}", last_error());
    check_reentrant(&probe.results, "on_text");

    // From inside the log callback, while the session encodes an image (mtmd logs then).
    let mut probe = Probe { session: s, other, state: state.clone(), results: Vec::new() };
    LOG_PROBE.store(&mut probe, Ordering::SeqCst);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_DEBUG as i32, Some(log_probe), std::ptr::null_mut()), MM_OK);
    let media = [image_item(m)];
    let mut a = prompt_params(&prompt);
    a.media = media.as_ptr();
    a.n_media = 1;
    let st = status_of_ask(s, &a);
    LOG_PROBE.store(std::ptr::null_mut(), Ordering::SeqCst);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), MM_OK);
    assert_eq!(st, MM_OK, "{}", last_error());
    check_reentrant(&probe.results, "log callback");

    // From inside the progress callback of another session's create.
    let mut probe = Probe { session: std::ptr::null_mut(), other, state, results: Vec::new() };
    let mut p = params(m);
    p.progress_callback = Some(progress_probe);
    p.progress_user_data = &mut probe as *mut Probe as *mut c_void;
    let third = create(&p).unwrap();
    assert!(probe.results.iter().all(|(_, st)| *st == MM_OK), "{:?}", probe.results);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), MM_OK);

    // Cancel from inside on_text works as from any thread: the call stops.
    unsafe extern "C" fn cancel_self(user_data: *mut c_void, _: *const c_char, _: usize) -> bool {
        mm_session_cancel(user_data as *mut mm_session) == MM_OK
    }
    let mut a = prompt_params(&prompt);
    a.on_text = Some(cancel_self);
    a.user_data = s as *mut c_void;
    a.max_tokens = 50;
    a.temperature = 0.8;
    assert_eq!(status_of_ask(s, &a), MM_ERR_CANCELLED);
    assert_eq!(status_of_ask(s, &prompt_params(&prompt)), MM_OK, "the session stays usable");

    for x in [s, other, third] {
        assert_eq!(mm_session_destroy(x), MM_OK);
    }
    assert_eq!(mm_live_sessions(), live);
}

#[test]
fn a_forked_child_gets_a_clear_error_even_while_a_call_runs() {
    let m = models();
    let s = create(&params(m)).unwrap();
    // A call that is still running when the process forks: its thread holds the session.
    unsafe extern "C" fn slow(_: *mut c_void, _: *const c_char, _: usize) -> bool {
        std::thread::sleep(std::time::Duration::from_millis(20));
        true
    }
    let handle = s as usize;
    let running = std::thread::spawn(move || {
        let prompt = c("Go on and on.");
        let mut a = prompt_params(&prompt);
        a.on_text = Some(slow);
        a.max_tokens = 500;
        a.temperature = 0.8;
        status_of_ask(handle as *mut mm_session, &a)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child: every call answers at once, none waits for the parent's thread.
        let prompt = c("hi");
        let mut out = std::ptr::null_mut();
        let p = params(m);
        let codes = unsafe {
            [
                mm_session_ask(s, &prompt_params(&prompt), &mut out) as i32,
                mm_session_create(&p, &mut out as *mut _ as *mut *mut mm_session) as i32,
                mm_session_destroy(s) as i32,
                mm_log_set(mm_log_level::MM_LOG_WARN as i32, None, std::ptr::null_mut()) as i32,
            ]
        };
        let bytes: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
        unsafe {
            libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut buf = [0u8; 16];
    let mut poll = libc::pollfd { fd: fds[0], events: libc::POLLIN, revents: 0 };
    let ready = unsafe { libc::poll(&mut poll, 1, 20_000) };
    let n = if ready == 1 { unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) } } else { 0 };
    if ready != 1 {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(mm_session_cancel(s), MM_OK);
    assert!(matches!(running.join().unwrap(), MM_OK | MM_ERR_CANCELLED));
    assert_eq!(n, 16, "the forked child blocked or died (status {status})");
    let codes: Vec<i32> = buf.chunks(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(codes, vec![MM_ERR_FORKED as i32; 4]);
    assert_eq!(mm_session_destroy(s), MM_OK);
}
