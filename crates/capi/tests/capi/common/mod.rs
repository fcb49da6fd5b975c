//! Models for the tests: the generated fixtures, or real ones from `MM_TEST_MODEL` and
//! `MM_TEST_MMPROJ`. Written once per test binary (all modules share them).

#![allow(dead_code)]

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use ::mm_session::ask::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use mm_fixtures::{self as fixtures, FixtureSpec};

pub mod json;
pub mod llama_chat;

pub struct Models {
    pub model: CString,
    pub mmproj: CString,
    pub image: CString,
    pub dir: PathBuf,
}

/// The generated fixtures live in a folder of their own per test binary.
pub fn fixture_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fixtures-{name}"))
}

/// The name the test harness gives the test `name` of the module `module` (`module_path!()`,
/// whose first segment is the test binary's crate), as `--exact` takes it: for the tests that
/// run the test binary again as a child process running one test.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

pub fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = fixture_dir();
        fixtures::write_all(&dir, &FixtureSpec::default()).expect("fixtures");
        let path = |var: &str, file: &str| {
            let p = std::env::var(var).unwrap_or_else(|_| dir.join(file).to_string_lossy().into_owned());
            CString::new(p).unwrap()
        };
        // Quiet tests: only errors reach stderr.
        assert_eq!(
            mm_log_set(::mm_session::library::mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()),
            mm_status::MM_OK
        );
        Models {
            model: path("MM_TEST_MODEL", fixtures::MODEL_FILE),
            mmproj: path("MM_TEST_MMPROJ", fixtures::MMPROJ_FILE),
            image: CString::new(dir.join(fixtures::IMAGE_FILE).to_string_lossy().as_bytes()).unwrap(),
            dir,
        }
    })
}

/// Session parameters for the test models: 1 thread, small context, fixed seed.
pub fn params(m: &Models) -> mm_session_params {
    let mut p = mm_session_params_default();
    p.model_path = m.model.as_ptr();
    p.mmproj_path = m.mmproj.as_ptr();
    p.n_ctx = 1024;
    p.n_threads = 1;
    p.seed = 1234;
    p
}

pub fn last_error() -> String {
    unsafe { CStr::from_ptr(mm_last_error()) }.to_string_lossy().into_owned()
}

pub fn create(p: &mm_session_params) -> Result<*mut mm_session, (mm_status, String)> {
    let mut s = std::ptr::null_mut();
    match unsafe { mm_session_create(p, &mut s) } {
        mm_status::MM_OK => Ok(s),
        st => {
            assert!(s.is_null(), "a failed create must leave *out NULL");
            Err((st, last_error()))
        }
    }
}

pub fn image_item(m: &Models) -> mm_media {
    mm_media {
        kind: mm_media_kind::MM_MEDIA_FILE as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: m.image.as_ptr(),
        data: std::ptr::null(),
        size: 0,
    }
}

/// A media item of `kind` whose bytes are `bytes` (borrowed: they must outlive the request);
/// raw pixels also need their width and height.
pub fn bytes_item(kind: mm_media_kind, bytes: &[u8]) -> mm_media {
    mm_media {
        kind: kind as i32,
        width: 0,
        height: 0,
        reserved0: 0,
        path: std::ptr::null(),
        data: bytes.as_ptr(),
        size: bytes.len(),
    }
}

/// A media item of encoded bytes (a file's contents: PNG, JPEG, WAV, ...).
pub fn encoded_item(bytes: &[u8]) -> mm_media {
    bytes_item(mm_media_kind::MM_MEDIA_ENCODED, bytes)
}

/// Asks and returns the whole text, or the status and message.
pub fn ask(s: *mut mm_session, a: &mm_ask_params) -> Result<String, (mm_status, String)> {
    let mut out: *mut std::os::raw::c_char = std::ptr::null_mut();
    match unsafe { mm_session_ask(s, a, &mut out) } {
        mm_status::MM_OK => {
            let text = unsafe { CStr::from_ptr(out) }.to_str().expect("answers are UTF-8").to_owned();
            unsafe { mm_string_free(out) };
            Ok(text)
        }
        st => {
            assert!(out.is_null(), "a failed ask must leave *out_text NULL");
            Err((st, last_error()))
        }
    }
}

/// An `mm_ask_info` ready to be filled.
pub fn ask_info() -> ::mm_session::conversation::mm_ask_info {
    let mut info: ::mm_session::conversation::mm_ask_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::size_of_val(&info) as u32;
    info
}

/// A model and a one-thread context of 1024 positions made with llama.cpp's API alone, for
/// comparisons with the library. The caller frees both.
pub unsafe fn raw_model_and_context(
    model_path: &CStr,
) -> (*mut llama_cpp_sys_2::llama_model, *mut llama_cpp_sys_2::llama_context) {
    use llama_cpp_sys_2 as sys;
    let model = sys::llama_model_load_from_file(model_path.as_ptr(), sys::llama_model_default_params());
    assert!(!model.is_null());
    let mut cp = sys::llama_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    let ctx = sys::llama_init_from_model(model, cp);
    assert!(!ctx.is_null());
    (model, ctx)
}

/// A chat whose strings and media stay alive with it.
pub struct Chat {
    strings: Vec<CString>,
    media: Vec<Vec<mm_media>>,
    messages: Vec<mm_message>,
}

impl Chat {
    pub fn new(turns: &[(&str, &str, Vec<mm_media>)]) -> Chat {
        let mut chat = Chat { strings: Vec::new(), media: Vec::new(), messages: Vec::new() };
        for (role, text, media) in turns {
            chat.strings.push(CString::new(*role).unwrap());
            chat.strings.push(CString::new(*text).unwrap());
            chat.media.push(media.clone());
        }
        for (i, m) in chat.media.iter().enumerate() {
            chat.messages.push(mm_message {
                role: chat.strings[2 * i].as_ptr(),
                text: chat.strings[2 * i + 1].as_ptr(),
                media: if m.is_empty() { std::ptr::null() } else { m.as_ptr() },
                n_media: m.len(),
            });
        }
        chat
    }

    /// `a` with this chat as its messages.
    pub fn on(&self, mut a: mm_ask_params) -> mm_ask_params {
        a.messages = self.messages.as_ptr();
        a.n_messages = self.messages.len();
        a
    }
}

/// A C string of a Rust one.
pub fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Greedy request parameters for `prompt` (owned by the caller), 4 tokens at most.
pub fn prompt_params(prompt: &CString) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.max_tokens = 4;
    a.temperature = 0.0;
    a
}

/// Resident memory of this process, in kB.
pub fn rss_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4
}

/// A C string of a path.
pub fn path_c(p: &Path) -> CString {
    c(p.to_str().unwrap())
}

/// Asks and returns the status only (the text, if any, is freed).
pub fn status_of_ask(s: *mut mm_session, a: &mm_ask_params) -> mm_status {
    let mut out = std::ptr::null_mut();
    let st = unsafe { mm_session_ask(s, a, &mut out) };
    unsafe { mm_string_free(out) };
    st
}

/// An empty folder `name` in the fixture folder (emptied if it was there).
pub fn tmp_dir(name: &str) -> PathBuf {
    let dir = fixture_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Warning and error messages logged while a test watches ([`record_log`] set as the log
/// callback, [`WATCH`] true): one log callback serves the whole process.
pub static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether [`record_log`] keeps what it is sent.
pub static WATCH: AtomicBool = AtomicBool::new(false);

/// A log callback that keeps warnings and errors in [`LOGGED`] while [`WATCH`] is set.
pub unsafe extern "C" fn record_log(_: *mut c_void, level: i32, message: *const c_char) {
    if WATCH.load(Ordering::SeqCst) && level >= mm_log_level::MM_LOG_WARN as i32 {
        LOGGED.lock().unwrap().push(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned());
    }
}
