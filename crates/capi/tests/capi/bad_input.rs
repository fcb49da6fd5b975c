//! Bad input through the C API: NULL for every pointer, malformed params structs, strings that
//! are not UTF-8, bad paths, broken or oversized media, media sizes that lie, bad sampling
//! values, and panics inside every export. Each case checks its status, its message, and that no session was left
//! alive or lost.

mod gguf;

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::path::Path;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::mm_ask_info;
use ::mm_session::conversation::*;
use ::mm_session::inject_panic_for_tests;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::state::*;
use ::mm_session::status::mm_status;
use mm_fixtures::{self as fixtures, FixtureSpec};

use mm_status::*;

/// Checks one failing call: its status, a message naming `names`, and the live count.
fn expect(got: mm_status, want: mm_status, names: &str) {
    let msg = last_error();
    assert_eq!(got, want, "wanted {want:?} ({names}), got {got:?}: {msg}");
    assert!(msg.contains(names), "message should name '{names}': {msg}");
}

fn ask_status(s: *mut mm_session, a: &mm_ask_params) -> mm_status {
    let mut out: *mut c_char = std::ptr::null_mut();
    let st = unsafe { mm_session_ask(s, a, &mut out) };
    if st == MM_OK {
        unsafe { mm_string_free(out) };
    } else {
        assert!(out.is_null());
    }
    st
}

#[test]
fn null_for_every_pointer_argument() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let live = mm_live_sessions();
    let prompt = c("hi");
    let a = prompt_params(&prompt);
    let mut n = 0u32;
    let mut info = ask_info();
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    let mut sinfo: mm_session_info = unsafe { std::mem::zeroed() };
    sinfo.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    let mut out: *mut mm_session = std::ptr::null_mut();
    let null = std::ptr::null_mut();
    unsafe {
        expect(mm_session_create(std::ptr::null(), &mut out), MM_ERR_NULL_ARGUMENT, "params");
        expect(mm_session_create(&params(m), std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out");
        expect(mm_session_ask(null, &a, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_ask(s, std::ptr::null(), std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params");
        expect(mm_session_count_tokens(null, &a, &mut n), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_count_tokens(s, std::ptr::null(), &mut n), MM_ERR_NULL_ARGUMENT, "params");
        expect(mm_session_count_tokens(s, &a, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out_positions");
        expect(mm_session_last_ask(null, &mut info), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_last_ask(s, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out");
        let mut json: *mut std::os::raw::c_char = std::ptr::null_mut();
        expect(mm_session_last_message(null, &mut json), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_last_message(s, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out_json");
        expect(mm_session_apply_template(null, &a, &mut json), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_apply_template(s, std::ptr::null(), &mut json), MM_ERR_NULL_ARGUMENT, "params");
        expect(mm_session_apply_template(s, &a, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out_text");
        expect(mm_session_memory(null, &mut stats), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_memory(s, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out");
        expect(mm_session_get_info(null, &mut sinfo), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_get_info(s, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out");
        expect(mm_session_save_state(null, prompt.as_ptr()), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_save_state(s, std::ptr::null()), MM_ERR_NULL_ARGUMENT, "path");
        expect(mm_session_load_state(null, prompt.as_ptr()), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_load_state(s, std::ptr::null()), MM_ERR_NULL_ARGUMENT, "path");
        expect(mm_session_cancel(null), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_reset(null), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_fork(null, std::ptr::null(), &mut out), MM_ERR_NULL_ARGUMENT, "session");
        expect(mm_session_fork(s, std::ptr::null(), std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "out");
        let mut n_tokens = 0usize;
        let mut tokens = [0i32; 4];
        expect(
            mm_session_tokenize(null, prompt.as_ptr(), false, tokens.as_mut_ptr(), 4, &mut n_tokens),
            MM_ERR_NULL_ARGUMENT,
            "session",
        );
        expect(
            mm_session_tokenize(s, std::ptr::null(), false, tokens.as_mut_ptr(), 4, &mut n_tokens),
            MM_ERR_NULL_ARGUMENT,
            "text",
        );
        expect(
            mm_session_tokenize(s, prompt.as_ptr(), false, std::ptr::null_mut(), 4, &mut n_tokens),
            MM_ERR_NULL_ARGUMENT,
            "tokens",
        );
        expect(
            mm_session_tokenize(s, prompt.as_ptr(), false, tokens.as_mut_ptr(), 4, std::ptr::null_mut()),
            MM_ERR_NULL_ARGUMENT,
            "out_n_tokens",
        );
        assert!(mm_session_marker(null).is_null());
        assert_eq!(mm_session_destroy(null), MM_OK, "destroy(NULL) is a no-op");
        mm_string_free(std::ptr::null_mut());
        assert_eq!(
            mm_log_set(::mm_session::library::mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()),
            MM_OK,
            "a NULL callback means stderr"
        );
        assert!(!mm_last_error().is_null() && !mm_version().is_null() && !mm_status_str(12345).is_null());

        // NULL inside the params: strings, arrays with a count, a message's fields.
        let mut p = params(m);
        p.model_path = std::ptr::null();
        expect(mm_session_create(&p, &mut out), MM_ERR_NULL_ARGUMENT, "params.model_path");
        let mut b = a;
        b.prompt = std::ptr::null();
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.prompt");
        let mut b = a;
        b.n_media = 2;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.media");
        let mut b = a;
        b.n_stop = 1;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.stop");
        let mut b = a;
        b.n_logit_bias = 1;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.logit_bias");
        let stops = [std::ptr::null::<c_char>()];
        let mut b = a;
        b.stop = stops.as_ptr();
        b.n_stop = 1;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.stop[0]");
        let media = [mm_media {
            kind: mm_media_kind::MM_MEDIA_FILE as i32,
            width: 0,
            height: 0,
            reserved0: 0,
            path: std::ptr::null(),
            data: std::ptr::null(),
            size: 0,
        }];
        let mut b = a;
        b.media = media.as_ptr();
        b.n_media = 1;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "media[0].path");
        let encoded = [mm_media { kind: mm_media_kind::MM_MEDIA_ENCODED as i32, size: 10, ..media[0] }];
        b.media = encoded.as_ptr();
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "media[0].data");
        let role = c("user");
        let messages =
            [mm_message { role: role.as_ptr(), text: std::ptr::null(), media: std::ptr::null(), n_media: 0 }];
        let mut b = mm_ask_params_default();
        b.messages = messages.as_ptr();
        b.n_messages = 1;
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "messages[0].text");
        b.messages = std::ptr::null();
        expect(mm_session_ask(s, &b, std::ptr::null_mut()), MM_ERR_NULL_ARGUMENT, "params.messages");
    }
    assert_eq!(mm_live_sessions(), live);
    mm_session_destroy(s);
}

/// Version 2 of the params in a build without RPC: servers are refused, saying how to build
/// with RPC (a version-1 caller never reaches the field), and a layer split is checked against
/// the devices there are (none in a CPU build).
#[cfg(not(feature = "rpc"))]
#[test]
fn rpc_params_without_rpc() {
    let m = models();
    let live = mm_live_sessions();
    let mut out = std::ptr::null_mut();
    let servers = c("127.0.0.1:50052");
    let mut p = params(m);
    p.rpc_servers = servers.as_ptr();
    expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_UNSUPPORTED, "cargo feature `rpc`");
    p.struct_size = std::mem::offset_of!(mm_session_params, rpc_servers) as u32;
    let s = create(&p).expect("a version-1 caller names no servers");
    mm_session_destroy(s);
    let mut p = params(m);
    let share = [1.0f32];
    p.tensor_split = share.as_ptr();
    p.n_tensor_split = 1;
    expect(
        unsafe { mm_session_create(&p, &mut out) },
        MM_ERR_INVALID_ARGUMENT,
        "tensor_split has 1 entries, but there are 0 devices",
    );
    p.tensor_split = std::ptr::null();
    expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_NULL_ARGUMENT, "params.tensor_split");
    assert_eq!(mm_live_sessions(), live);
}

#[test]
fn params_struct_sizes() {
    let m = models();
    let mut out = std::ptr::null_mut();
    // Found by fuzz_params: a size that ends between the progress callback and its user data
    // made the library call the callback with NULL user data. Sizes inside a version are refused.
    let cut = std::mem::offset_of!(mm_session_params, progress_user_data) as u32;
    let inside = std::mem::offset_of!(mm_session_params, n_batch) as u32;
    for size in [0u32, 1, 4, 8, 12, inside, cut] {
        let mut p = params(m);
        p.struct_size = size;
        expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_INVALID_ARGUMENT, "struct_size");
    }
    // An older caller: fields past its struct are not read (n_ctx 1 would be refused).
    let mut p = params(m);
    p.struct_size =
        (std::mem::offset_of!(mm_session_params, mmproj_path) + std::mem::size_of::<*const c_char>()) as u32;
    p.n_ctx = 1;
    let s = create(&p).expect("an older, shorter struct works");
    mm_session_destroy(s);
    // A size larger than the library's struct (a newer header, or a false size) is refused
    // without reading past the library's own size: the structs end where an unreadable page
    // starts, so a read past them would fault.
    let larger = |size: usize| size as u32 + 64;
    let mut p = params(m);
    p.struct_size = larger(std::mem::size_of::<mm_session_params>());
    let guarded = PageEnd::new(p);
    expect(
        unsafe { mm_session_create(guarded.ptr(), &mut out) },
        MM_ERR_INVALID_ARGUMENT,
        "larger than this library's",
    );
    let s = create(&params(m)).unwrap();
    let mut f = mm_fork_params_default();
    f.struct_size = larger(std::mem::size_of::<mm_fork_params>());
    let guarded = PageEnd::new(f);
    expect(
        unsafe { mm_session_fork(s, guarded.ptr(), &mut out) },
        MM_ERR_INVALID_ARGUMENT,
        "larger than this library's",
    );
    let prompt = c("hi");
    let mut a = prompt_params(&prompt);
    a.struct_size = larger(std::mem::size_of::<mm_ask_params>());
    let guarded = PageEnd::new(a);
    expect(ask_status(s, unsafe { &*guarded.ptr() }), MM_ERR_INVALID_ARGUMENT, "larger than this library's");
    mm_session_destroy(s);
    // The same rules for request params and for output structs.
    let s = create(&params(m)).unwrap();
    let prompt = c("hi");
    let mut a = prompt_params(&prompt);
    a.struct_size = 3;
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "struct_size");
    // A caller of version 1 (before penalties, logit bias, JSON Schema, log-probabilities):
    // what lies past its struct is never read.
    let mut old = prompt_params(&prompt);
    old.struct_size = std::mem::offset_of!(mm_ask_params, repeat_penalty) as u32;
    old.repeat_penalty = -1.0;
    old.n_logit_bias = 5;
    assert_eq!(ask_status(s, &old), MM_OK, "{}", last_error());
    let mut info: mm_ask_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::offset_of!(mm_ask_info, prompt_tokens) as u32;
    info.prompt_tokens = 77;
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
    assert!(info.prompt_positions > 0 && info.prompt_tokens == 77, "a version 1 mm_ask_info gets its own bytes only");
    let mut info: mm_ask_info = unsafe { std::mem::zeroed() };
    expect(unsafe { mm_session_last_ask(s, &mut info) }, MM_ERR_INVALID_ARGUMENT, "struct_size");
    // A shorter output struct gets only its own bytes.
    info.struct_size = 8;
    info.positions_reused = 77;
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, MM_OK);
    assert_eq!((info.struct_size, info.positions_reused), (8, 77));
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

/// `value`'s bytes with the byte at `offset` set to `byte`, kept as bytes: a `bool` field set
/// to anything but 0 or 1 must never be a Rust value, here as in the library.
fn with_byte<T>(value: T, offset: usize, byte: u8) -> std::mem::MaybeUninit<T> {
    assert!(offset < std::mem::size_of::<T>());
    let mut raw = std::mem::MaybeUninit::new(value);
    // SAFETY: `offset` is inside the value (checked above), and it stays a MaybeUninit.
    unsafe { raw.as_mut_ptr().cast::<u8>().add(offset).write(byte) };
    raw
}

/// A C caller can put any byte in a `bool` field of a params struct, and in Rust a bool other
/// than 0 or 1 is undefined behaviour: the library checks each bool byte of every struct it
/// reads before it makes the Rust struct. 2 and 255 are refused with `MM_ERR_INVALID_ARGUMENT`
/// naming the field and its byte; 0 and 1 still work.
#[test]
fn bool_fields_take_only_0_or_1() {
    use std::mem::offset_of;
    let m = models();
    let live = mm_live_sessions();

    let session_bools = [
        (offset_of!(mm_session_params, mmproj_use_gpu), "mmproj_use_gpu"),
        (offset_of!(mm_session_params, use_mmap), "use_mmap"),
        (offset_of!(mm_session_params, use_mlock), "use_mlock"),
    ];
    for (offset, field) in session_bools {
        for byte in [2u8, 255] {
            let p = with_byte(params(m), offset, byte);
            let mut out = std::ptr::null_mut();
            expect(
                unsafe { mm_session_create(p.as_ptr(), &mut out) },
                MM_ERR_INVALID_ARGUMENT,
                &format!("params.{field} is {byte}, not a bool"),
            );
            assert!(out.is_null());
        }
        for byte in [0u8, 1] {
            let p = with_byte(params(m), offset, byte);
            let mut out = std::ptr::null_mut();
            assert_eq!(unsafe { mm_session_create(p.as_ptr(), &mut out) }, MM_OK, "{field} = {byte}: {}", last_error());
            assert_eq!(mm_session_destroy(out), MM_OK);
        }
    }

    let s = create(&params(m)).unwrap();
    let fork_bool = offset_of!(mm_fork_params, copy_conversation);
    for byte in [2u8, 255] {
        let p = with_byte(mm_fork_params_default(), fork_bool, byte);
        let mut out = std::ptr::null_mut();
        expect(
            unsafe { mm_session_fork(s, p.as_ptr(), &mut out) },
            MM_ERR_INVALID_ARGUMENT,
            &format!("params.copy_conversation is {byte}, not a bool"),
        );
        assert!(out.is_null());
    }
    for byte in [0u8, 1] {
        let p = with_byte(mm_fork_params_default(), fork_bool, byte);
        let mut out = std::ptr::null_mut();
        assert_eq!(
            unsafe { mm_session_fork(s, p.as_ptr(), &mut out) },
            MM_OK,
            "copy_conversation = {byte}: {}",
            last_error()
        );
        assert_eq!(mm_session_destroy(out), MM_OK);
    }

    // mm_ask_params is read by both exports that take it.
    let prompt = c("hello");
    let ask_bool = offset_of!(mm_ask_params, plain_prompt);
    for byte in [2u8, 255] {
        let a = with_byte(prompt_params(&prompt), ask_bool, byte);
        let mut text: *mut c_char = std::ptr::null_mut();
        let names = format!("params.plain_prompt is {byte}, not a bool");
        expect(unsafe { mm_session_ask(s, a.as_ptr(), &mut text) }, MM_ERR_INVALID_ARGUMENT, &names);
        assert!(text.is_null());
        let mut n = 0u32;
        expect(unsafe { mm_session_count_tokens(s, a.as_ptr(), &mut n) }, MM_ERR_INVALID_ARGUMENT, &names);
    }
    for byte in [0u8, 1] {
        let a = with_byte(prompt_params(&prompt), ask_bool, byte);
        // SAFETY: 0 and 1 are valid bools, so the bytes are a valid mm_ask_params.
        let a = unsafe { a.assume_init() };
        assert_eq!(ask_status(s, &a), MM_OK, "plain_prompt = {byte}: {}", last_error());
        let mut n = 0u32;
        assert_eq!(unsafe { mm_session_count_tokens(s, &a, &mut n) }, MM_OK, "plain_prompt = {byte}: {}", last_error());
        assert!(n > 0);
    }
    assert_eq!(mm_session_destroy(s), MM_OK);
    assert_eq!(mm_live_sessions(), live);
}

/// A marker with whitespace at an end would be cut by templates that trim messages, or doubled
/// by the newline placed after it ("\n" made a chat with an image and no marker panic).
#[test]
fn markers_with_whitespace_at_an_end_are_refused() {
    let m = models();
    let mut out = std::ptr::null_mut();
    for marker in ["\n", " ", " <img>", "<img>\t"] {
        let marker = c(marker);
        let mut p = params(m);
        p.media_marker = marker.as_ptr();
        expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_INVALID_ARGUMENT, "media_marker");
    }
    assert_eq!(mm_live_sessions(), 0);
}

#[test]
fn strings_that_are_not_utf8() {
    let m = models();
    let bad = CString::new(vec![b'a', 0xFF, 0xFE, b'b']).unwrap();
    let mut p = params(m);
    p.model_path = bad.as_ptr();
    let mut out = std::ptr::null_mut();
    expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_INVALID_ARGUMENT, "UTF-8");
    let mut p = params(m);
    p.media_marker = bad.as_ptr();
    expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_INVALID_ARGUMENT, "media_marker");
    let s = create(&params(m)).unwrap();
    let a = prompt_params(&bad);
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "params.prompt");
    let prompt = c("hi");
    let mut a = prompt_params(&prompt);
    a.grammar = bad.as_ptr();
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "params.grammar");
    let mut a = prompt_params(&prompt);
    a.json_schema = bad.as_ptr();
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "params.json_schema");
    let mut n = 0usize;
    expect(
        unsafe { mm_session_tokenize(s, bad.as_ptr(), false, std::ptr::null_mut(), 0, &mut n) },
        MM_ERR_INVALID_ARGUMENT,
        "text",
    );
    let stops = [bad.as_ptr()];
    let mut a = prompt_params(&prompt);
    a.stop = stops.as_ptr();
    a.n_stop = 1;
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "params.stop[0]");
    let messages = [mm_message { role: bad.as_ptr(), text: prompt.as_ptr(), media: std::ptr::null(), n_media: 0 }];
    let mut a = mm_ask_params_default();
    a.messages = messages.as_ptr();
    a.n_messages = 1;
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "messages[0].role");
    expect(unsafe { mm_session_save_state(s, bad.as_ptr()) }, MM_ERR_INVALID_ARGUMENT, "path");
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

#[test]
fn bad_paths() {
    let m = models();
    let dir = fixture_dir().join("bad-paths");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let cases: Vec<(CString, mm_status, &str)> = vec![
        (c(""), MM_ERR_INVALID_ARGUMENT, "empty"),
        (c("/nonexistent/dir/model.gguf"), MM_ERR_FILE_NOT_FOUND, "no such file"),
        (c(dir.to_str().unwrap()), MM_ERR_NOT_A_FILE, "directory"),
        (c("/dev/null"), MM_ERR_NOT_A_FILE, "not a regular file"),
        (c(empty.to_str().unwrap()), MM_ERR_FILE_UNREADABLE, "not a GGUF"),
    ];
    for (path, want, names) in &cases {
        for as_projector in [false, true] {
            let mut p = params(m);
            if as_projector {
                p.mmproj_path = path.as_ptr();
            } else {
                p.model_path = path.as_ptr();
            }
            let mut out = std::ptr::null_mut();
            expect(unsafe { mm_session_create(&p, &mut out) }, *want, names);
            assert!(out.is_null());
        }
    }
    // A file without read permission (root reads everything, so only as another user).
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.join("locked.gguf");
        std::fs::copy(m.model.to_str().unwrap(), &locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o0)).unwrap();
        let path = c(locked.to_str().unwrap());
        let mut p = params(m);
        p.model_path = path.as_ptr();
        let mut out = std::ptr::null_mut();
        expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_FILE_UNREADABLE, "locked.gguf");
    }
    // State files and media files go through the same checks.
    let s = create(&params(m)).unwrap();
    for (path, want, names) in &cases[1..] {
        let (want_state, names_state) = if *want == MM_ERR_FILE_UNREADABLE {
            (MM_ERR_STATE_CORRUPT, "not an mm-session state file")
        } else {
            (*want, *names)
        };
        expect(unsafe { mm_session_load_state(s, path.as_ptr()) }, want_state, names_state);
        let media = [mm_media {
            kind: mm_media_kind::MM_MEDIA_FILE as i32,
            width: 0,
            height: 0,
            reserved0: 0,
            path: path.as_ptr(),
            data: std::ptr::null(),
            size: 0,
        }];
        let prompt = c("look");
        let mut a = prompt_params(&prompt);
        a.media = media.as_ptr();
        a.n_media = 1;
        let want_media = if *want == MM_ERR_FILE_UNREADABLE { MM_ERR_MEDIA_DECODE } else { *want };
        expect(ask_status(s, &a), want_media, "media item 0");
    }
    expect(unsafe { mm_session_save_state(s, c("/nonexistent/dir/x.mmstate").as_ptr()) }, MM_ERR_IO, "x.mmstate");
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

/// A 2x2 PNG whose header says `w` x `h` (with the header's CRC right, so that decoders read
/// the size rather than stop at the CRC).
fn png_with_size(w: u32, h: u32) -> Vec<u8> {
    let mut png = fixtures::png_rgb(2, 2, &[0u8; 12]);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = fixtures::crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn broken_and_oversized_media() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let good_png = std::fs::read(m.dir.join(fixtures::IMAGE_FILE)).unwrap();
    let jpeg_head = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xC0, 0x00,
        0x11, 8, 0x01, 0x00, 0x01, 0x00, 3,
    ];
    let mut corrupt_png = good_png.clone();
    for b in corrupt_png[40..].iter_mut() {
        *b ^= 0x5A;
    }
    let mut huge_jpeg = jpeg_head.to_vec();
    huge_jpeg[25..29].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    // Oversized images are refused from their header (stb_image's own reader, or our pixel
    // limit when the header reads); `media_found_by_fuzzing` checks the limit's message.
    let buffers: Vec<(&str, Vec<u8>, mm_status, &str)> = vec![
        ("truncated PNG", good_png[..good_png.len() / 2].to_vec(), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("PNG header only", good_png[..33].to_vec(), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("corrupt PNG", corrupt_png, MM_ERR_MEDIA_DECODE, "media item 0"),
        ("truncated JPEG", jpeg_head.to_vec(), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("JPEG header claiming 65535x65535", huge_jpeg, MM_ERR_MEDIA_DECODE, "media item 0"),
        ("PNG of 0x5", png_with_size(0, 5), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("PNG of 100000x100000", png_with_size(100_000, 100_000), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("PNG of 2^32-1 squared", png_with_size(u32::MAX, u32::MAX), MM_ERR_MEDIA_DECODE, "media item 0"),
        // Within the pixel limit, but clip.cpp's resampling of 2^26 x 1 took 3.5 GB.
        ("PNG of 2^26x1", png_with_size(1 << 26, 1), MM_ERR_MEDIA_DECODE, "side longer than the limit of 32768"),
        ("PNG of 1x32769", png_with_size(1, 32769), MM_ERR_MEDIA_DECODE, "side longer than the limit of 32768"),
        ("GIF of 65535x65535", b"GIF89a\xff\xff\xff\xff\x00\x00\x00".to_vec(), MM_ERR_MEDIA_DECODE, "media item 0"),
        (
            "BMP of 2^31 wide",
            [b"BM".to_vec(), vec![0; 16], vec![0, 0, 0, 0x80], vec![1, 0, 0, 0], vec![0; 30]].concat(),
            MM_ERR_MEDIA_DECODE,
            "media item 0",
        ),
        ("PPM of 100000x100000", b"P6\n100000 100000\n255\n\x00\x00\x00".to_vec(), MM_ERR_MEDIA_DECODE, "media item 0"),
        ("text", b"hello, this is not an image".to_vec(), MM_ERR_MEDIA_DECODE, "not a known media format"),
        ("WAV header only", b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec(), MM_ERR_UNSUPPORTED, "media item 0"),
    ];
    let prompt = c("what is it");
    for (name, bytes, want, names) in &buffers {
        let media = [encoded_item(bytes)];
        let mut a = prompt_params(&prompt);
        a.media = media.as_ptr();
        a.n_media = 1;
        let got = ask_status(s, &a);
        let msg = last_error();
        assert!(got == *want || (*want == MM_ERR_UNSUPPORTED && got == MM_ERR_MEDIA_DECODE), "{name}: {got:?} {msg}");
        assert!(msg.contains(names), "{name}: {msg}");
    }
    // Raw pixels: zero sizes, overflowing sizes, short buffers.
    let pixels = vec![0u8; 300];
    for (w, h, size, want, names) in [
        (0u32, 10u32, 300usize, MM_ERR_INVALID_ARGUMENT, "empty"),
        (10, 0, 300, MM_ERR_INVALID_ARGUMENT, "empty"),
        (u32::MAX, u32::MAX, 300, MM_ERR_INVALID_ARGUMENT, "larger than the limit"),
        (1 << 26, 1, 300, MM_ERR_INVALID_ARGUMENT, "32768 pixels a side"),
        (10, 10, 299, MM_ERR_INVALID_ARGUMENT, "needs 300 bytes"),
    ] {
        let media = [mm_media {
            kind: mm_media_kind::MM_MEDIA_RGB as i32,
            width: w,
            height: h,
            reserved0: 0,
            path: std::ptr::null(),
            data: pixels.as_ptr(),
            size,
        }];
        let mut a = prompt_params(&prompt);
        a.media = media.as_ptr();
        a.n_media = 1;
        expect(ask_status(s, &a), want, names);
    }
    // An unknown media kind, and audio samples for a vision-only projector.
    let media = [mm_media {
        kind: 77,
        width: 0,
        height: 0,
        reserved0: 0,
        path: std::ptr::null(),
        data: std::ptr::null(),
        size: 0,
    }];
    let mut a = prompt_params(&prompt);
    a.media = media.as_ptr();
    a.n_media = 1;
    expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "not an mm_media_kind");
    let samples = vec![0u8; 400];
    let media = [bytes_item(mm_media_kind::MM_MEDIA_PCM_F32, &samples)];
    a.media = media.as_ptr();
    expect(ask_status(s, &a), MM_ERR_UNSUPPORTED, "no audio encoder");

    // More markers than media, and the reverse.
    let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
    let two = c(&format!("{marker} {marker}"));
    let one_image = [image_item(m)];
    let mut a = prompt_params(&two);
    a.media = one_image.as_ptr();
    a.n_media = 1;
    expect(ask_status(s, &a), MM_ERR_MEDIA_COUNT, "2 marker");
    let one = c(&format!("{marker} here"));
    let two_images = [image_item(m), image_item(m)];
    let mut a = prompt_params(&one);
    a.media = two_images.as_ptr();
    a.n_media = 2;
    expect(ask_status(s, &a), MM_ERR_MEDIA_COUNT, "1 marker");
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

/// Penalty windows larger than the context are the context: llama.cpp allocates a window whole,
/// and INT32_MAX made it throw `bad_alloc` through the library (SIGABRT).
#[test]
fn sampling_windows_larger_than_the_context() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 256;
    let s = create(&p).unwrap();
    let prompt = c("hello");
    for window in [i32::MAX, 1 << 27, 257] {
        let mut a = prompt_params(&prompt);
        a.max_tokens = 4;
        a.penalty_last_n = window;
        a.repeat_penalty = 1.1;
        a.dry_penalty_last_n = window;
        a.dry_multiplier = 0.8;
        assert_eq!(ask_status(s, &a), MM_OK, "window {window}: {}", last_error());
    }
    mm_session_destroy(s);
}

/// Grammars llama.cpp's parser refuses, each with words of its message.
const UNPARSABLE_GRAMMARS: [(&str, &str); 7] = [
    ("root ::= (", "expecting ')' at the end"),
    ("root ::= \"abc", "unexpected end of input"),
    ("root ::= [a-", "unexpected end of input"),
    ("root ::= missing", "Undefined rule identifier 'missing'"),
    ("::= \"a\"", "expecting name"),
    ("root ::= \"a\" ~ \"b\"", "expecting newline or end"),
    ("root ::= <|not a token|>", "invalid token"),
];

/// The child of `grammar_errors_stay_off_stderr`: with logging off, asks with grammars
/// llama.cpp's parser refuses. Passes trivially when run as an ordinary test.
#[test]
fn quiet_grammar_child() {
    if std::env::var_os("MM_QUIET_GRAMMAR_CHILD").is_none() {
        return;
    }
    let m = models();
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_OFF as i32, None, std::ptr::null_mut()), MM_OK);
    let s = create(&params(m)).unwrap();
    let prompt = c("hello");
    for (grammar, words) in UNPARSABLE_GRAMMARS {
        let g = c(grammar);
        let a = mm_ask_params { grammar: g.as_ptr(), max_tokens: 2, ..prompt_params(&prompt) };
        expect(ask_status(s, &a), MM_ERR_INVALID_ARGUMENT, "invalid grammar");
        assert!(last_error().contains(words), "{grammar:?}: {}", last_error());
    }
    assert_eq!(mm_session_destroy(s), MM_OK);
    println!("CHILD-DONE");
}

/// Found by the third outside tester: llama.cpp's grammar parser prints its error and the
/// whole grammar to stderr, past the log callback, even with logging off. The child's stderr
/// must stay empty.
#[test]
fn grammar_errors_stay_off_stderr() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test_name(module_path!(), "quiet_grammar_child"), "--nocapture", "--test-threads=1"])
        .env("MM_QUIET_GRAMMAR_CHILD", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("CHILD-DONE"), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stderr.is_empty(), "stderr with logging off:\n{stderr}");
}

/// Grammars the third outside tester found: deep parentheses and long chains of rules overflowed
/// a stack (llama.cpp's parser, and the library's own check), and left recursion behind a
/// symbol that can match nothing made llama.cpp's parse stacks grow without end (15 GB in 90
/// s). Each is refused, from a thread with a 256 KiB stack.
#[test]
fn grammars_that_overflowed_the_stack_or_ran_away() {
    let m = models();
    let s = create(&params(m)).unwrap() as usize;
    let chain = |n: usize, body: &dyn Fn(usize) -> String| {
        let rules: Vec<String> = (0..n).map(|i| format!("r{i} ::= {}", body(i))).collect();
        format!("root ::= r0\n{}\nr{n} ::= \"a\"", rules.join("\n"))
    };
    let cases = [
        (format!("root ::= {}\"a\"{}", "(".repeat(30_000), ")".repeat(30_000)), "parentheses"),
        (format!("root ::= {}\"a\"{}", "(".repeat(1_000), ")".repeat(1_000)), "parentheses"),
        (chain(20_000, &|i| format!("r{}", i + 1)), "bytes long"),
        (chain(2_000, &|i| format!("r{}", i + 1)), "deep"),
        (chain(2_000, &|i| format!("\"a\" r{} | \"b\"", i + 1)), "deep"),
        // 1 MB of alternatives took 38-40 s to refuse as too ambiguous.
        (
            format!("root ::= {}", (0..120_000).map(|i| format!("\"w{i}\"")).collect::<Vec<_>>().join(" | ")),
            "bytes long",
        ),
        ("root ::= x root \"a\" | \"b\"\nx ::= \"c\"?".to_string(), "left-recursive"),
        ("root ::= ((\"c\")?) root \"a\" | \"b\"".to_string(), "left-recursive"),
        ("root ::= a\na ::= n b \"x\" | \"y\"\nb ::= n c\nc ::= n a\nn ::= \"c\"?".to_string(), "left-recursive"),
    ];
    let refused = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let prompt = c("hello");
            cases
                .iter()
                .map(|(grammar, names)| {
                    let g = c(grammar);
                    let a = mm_ask_params { grammar: g.as_ptr(), max_tokens: 4, ..prompt_params(&prompt) };
                    (ask_status(s as *mut mm_session, &a), last_error(), *names)
                })
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    for (status, message, names) in refused {
        assert_eq!(status, MM_ERR_INVALID_ARGUMENT, "{message}");
        assert!(message.contains(names), "{message}");
    }
    mm_session_destroy(s as *mut mm_session);
}

/// The vocabulary's size, found through the API: the smallest token id a logit bias may not
/// name.
fn n_vocab(s: *mut mm_session, base: &mm_ask_params) -> i32 {
    let (mut valid, mut invalid) = (0, 1 << 24);
    while invalid - valid > 1 {
        let mid = (valid + invalid) / 2;
        let bias = [mm_logit_bias { token: mid, bias: 0.0 }];
        let a = mm_ask_params { logit_bias: bias.as_ptr(), n_logit_bias: 1, max_tokens: 1, ..*base };
        match ask_status(s, &a) {
            MM_OK => valid = mid,
            _ => invalid = mid,
        }
    }
    invalid
}

#[test]
fn bad_requests() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 256;
    let s = create(&p).unwrap();
    let prompt = c("hello");
    let base = prompt_params(&prompt);
    let empty = c("");
    let empties = [empty.as_ptr()];
    let grammar = c("root ::= (");
    // Found by fuzz_prompt: nested repetitions took llama.cpp's sampler 9 s for 3 tokens.
    let nested = c(r#"root ::= (("a"{0,20}){0,20}){0,20}"#);
    // Found by fuzz_prompt under ASan (fuzz/regressions/fuzz_prompt/grammar-ambiguous.in):
    // three repetitions whose bounds multiply to 50 only, but which read a token in so many
    // ways that 4 tokens of Gemma 3 270M took 396 s; and the classic ambiguous nesting.
    let ambiguous = c("root ::=[ aggml_backend_set_n_t@@@@@<|im_end|>\n<1d]{1,5}* {2,5}[a-*]");
    let nested_plus = c(r#"root ::= (([a-z ]+)+)+"#);
    // Found by fuzz_prompt under ASan: a repetition {m,n} with n < m after a space escaped the
    // check, and llama.cpp's parser made rules until 2 GB were gone.
    let spaced = c("root ::= \"yes\" {8,5}'");
    // And after another quantifier, which it applies to, and after a token.
    let stacked = c("root ::= [a-z]+ {5,4}");
    let token = c("root ::= <|endoftext|> {22,5}");
    let biases = [
        mm_logit_bias { token: 5, bias: 1.0 },
        mm_logit_bias { token: -1, bias: 1.0 },
        mm_logit_bias { token: 265, bias: 1.0 },
        mm_logit_bias { token: 5, bias: f32::NAN },
        mm_logit_bias { token: 5, bias: f32::INFINITY },
    ];
    let schema = c(r#"{"type": "string"}"#);
    let not_json = c(r#"{"type": "string""#);
    let remote_ref = c(r#"{"$ref": "https://example.com/schema.json"}"#);
    let unknown_type = c(r#"{"type": "text"}"#);
    let deep = c(&format!(
        "{}{{}}{}",
        r#"{"items": "#.repeat(mm_core::JSON_SCHEMA_MAX_DEPTH),
        "}".repeat(mm_core::JSON_SCHEMA_MAX_DEPTH)
    ));
    let huge = c(&format!(r#"{{"type": "string", "description": "{}"}}"#, "x".repeat(mm_core::JSON_SCHEMA_MAX_BYTES)));
    // The converter makes a repetition of 20,000 steps of it, past the grammar limits.
    let too_long = c(r#"{"type": "string", "maxLength": 20000}"#);
    let cases: Vec<(&str, mm_ask_params)> = vec![
        ("grammar refused: the grammar nests repetitions", mm_ask_params { grammar: nested.as_ptr(), ..base }),
        ("grammar refused: it is too ambiguous", mm_ask_params { grammar: ambiguous.as_ptr(), ..base }),
        ("grammar refused: it is too ambiguous", mm_ask_params { grammar: nested_plus.as_ptr(), ..base }),
        ("n < m", mm_ask_params { grammar: spaced.as_ptr(), ..base }),
        ("n < m", mm_ask_params { grammar: stacked.as_ptr(), ..base }),
        ("n < m", mm_ask_params { grammar: token.as_ptr(), ..base }),
        ("max_tokens", mm_ask_params { max_tokens: 0, ..base }),
        ("max_tokens", mm_ask_params { max_tokens: -5, ..base }),
        ("temperature", mm_ask_params { temperature: f32::NAN, ..base }),
        ("temperature", mm_ask_params { temperature: -0.5, ..base }),
        ("temperature", mm_ask_params { temperature: f32::INFINITY, ..base }),
        ("top_p", mm_ask_params { top_p: 1.01, ..base }),
        ("top_p", mm_ask_params { top_p: f32::NAN, ..base }),
        ("top_p", mm_ask_params { top_p: -0.1, ..base }),
        ("min_p", mm_ask_params { min_p: 2.0, ..base }),
        ("top_k", mm_ask_params { top_k: -1, ..base }),
        ("grammar", mm_ask_params { grammar: grammar.as_ptr(), ..base }),
        ("stop string", mm_ask_params { stop: empties.as_ptr(), n_stop: 1, ..base }),
        ("overflow", mm_ask_params { overflow: 9, ..base }),
        ("repeat_penalty", mm_ask_params { repeat_penalty: 0.0, ..base }),
        ("repeat_penalty", mm_ask_params { repeat_penalty: -1.0, ..base }),
        ("repeat_penalty", mm_ask_params { repeat_penalty: f32::NAN, ..base }),
        ("repeat_penalty", mm_ask_params { repeat_penalty: f32::INFINITY, ..base }),
        ("penalty_last_n", mm_ask_params { penalty_last_n: -2, ..base }),
        ("frequency_penalty", mm_ask_params { frequency_penalty: f32::NAN, ..base }),
        ("presence_penalty", mm_ask_params { presence_penalty: f32::NEG_INFINITY, ..base }),
        ("typical_p", mm_ask_params { typical_p: 1.5, ..base }),
        ("typical_p", mm_ask_params { typical_p: f32::NAN, ..base }),
        ("dry_multiplier", mm_ask_params { dry_multiplier: -1.0, ..base }),
        ("dry_multiplier", mm_ask_params { dry_multiplier: f32::NAN, ..base }),
        ("dry_base", mm_ask_params { dry_base: 0.5, ..base }),
        ("dry_allowed_length", mm_ask_params { dry_allowed_length: 0, ..base }),
        ("dry_penalty_last_n", mm_ask_params { dry_penalty_last_n: -7, ..base }),
        ("n_probs", mm_ask_params { n_probs: -1, ..base }),
        ("no token callback", mm_ask_params { n_probs: 3, ..base }),
        ("logit_bias[1].token", mm_ask_params { logit_bias: biases[..2].as_ptr(), n_logit_bias: 2, ..base }),
        ("logit_bias[0].token", mm_ask_params { logit_bias: biases[2..].as_ptr(), n_logit_bias: 1, ..base }),
        ("logit_bias[0].bias", mm_ask_params { logit_bias: biases[3..].as_ptr(), n_logit_bias: 1, ..base }),
        ("logit_bias[0].bias", mm_ask_params { logit_bias: biases[4..].as_ptr(), n_logit_bias: 1, ..base }),
        (
            "both grammar and json_schema",
            mm_ask_params { grammar: grammar.as_ptr(), json_schema: schema.as_ptr(), ..base },
        ),
        ("parse error", mm_ask_params { json_schema: not_json.as_ptr(), ..base }),
        ("only references into the same document", mm_ask_params { json_schema: remote_ref.as_ptr(), ..base }),
        ("unrecognized type", mm_ask_params { json_schema: unknown_type.as_ptr(), ..base }),
        ("nests arrays and objects", mm_ask_params { json_schema: deep.as_ptr(), ..base }),
        ("bytes long", mm_ask_params { json_schema: huge.as_ptr(), ..base }),
        (
            "json_schema (as a grammar) refused: the grammar's repetition bounds add up",
            mm_ask_params { json_schema: too_long.as_ptr(), ..base },
        ),
    ];
    for (names, a) in &cases {
        expect(ask_status(s, a), MM_ERR_INVALID_ARGUMENT, names);
    }
    // A schema no JSON satisfies converts to a grammar that allows no first token.
    let unsatisfiable = c(r#"{"type": "integer", "minimum": 5, "maximum": 1}"#);
    expect(
        ask_status(s, &mm_ask_params { json_schema: unsatisfiable.as_ptr(), ..base }),
        MM_ERR_EVAL,
        "no next token is allowed",
    );
    // Every token biased to -FLT_MAX, which the temperature takes to -infinity: the error names
    // the biases, and no grammar, as there is none.
    let n_vocab = n_vocab(s, &base);
    let all_out: Vec<mm_logit_bias> = (0..n_vocab).map(|token| mm_logit_bias { token, bias: -f32::MAX }).collect();
    let biased = mm_ask_params { logit_bias: all_out.as_ptr(), n_logit_bias: all_out.len(), temperature: 0.5, ..base };
    expect(ask_status(s, &biased), MM_ERR_EVAL, "the logit biases");
    assert!(!last_error().contains("grammar"), "{}", last_error());
    let long = c(&"word ".repeat(400));
    expect(ask_status(s, &prompt_params(&long)), MM_ERR_CONTEXT_FULL, "context");
    expect(ask_status(s, &prompt_params(&empty)), MM_ERR_INVALID_ARGUMENT, "empty");
    let mut chat = mm_ask_params_default();
    chat.messages = std::ptr::null();
    chat.n_messages = 0;
    expect(ask_status(s, &chat), MM_ERR_NULL_ARGUMENT, "no messages");
    // Text-only session: media are unsupported.
    let mut tp = params(m);
    tp.mmproj_path = std::ptr::null();
    let t = create(&tp).unwrap();
    let media = [image_item(m)];
    let mut a = prompt_params(&prompt);
    a.media = media.as_ptr();
    a.n_media = 1;
    expect(ask_status(t, &a), MM_ERR_UNSUPPORTED, "no projector");
    // Bad session params.
    for (field, p) in [
        ("n_ctx", mm_session_params { n_ctx: 1, ..params(m) }),
        ("n_batch", mm_session_params { n_batch: 0, ..params(m) }),
        ("n_threads", mm_session_params { n_threads: -3, ..params(m) }),
        ("media_marker", mm_session_params { media_marker: empty.as_ptr(), ..params(m) }),
        ("not an mm_flash_attn", mm_session_params { flash_attn: 3, ..params(m) }),
        ("not an mm_kv_type", mm_session_params { kv_type_k: -1, ..params(m) }),
        ("not an mm_kv_type", mm_session_params { kv_type_v: 7, ..params(m) }),
        ("n_ubatch 1024 is larger than n_batch 512", mm_session_params { n_batch: 512, n_ubatch: 1024, ..params(m) }),
        (
            "kv_type_v q8_0 needs flash attention",
            mm_session_params {
                kv_type_v: mm_kv_type::MM_KV_Q8_0 as i32,
                flash_attn: mm_flash_attn::MM_FLASH_ATTN_OFF as i32,
                ..params(m)
            },
        ),
    ] {
        let mut out = std::ptr::null_mut();
        expect(unsafe { mm_session_create(&p, &mut out) }, MM_ERR_INVALID_ARGUMENT, field);
    }
    // The session still works after all of that.
    assert_eq!(ask_status(s, &base), MM_OK);
    mm_session_destroy(t);
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

unsafe extern "C" fn ignore_log(_: *mut c_void, _: i32, _: *const c_char) {}
unsafe extern "C" fn text_cb(_: *mut c_void, _: *const c_char, _: usize) -> bool {
    true
}

/// Every export, called with a panic injected inside its boundary, returns `MM_ERR_INTERNAL`
/// (or its documented neutral value) with a message; and every export in the header is here.
#[test]
fn every_export_catches_panics() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let prompt = c("hi");
    let a = prompt_params(&prompt);
    let path = c(fixture_dir().join("panic.mmstate").to_str().unwrap());
    let mut n = 0;
    let mut n_tokens = 0usize;
    let mut info = ask_info();
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    let mut sinfo: mm_session_info = unsafe { std::mem::zeroed() };
    sinfo.struct_size = std::mem::size_of::<mm_session_info>() as u32;
    let mut out = std::ptr::null_mut();
    let mut text: *mut c_char = std::ptr::null_mut();
    let p = params(m);
    let mut tested: Vec<&str> = Vec::new();
    let mut status = |name: &'static str, f: &mut dyn FnMut() -> mm_status| {
        inject_panic_for_tests(true);
        let st = f();
        inject_panic_for_tests(false);
        assert_eq!(st, MM_ERR_INTERNAL, "{name}");
        assert!(last_error().contains(&format!("{name}: internal error: panic injected")), "{name}: {}", last_error());
        tested.push(name);
    };
    unsafe {
        status("mm_session_create", &mut || mm_session_create(&p, &mut out));
        status("mm_session_destroy", &mut || mm_session_destroy(s));
        status("mm_session_ask", &mut || mm_session_ask(s, &a, &mut text));
        status("mm_session_count_tokens", &mut || mm_session_count_tokens(s, &a, &mut n));
        status("mm_session_last_ask", &mut || mm_session_last_ask(s, &mut info));
        let mut json: *mut std::os::raw::c_char = std::ptr::null_mut();
        status("mm_session_last_message", &mut || mm_session_last_message(s, &mut json));
        status("mm_session_apply_template", &mut || mm_session_apply_template(s, &a, &mut json));
        status("mm_session_memory", &mut || mm_session_memory(s, &mut stats));
        status("mm_session_get_info", &mut || mm_session_get_info(s, &mut sinfo));
        status("mm_session_save_state", &mut || mm_session_save_state(s, path.as_ptr()));
        status("mm_session_load_state", &mut || mm_session_load_state(s, path.as_ptr()));
        status("mm_session_cancel", &mut || mm_session_cancel(s));
        status("mm_session_reset", &mut || mm_session_reset(s));
        status("mm_session_fork", &mut || mm_session_fork(s, std::ptr::null(), &mut out));
        status("mm_session_tokenize", &mut || {
            mm_session_tokenize(s, prompt.as_ptr(), false, std::ptr::null_mut(), 0, &mut n_tokens)
        });
        status("mm_log_set", &mut || mm_log_set(2, Some(ignore_log), std::ptr::null_mut()));
    }
    let mut neutral = |name: &'static str, is_neutral: &mut dyn FnMut() -> bool| {
        inject_panic_for_tests(true);
        let ok = is_neutral();
        inject_panic_for_tests(false);
        assert!(ok, "{name} returned something other than its neutral value");
        assert!(last_error().contains(&format!("{name}: internal error")), "{name}: {}", last_error());
        tested.push(name);
    };
    unsafe {
        neutral("mm_version", &mut || *mm_version() == 0);
        neutral("mm_version_number", &mut || mm_version_number() == 0);
        neutral("mm_build_info", &mut || *mm_build_info() == 0);
        neutral("mm_status_str", &mut || CStr::from_ptr(mm_status_str(0)).to_str() == Ok("unknown status"));
        neutral("mm_live_sessions", &mut || mm_live_sessions() == 0);
        neutral("mm_session_marker", &mut || mm_session_marker(s).is_null());
        neutral("mm_session_params_default", &mut || mm_session_params_default().struct_size == 0);
        neutral("mm_ask_params_default", &mut || mm_ask_params_default().struct_size == 0);
        neutral("mm_fork_params_default", &mut || mm_fork_params_default().struct_size == 0);
        neutral("mm_loaded_models", &mut || mm_loaded_models() == 0);
        // mm_string_free with a panic must not free (and must not crash): it returns nothing.
        let leak_on_purpose = libc::strdup(c"x".as_ptr());
        neutral("mm_string_free", &mut || {
            mm_string_free(leak_on_purpose);
            true
        });
        mm_string_free(leak_on_purpose);
        // mm_last_error: its neutral value is "".
        neutral("mm_last_error", &mut || *mm_last_error() == 0);
    }
    // The session survived the panics: a panic while it was locked does not break it.
    assert_eq!(ask_status(s, &a), MM_OK);
    assert_eq!(mm_session_destroy(s), MM_OK);
    assert_eq!(mm_live_sessions(), 0);
    let _ = text_cb;

    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/mm_session.h")).unwrap();
    // Function declarations start at the beginning of a line; their name stands before '('.
    let exports: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#', '}']) && !l.starts_with("typedef"))
        .filter_map(|l| {
            l.split_once('(').map(|(before, _)| before.split_whitespace().last().unwrap_or("").trim_start_matches('*'))
        })
        .filter(|name| name.starts_with("mm_"))
        .collect();
    assert!(exports.len() >= 20, "{exports:?}");
    for e in exports {
        assert!(tested.contains(&e), "export {e} is not tested for panics");
    }
}

/// The media inputs fuzzing found (fuzz/regressions/fuzz_media), against a vision and an audio
/// session: each gets a clear status, never an internal error, an abort or gigabytes of pixels.
#[test]
fn media_found_by_fuzzing() {
    let m = models();
    let vision = create(&params(m)).unwrap();
    let audio_proj = fixture_dir().join("fuzz-audio-mmproj.gguf");
    mm_fixtures::audio::write_audio_projector(&audio_proj, 64, 1).unwrap();
    let audio_proj = c(audio_proj.to_str().unwrap());
    let mut ap = params(m);
    ap.mmproj_path = audio_proj.as_ptr();
    ap.n_ctx = 2048;
    let audio = create(&ap).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/fuzz_media");
    let prompt = c("what is it");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let kind =
            if name.ends_with(".f32") { mm_media_kind::MM_MEDIA_PCM_F32 } else { mm_media_kind::MM_MEDIA_ENCODED };
        let media = [bytes_item(kind, &bytes)];
        for s in [vision, audio] {
            let mut a = prompt_params(&prompt);
            a.media = media.as_ptr();
            a.n_media = 1;
            let st = ask_status(s, &a);
            let msg = last_error();
            assert!(st != MM_OK && st != MM_ERR_INTERNAL, "{name}: {st:?} {msg}");
            assert!(msg.contains("media item 0"), "{name}: {msg}");
        }
    }
    // The reproducers say what each was: a JPEG beyond the pixel limit whose size only
    // stb_image's own header reader found (the Rust decoder's header reader stops earlier, at
    // its broken Huffman table, so no pixel is allocated either way), a PPM whose size
    // overflows, one-sample audio. Oversized headers that read get "larger than the limit"
    // (crates/core/tests/decode_alloc.rs, for every format).
    let jpeg = std::fs::read(dir.join("jpeg-size-not-checked.jpg")).unwrap();
    let media = [encoded_item(&jpeg)];
    let mut a = prompt_params(&prompt);
    a.media = media.as_ptr();
    a.n_media = 1;
    expect(ask_status(vision, &a), MM_ERR_MEDIA_DECODE, "JPEG image header could not be read");
    let ppm = std::fs::read(dir.join("pnm-size-overflow.ppm")).unwrap();
    let media = [encoded_item(&ppm)];
    a.media = media.as_ptr();
    expect(ask_status(vision, &a), MM_ERR_MEDIA_DECODE, "PNM image");
    mm_session_destroy(vision);
    mm_session_destroy(audio);
    assert_eq!(mm_live_sessions(), 0);
}

/// A copy of `T` placed at the very end of a readable page, followed by a page that cannot be
/// read: a read past the struct faults instead of passing unseen.
struct PageEnd<T> {
    mapping: *mut c_void,
    ptr: *mut T,
}

impl<T: Copy> PageEnd<T> {
    fn new(value: T) -> PageEnd<T> {
        let page = 4096;
        assert!(std::mem::size_of::<T>() <= page && page % std::mem::align_of::<T>() == 0);
        // SAFETY: a fresh anonymous mapping of two pages; the second is made unreadable, and
        // the value is written inside the first, at an address aligned for T (the page end
        // minus a size that is a multiple of T's alignment).
        unsafe {
            let mapping = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(mapping, libc::MAP_FAILED);
            assert_eq!(libc::mprotect((mapping as *mut u8).add(page) as *mut c_void, page, libc::PROT_NONE), 0);
            let ptr = (mapping as *mut u8).add(page - std::mem::size_of::<T>()) as *mut T;
            ptr.write(value);
            PageEnd { mapping, ptr }
        }
    }

    fn ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T> Drop for PageEnd<T> {
    fn drop(&mut self) {
        // SAFETY: the two-page mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.mapping, 2 * 4096) };
    }
}

fn audio_session(m: &Models) -> (*mut mm_session, CString) {
    let dir = fixture_dir().join("audio-sizes");
    std::fs::create_dir_all(&dir).unwrap();
    let proj = dir.join("audio-mmproj.gguf");
    mm_fixtures::audio::write_audio_projector(&proj, FixtureSpec::default().n_embd, 5).unwrap();
    let proj_c = path_c(&proj);
    let mut p = params(m);
    p.mmproj_path = proj_c.as_ptr();
    (create(&p).unwrap(), proj_c)
}

#[test]
fn sizes_that_lie_are_refused_before_anything_is_allocated() {
    let m = models();
    let (s, _proj) = audio_session(m);
    let prompt = c("What is this?");
    let small = [0u8; 64];
    for size in [1usize << 40, usize::MAX - 3, 4 * 16000 * 601] {
        let item = [mm_media {
            kind: mm_media_kind::MM_MEDIA_PCM_F32 as i32,
            width: 0,
            height: 0,
            reserved0: 0,
            path: std::ptr::null(),
            data: small.as_ptr(),
            size,
        }];
        let mut a = prompt_params(&prompt);
        a.media = item.as_ptr();
        a.n_media = 1;
        let st = status_of_ask(s, &a);
        assert_eq!(st, MM_ERR_INVALID_ARGUMENT, "PCM of {size} bytes: {}", last_error());
    }
    assert!(last_error().contains("limit of 600 s"), "{}", last_error());
    assert_eq!(mm_session_destroy(s), MM_OK);

    // Raw RGB whose width x height x 3 wraps around to a small number in 64 bits.
    let s = create(&params(m)).unwrap();
    let item = [mm_media {
        kind: mm_media_kind::MM_MEDIA_RGB as i32,
        width: 2007567422,
        height: 3062868337,
        reserved0: 0,
        path: std::ptr::null(),
        data: small.as_ptr(),
        size: 26,
    }];
    let mut a = prompt_params(&prompt);
    a.media = item.as_ptr();
    a.n_media = 1;
    assert_eq!(status_of_ask(s, &a), MM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("larger than the limit"), "{}", last_error());
    assert_eq!(mm_session_destroy(s), MM_OK);
}
