//! What `bench`, `bench_batch` and `gpu_check` share: the generated model pairs and images, sessions made and
//! asked through the C API (as a C program calls it), clocks, medians and resident memory.

#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use llama_cpp_sys_2 as sys;
use mm_fixtures::{self as fixtures, FixtureSpec};

/// Side of the bench pair's request image, a PNG file (resized to the tower's 224 px).
pub const BENCH_IMAGE_SIDE: u32 = 448;

/// A generated model pair and an image for it.
pub struct Pair {
    pub model: CString,
    pub mmproj: CString,
    pub image: CString,
}

/// The tiny pair (`FixtureSpec::default`, a 48x40 image) and the bench pair
/// (`FixtureSpec::bench`, a `BENCH_IMAGE_SIDE` px image), written under `dir`.
pub struct Fixtures {
    pub tiny: Pair,
    pub bench: Pair,
}

fn c_path(p: &Path) -> CString {
    CString::new(p.to_string_lossy().as_bytes()).expect("paths have no NUL")
}

impl Fixtures {
    /// Writes the fixtures under `dir`, leaving files that already hold the same bytes as they
    /// are: the library remembers what it found about unchanged files (a service's model and
    /// image files are old), and a rewritten file counts as changed.
    pub fn write(dir: &Path) -> Fixtures {
        let fresh = dir.join(format!("fresh-{}", std::process::id()));
        let pair = |sub: &str, spec: &FixtureSpec| -> Pair {
            fixtures::write_all(&fresh.join(sub), spec).unwrap_or_else(|e| panic!("fixtures: {e}"));
            let d = dir.join(sub);
            Pair {
                model: c_path(&d.join(fixtures::MODEL_FILE)),
                mmproj: c_path(&d.join(fixtures::MMPROJ_FILE)),
                image: c_path(&d.join(fixtures::IMAGE_FILE)),
            }
        };
        let tiny = pair("tiny", &FixtureSpec::default());
        let mut bench = pair("bench", &FixtureSpec::bench());
        let side = BENCH_IMAGE_SIDE;
        std::fs::write(
            fresh.join("bench/bench-image.png"),
            fixtures::png_rgb(side, side, &fixtures::test_pattern(side, side, 7)),
        )
        .expect("bench image");
        bench.image = c_path(&dir.join("bench/bench-image.png"));
        for sub in ["tiny", "bench"] {
            std::fs::create_dir_all(dir.join(sub)).expect("fixture folder");
            for entry in std::fs::read_dir(fresh.join(sub)).expect("fresh fixtures") {
                let from = entry.expect("fixture").path();
                let to = dir.join(sub).join(from.file_name().expect("a file"));
                if std::fs::read(&to).ok() != std::fs::read(&from).ok() {
                    std::fs::rename(&from, &to).expect("fixture in place");
                }
            }
        }
        std::fs::remove_dir_all(&fresh).expect("fresh fixtures removed");
        Fixtures { tiny, bench }
    }
}

/// Where the bench programs write their fixtures: `MM_BENCH_DIR`, or build/bench-fixtures.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("MM_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("build/bench-fixtures"))
}

/// The real text model of `MM_TEST_MODEL`, if set.
pub fn real_model() -> Option<CString> {
    std::env::var("MM_TEST_MODEL").ok().filter(|p| !p.is_empty()).map(|p| CString::new(p).expect("no NUL"))
}

/// Milliseconds on the benchmark's clock: wall time, or with `MM_BENCH_CLOCK=cpu` the calling
/// thread's CPU time (steadier on a machine other work keeps busy; every side runs on one thread).
pub fn clock_ms() -> f64 {
    static START: std::sync::OnceLock<(Instant, bool)> = std::sync::OnceLock::new();
    let (start, cpu) = *START.get_or_init(|| (Instant::now(), std::env::var("MM_BENCH_CLOCK").as_deref() == Ok("cpu")));
    if !cpu {
        return start.elapsed().as_secs_f64() * 1e3;
    }
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is writable; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Resident memory of this process, in kB (VmRSS).
pub fn rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

/// Gives freed heap pages back to the system, so that resident memory shows what is still held.
pub fn trim() {
    // SAFETY: glibc's malloc_trim takes any pad and only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

pub fn last_error() -> String {
    // SAFETY: mm_last_error never returns NULL.
    unsafe { CStr::from_ptr(mm_last_error()) }.to_string_lossy().into_owned()
}

/// Session parameters: one thread, a fixed seed, `n_ctx` positions, no projector when
/// `mmproj` is `None`.
pub fn session_params(model: &CStr, mmproj: Option<&CStr>, n_ctx: u32) -> mm_session_params {
    let mut p = mm_session_params_default();
    p.model_path = model.as_ptr();
    p.mmproj_path = mmproj.map_or(std::ptr::null(), CStr::as_ptr);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.seed = 1;
    p
}

pub fn create(p: &mm_session_params) -> *mut mm_session {
    let mut s = std::ptr::null_mut();
    // SAFETY: `p` and its strings are valid for the call.
    let st = unsafe { mm_session_create(p, &mut s) };
    assert_eq!(st, mm_status::MM_OK, "mm_session_create: {}", last_error());
    s
}

pub fn destroy(s: *mut mm_session) {
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK, "mm_session_destroy: {}", last_error());
}

/// A media item for an image file.
pub fn image_file(path: &CStr) -> mm_media {
    mm_media {
        kind: mm_media_kind::MM_MEDIA_FILE as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: path.as_ptr(),
        data: std::ptr::null(),
        size: 0,
    }
}

/// Greedy request parameters for `max_tokens` tokens.
pub fn greedy(max_tokens: i32) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.max_tokens = max_tokens;
    a.temperature = 0.0;
    a
}

/// Asks `a` and returns the answer.
pub fn ask(s: *mut mm_session, a: &mm_ask_params) -> String {
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: `a` and what it points to are valid for the call; the answer is freed below.
    unsafe {
        let st = mm_session_ask(s, a, &mut out);
        assert_eq!(st, mm_status::MM_OK, "mm_session_ask: {}", last_error());
        let text = CStr::from_ptr(out).to_string_lossy().into_owned();
        mm_string_free(out);
        text
    }
}

/// Asks `prompt` with `media`, greedy, for `max_tokens` tokens, from an empty cache.
pub fn ask_fresh(s: *mut mm_session, prompt: &CStr, media: &[mm_media], max_tokens: i32) -> String {
    assert_eq!(mm_session_reset(s), mm_status::MM_OK);
    let mut a = greedy(max_tokens);
    a.prompt = prompt.as_ptr();
    a.media = media.as_ptr();
    a.n_media = media.len();
    ask(s, &a)
}

/// Figures of the session's last request.
pub fn last_ask(s: *mut mm_session) -> mm_ask_info {
    // SAFETY: all-zero is a valid mm_ask_info; struct_size is set before the call.
    let mut info: mm_ask_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::size_of::<mm_ask_info>() as u32;
    // SAFETY: `info` is writable and its size set.
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, mm_status::MM_OK);
    info
}

/// Turns the library's logs off (the figures go to stdout).
pub fn quiet() {
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_OFF as i32, None, std::ptr::null_mut()), mm_status::MM_OK);
}

/// `text` tokenized with llama.cpp's own call, as the library tokenizes a raw prompt: control
/// tokens' text becomes those tokens, and with `add_special` the model's BOS comes first.
pub fn raw_tokenize(vocab: *const sys::llama_vocab, text: &str, add_special: bool) -> Vec<sys::llama_token> {
    let mut tokens = vec![0; text.len() + 8];
    // SAFETY: `vocab` is a loaded model's; `text` and `tokens` are valid for their lengths.
    let n = unsafe {
        sys::llama_tokenize(
            vocab,
            text.as_ptr().cast(),
            text.len() as i32,
            tokens.as_mut_ptr(),
            tokens.len() as i32,
            add_special,
            true,
        )
    };
    assert!(n >= 0);
    tokens.truncate(n as usize);
    tokens
}
