//! The session API end to end, through the exported `extern "C"` functions, with thread counts
//! above the machine's, unknown templates and counts of prompts that do not fit.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::Ordering;

use crate::common::*;
use ::mm_session::ask::*;
use ::mm_session::conversation::mm_stop_reason;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use ::mm_session::status::mm_status::*;
use mm_fixtures::{self as fixtures, FixtureSpec};

pub(crate) fn ask_params(prompt: &CString, media: &[mm_media]) -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.prompt = prompt.as_ptr();
    a.media = media.as_ptr();
    a.n_media = media.len();
    a.max_tokens = 24;
    a.seed = 99;
    a
}

#[test]
fn create_ask_destroy_with_two_images() {
    let m = models();
    let s = create(&params(m)).expect("create");
    assert_eq!(mm_live_sessions(), 1);
    let prompt = CString::new("Compare the two images.").unwrap();
    let media = [image_item(m), image_item(m)];
    let text = ask(s, &ask_params(&prompt, &media)).expect("ask");
    let mut info = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut info) }, mm_status::MM_OK);
    assert_eq!(info.media_encoded, 2);
    assert!(info.tokens_generated > 0 && info.tokens_generated <= 24, "{info:?}");
    assert!(!text.is_empty() || info.stop_reason == mm_stop_reason::MM_STOP_EOG as i32);
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    assert_eq!(mm_live_sessions(), 0);
}

#[test]
fn markers_place_media_and_counts_must_match() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let marker = unsafe { CStr::from_ptr(mm_session_marker(s)) }.to_str().unwrap().to_owned();
    let one = [image_item(m)];
    let placed = CString::new(format!("Look: {marker} What is it?")).unwrap();
    ask(s, &ask_params(&placed, &one)).expect("one marker, one image");
    let two_markers = CString::new(format!("{marker} and {marker}")).unwrap();
    let (st, msg) = ask(s, &ask_params(&two_markers, &one)).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_MEDIA_COUNT, "{msg}");
    assert!(msg.contains("2 marker"), "{msg}");
    mm_session_destroy(s);
}

#[test]
fn media_from_buffers_and_raw_pixels() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let png = std::fs::read(m.dir.join(fixtures::IMAGE_FILE)).unwrap();
    let rgb = fixtures::test_pattern(20, 10, 3);
    let media =
        [encoded_item(&png), mm_media { width: 20, height: 10, ..bytes_item(mm_media_kind::MM_MEDIA_RGB, &rgb) }];
    let prompt = CString::new("Two pictures.").unwrap();
    ask(s, &ask_params(&prompt, &media)).expect("encoded and raw media");
    let short = [mm_media { size: rgb.len() - 1, ..media[1] }];
    let (st, msg) = ask(s, &ask_params(&prompt, &short)).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_INVALID_ARGUMENT, "{msg}");
    let garbage = [0u8, 1, 2, 3, 4, 5, 6, 7];
    let bad = [encoded_item(&garbage)];
    let (st, msg) = ask(s, &ask_params(&prompt, &bad)).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_MEDIA_DECODE, "{msg}");
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

#[test]
fn text_only_session_refuses_media() {
    let m = models();
    let mut p = params(m);
    p.mmproj_path = std::ptr::null();
    let s = create(&p).expect("text-only create");
    let prompt = CString::new("Hello there").unwrap();
    ask(s, &ask_params(&prompt, &[])).expect("text ask");
    let (st, msg) = ask(s, &ask_params(&prompt, &[image_item(m)])).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_UNSUPPORTED, "{msg}");
    assert!(msg.contains("no projector"), "{msg}");
    mm_session_destroy(s);
}

fn create_fails(p: &mm_session_params, want: mm_status, names: &str) {
    let (st, msg) = create(p).unwrap_err();
    assert_eq!(st, want, "{msg}");
    assert!(msg.contains(names), "message should name {names}: {msg}");
    assert_eq!(mm_live_sessions(), 0, "a failed create must free everything");
}

#[test]
fn create_failures_have_their_own_status() {
    let m = models();
    let dir = m.dir.join("failures");
    std::fs::create_dir_all(&dir).unwrap();

    let missing = CString::new(dir.join("nope.gguf").to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.model_path = missing.as_ptr();
    create_fails(&p, mm_status::MM_ERR_FILE_NOT_FOUND, "nope.gguf");

    let mut p = params(m);
    p.mmproj_path = missing.as_ptr();
    create_fails(&p, mm_status::MM_ERR_FILE_NOT_FOUND, "nope.gguf");

    let a_dir = CString::new(dir.to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.model_path = a_dir.as_ptr();
    create_fails(&p, mm_status::MM_ERR_NOT_A_FILE, "directory");

    let mut p = params(m);
    p.mmproj_path = m.model.as_ptr();
    create_fails(&p, mm_status::MM_ERR_WRONG_FILE_KIND, "not a projector");

    let mut p = params(m);
    p.model_path = m.mmproj.as_ptr();
    create_fails(&p, mm_status::MM_ERR_WRONG_FILE_KIND, "not a text model");

    let not_gguf = dir.join("text.gguf");
    std::fs::write(&not_gguf, b"this is not a model at all").unwrap();
    let not_gguf = CString::new(not_gguf.to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.model_path = not_gguf.as_ptr();
    create_fails(&p, mm_status::MM_ERR_FILE_UNREADABLE, "not a GGUF");

    // A projector whose output (7) is no text model's embedding size.
    let spec = FixtureSpec { proj_out: Some(7), ..FixtureSpec::default() };
    let other = dir.join("mismatch-mmproj.gguf");
    fixtures::write_projector(&other, &spec).unwrap();
    let other = CString::new(other.to_string_lossy().as_bytes()).unwrap();
    let mut p = params(m);
    p.mmproj_path = other.as_ptr();
    create_fails(&p, mm_status::MM_ERR_PROJECTOR_MISMATCH, "mismatch-mmproj.gguf");
}

/// A failed create gives back what it took, as destroy does: creates refused after the model
/// loaded (a projector of the wrong width) and refused by their chat template (checked before
/// anything loads) leave resident memory flat. This catches a create that keeps what it loaded;
/// the heap trim after a failure is too small to tell on the tiny pair (300 failed creates grew
/// by 280 kB without it, 56 kB with it).
#[test]
fn failed_creates_keep_no_memory() {
    let m = models();
    let dir = fixture_dir();
    let spec = FixtureSpec { proj_out: Some(7), ..FixtureSpec::default() };
    let other = dir.join("mismatch-for-memory-mmproj.gguf");
    fixtures::write_projector(&other, &spec).unwrap();
    let other = CString::new(other.to_string_lossy().as_bytes()).unwrap();
    let template = CString::new("no-such-template").unwrap();
    let (cycles, measure_from) = (300, 30);
    let mut baseline = 0;
    for cycle in 0..cycles {
        let mut p = params(m);
        if cycle % 2 == 0 {
            p.mmproj_path = other.as_ptr();
            create_fails(&p, mm_status::MM_ERR_PROJECTOR_MISMATCH, "mismatch-for-memory-mmproj.gguf");
        } else {
            p.chat_template = template.as_ptr();
            create_fails(&p, mm_status::MM_ERR_INVALID_ARGUMENT, "no-such-template");
        }
        if cycle == measure_from {
            baseline = rss_kb();
        }
    }
    let growth = rss_kb().saturating_sub(baseline);
    eprintln!("failed creates {measure_from}-{cycles}: rss growth {growth} kB");
    assert!(growth < 1024, "resident memory grew by {growth} kB over {} failed creates", cycles - measure_from);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

#[test]
fn destroyed_handles_are_refused() {
    let m = models();
    let s = create(&params(m)).unwrap();
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    assert_eq!(mm_session_destroy(s), mm_status::MM_ERR_INVALID_HANDLE);
    assert!(last_error().contains("not a live session"), "{}", last_error());
    let prompt = CString::new("hi").unwrap();
    assert_eq!(ask(s, &ask_params(&prompt, &[])).unwrap_err().0, mm_status::MM_ERR_INVALID_HANDLE);
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(s, &mut stats) }, mm_status::MM_ERR_INVALID_HANDLE);
    assert!(mm_session_marker(s).is_null());
    // A new session may reuse the slot: the old handle must still be refused.
    let s2 = create(&params(m)).unwrap();
    assert_ne!(s, s2);
    assert_eq!(mm_session_destroy(s), mm_status::MM_ERR_INVALID_HANDLE);
    assert_eq!(mm_live_sessions(), 1);
    // A pointer that was never a handle.
    assert_eq!(mm_session_destroy(0x1234_5678usize as *mut mm_session), mm_status::MM_ERR_INVALID_HANDLE);
    assert_eq!(mm_session_destroy(s2), mm_status::MM_OK);
    assert_eq!(mm_live_sessions(), 0);
}

unsafe extern "C" fn collect(user_data: *mut c_void, text: *const c_char, len: usize) -> bool {
    let seen = &mut *(user_data as *mut Vec<String>);
    let piece = CStr::from_ptr(text).to_str().expect("pieces are whole UTF-8");
    assert_eq!(piece.len(), len);
    assert!(!piece.is_empty());
    seen.push(piece.to_owned());
    true
}

#[test]
fn streamed_pieces_are_whole_utf8_and_add_up_to_the_text() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let prompt = CString::new("Say something.").unwrap();
    let mut seen: Vec<String> = Vec::new();
    let media = [image_item(m)];
    let mut a = ask_params(&prompt, &media);
    a.max_tokens = 200;
    a.temperature = 1.5;
    a.top_k = 0;
    a.top_p = 1.0;
    a.min_p = 0.0;
    a.on_text = Some(collect);
    a.user_data = &mut seen as *mut _ as *mut c_void;
    let text = ask(s, &a).unwrap();
    assert_eq!(seen.concat(), text);
    mm_session_destroy(s);
}

#[test]
fn same_seed_same_text_and_stop_strings_cut_it() {
    let m = models();
    let p = params(m);
    let prompt = CString::new("Describe it in detail.").unwrap();
    let media = [image_item(m)];
    let mut a = ask_params(&prompt, &media);
    a.max_tokens = 40;
    a.seed = 4242;
    let s1 = create(&p).unwrap();
    let first = ask(s1, &a).unwrap();
    let again = ask(s1, &a).unwrap();
    let s2 = create(&p).unwrap();
    let other_session = ask(s2, &a).unwrap();
    assert_eq!(first, again, "same session, same seed");
    assert_eq!(first, other_session, "new session, same seed");

    // A stop string taken from the middle of that text ends the answer just before it.
    let chars: Vec<char> = first.chars().collect();
    assert!(chars.len() >= 6, "the answer is too short to cut: {first:?}");
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let expected = &first[..first.find(&stop).unwrap()];
    let stop_c = CString::new(stop.clone()).unwrap();
    let stops = [stop_c.as_ptr()];
    a.stop = stops.as_ptr();
    a.n_stop = 1;
    let cut = ask(s2, &a).unwrap();
    assert_eq!(cut, expected, "stop string {stop:?}");
    let mut info = ask_info();
    unsafe { mm_session_last_ask(s2, &mut info) };
    assert_eq!(info.stop_reason, mm_stop_reason::MM_STOP_STRING as i32);
    mm_session_destroy(s1);
    mm_session_destroy(s2);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_before_evaluation() {
    let m = models();
    let mut p = params(m);
    p.n_ctx = 64;
    let s = create(&p).unwrap();
    let prompt = CString::new("word ".repeat(200)).unwrap();
    let (st, msg) = ask(s, &ask_params(&prompt, &[image_item(m)])).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_CONTEXT_FULL, "{msg}");
    mm_session_destroy(s);
}

#[test]
fn memory_report_counts_model_context_and_projector() {
    let m = models();
    let s = create(&params(m)).unwrap();
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(s, &mut stats) }, mm_status::MM_OK, "{}", last_error());
    let model_file = std::fs::metadata(m.model.to_str().unwrap()).unwrap().len();
    assert!(stats.model_host + stats.model_gpu > model_file / 2, "{stats:?} vs file {model_file}");
    assert!(stats.kv_host + stats.kv_gpu > 0, "{stats:?}");
    assert!(stats.compute_host + stats.compute_gpu > 0, "{stats:?}");
    assert!(stats.projector_host + stats.projector_gpu > 0, "{stats:?}");
    mm_session_destroy(s);
}

unsafe extern "C" fn count_logs(user_data: *mut c_void, level: i32, message: *const c_char) {
    assert!(!message.is_null());
    assert!((1..=4).contains(&level));
    *(user_data as *mut usize) += 1;
}

#[test]
fn logs_reach_a_callback_and_can_be_silenced() {
    let m = models();
    static mut COUNT: usize = 0;
    let count = std::ptr::addr_of_mut!(COUNT);
    assert_eq!(
        mm_log_set(::mm_session::library::mm_log_level::MM_LOG_DEBUG as i32, Some(count_logs), count.cast()),
        mm_status::MM_OK
    );
    let s = create(&params(m)).unwrap();
    mm_session_destroy(s);
    let after_debug = unsafe { *count };
    assert!(after_debug > 0, "debug logs reach the callback");
    assert_eq!(
        mm_log_set(::mm_session::library::mm_log_level::MM_LOG_OFF as i32, Some(count_logs), count.cast()),
        mm_status::MM_OK
    );
    let s = create(&params(m)).unwrap();
    mm_session_destroy(s);
    assert_eq!(unsafe { *count }, after_debug, "MM_LOG_OFF silences");
    assert_eq!(mm_log_set(42, None, std::ptr::null_mut()), mm_status::MM_ERR_INVALID_ARGUMENT);
    assert_eq!(
        mm_log_set(::mm_session::library::mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()),
        mm_status::MM_OK
    );
}

/// KV cache bytes of a session made with `p` after one request with an image.
fn kv_bytes(m: &Models, p: &mm_session_params) -> u64 {
    let s = create(p).unwrap_or_else(|e| panic!("{e:?}"));
    let prompt = CString::new("Describe <__media__>.").unwrap();
    let media = [image_item(m)];
    ask(s, &ask_params(&prompt, &media)).expect("a request");
    let mut stats =
        mm_memory_stats { struct_size: std::mem::size_of::<mm_memory_stats>() as u32, ..Default::default() };
    assert_eq!(unsafe { mm_session_memory(s, &mut stats) }, mm_status::MM_OK);
    mm_session_destroy(s);
    stats.kv_host + stats.kv_gpu
}

#[test]
fn kv_cache_types_flash_attention_ubatch_and_mlock() {
    let m = models();
    // Heads of 32 (n_embd 128, 4 heads): quantized blocks of 32 fit them.
    let dir = fixture_dir().join("heads-32");
    fixtures::write_all(&dir, &FixtureSpec { n_embd: 128, n_ff: 256, ..FixtureSpec::default() }).unwrap();
    let model = CString::new(dir.join(fixtures::MODEL_FILE).to_str().unwrap()).unwrap();
    let mmproj = CString::new(dir.join(fixtures::MMPROJ_FILE).to_str().unwrap()).unwrap();
    let base = mm_session_params { model_path: model.as_ptr(), mmproj_path: mmproj.as_ptr(), ..params(m) };
    let kv = |kv_type: mm_kv_type, flash_attn: mm_flash_attn| {
        let p = mm_session_params {
            kv_type_k: kv_type as i32,
            kv_type_v: kv_type as i32,
            flash_attn: flash_attn as i32,
            n_ubatch: 64,
            use_mlock: true,
            ..base
        };
        kv_bytes(m, &p)
    };
    let f16 = kv_bytes(m, &base);
    let q8 = kv(mm_kv_type::MM_KV_Q8_0, mm_flash_attn::MM_FLASH_ATTN_ON);
    let q4 = kv(mm_kv_type::MM_KV_Q4_0, mm_flash_attn::MM_FLASH_ATTN_AUTO);
    assert!(q8 * 10 < f16 * 6 && q4 < q8, "f16 {f16}, q8_0 {q8}, q4_0 {q4} bytes");
    assert_eq!(kv(mm_kv_type::MM_KV_F16, mm_flash_attn::MM_FLASH_ATTN_OFF), f16);
    // A quantized K cache without flash attention is llama.cpp's own choice to allow.
    let k_only = mm_session_params {
        kv_type_k: mm_kv_type::MM_KV_Q8_0 as i32,
        flash_attn: mm_flash_attn::MM_FLASH_ATTN_OFF as i32,
        ..base
    };
    assert!(kv_bytes(m, &k_only) < f16);
    // Heads of 16 (the default fixture): llama.cpp refuses a quantized cache, and says why.
    let p = mm_session_params {
        kv_type_k: mm_kv_type::MM_KV_Q8_0 as i32,
        flash_attn: mm_flash_attn::MM_FLASH_ATTN_ON as i32,
        ..params(m)
    };
    let (st, msg) = create(&p).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_CONTEXT_CREATE, "{msg}");
    assert!(msg.contains("does not divide"), "{msg}");
    assert_eq!(mm_live_sessions(), 0);
}

/// A context whose KV cache cannot fit in the memory free on the machine is refused before
/// llama.cpp tries to allocate it, at create and at fork (2^28 tokens took 35 s and 13 GB to
/// fail in llama.cpp).
#[test]
fn a_context_larger_than_memory_is_refused_before_allocating() {
    let m = models();
    let huge = 1u32 << 30;
    let (st, msg) = create(&mm_session_params { n_ctx: huge, ..params(m) }).unwrap_err();
    assert_eq!(st, mm_status::MM_ERR_CONTEXT_CREATE, "{msg}");
    assert!(msg.contains("KV cache alone"), "{msg}");
    let s = create(&params(m)).unwrap();
    let mut f = mm_fork_params_default();
    f.n_ctx = huge;
    let mut out = std::ptr::null_mut();
    assert_eq!(unsafe { mm_session_fork(s, &f, &mut out) }, mm_status::MM_ERR_CONTEXT_CREATE);
    assert!(last_error().contains("KV cache alone"), "{}", last_error());
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    assert_eq!((mm_live_sessions(), mm_loaded_models()), (0, 0));
}

#[test]
fn build_info_names_the_cpu_features_of_the_build() {
    let info = unsafe { CStr::from_ptr(mm_build_info()) }.to_str().unwrap().to_owned();
    assert!(info.starts_with(&format!("mm-session {}; target-cpu: ", env!("CARGO_PKG_VERSION"))), "{info}");
    assert!(info.contains("backends: ") && info.contains("CPU ("), "{info}");
    // The test is compiled for the same CPU as the library: what Rust enables, ggml names.
    #[cfg(target_arch = "x86_64")]
    for (enabled, name) in [
        (cfg!(target_feature = "avx2"), " AVX2 "),
        (cfg!(target_feature = "avx512f"), " AVX512 "),
        (cfg!(target_feature = "fma"), " FMA "),
    ] {
        assert_eq!(info.replace(['(', ')'], " ").contains(name), enabled, "{name}: {info}");
    }
}

#[test]
fn five_hundred_create_destroy_cycles() {
    let m = models();
    let p = params(m);
    for i in 0..500 {
        let s = create(&p).unwrap_or_else(|e| panic!("cycle {i}: {e:?}"));
        assert_eq!(mm_live_sessions(), 1);
        assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    }
    assert_eq!(mm_live_sessions(), 0);
}

/// Sessions made on several threads at once, so that glibc serves each from its own malloc
/// arena, then destroyed: the freed pages of every arena go back to the system with the model.
#[test]
fn an_unloaded_model_gives_its_memory_back_whichever_threads_made_it() {
    let prompt = c("Describe <__media__> briefly.");
    let cycle = || {
        let s = create(&params(models())).unwrap();
        let image = [image_item(models())];
        ask(s, &ask_params(&prompt, &image)).unwrap();
        s as usize
    };
    assert_eq!(mm_session_destroy(cycle() as *mut mm_session), mm_status::MM_OK);
    let before = rss_kb();
    const THREADS: usize = 6;
    let barrier = std::sync::Barrier::new(THREADS);
    let sessions: Vec<usize> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let s = cycle();
                    barrier.wait();
                    s
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let peak = rss_kb();
    for s in sessions {
        assert_eq!(mm_session_destroy(s as *mut mm_session), mm_status::MM_OK);
    }
    let after = rss_kb();
    eprintln!("rss before {before} kB, with {THREADS} sessions {peak} kB, after destroying them {after} kB");
    assert!(peak > before + 4096, "{THREADS} sessions took only {} kB", peak - before);
    assert!(
        after < before + (peak - before) / 4,
        "after destroy {after} kB: {} kB of the {} kB the sessions took stayed resident",
        after - before,
        peak - before
    );
}

#[test]
fn status_strings_and_version() {
    let s = |st: i32| unsafe { CStr::from_ptr(mm_status_str(st)) }.to_str().unwrap().to_owned();
    assert_eq!(s(0), "ok");
    assert_eq!(s(mm_status::MM_ERR_INVALID_HANDLE as i32), "invalid or destroyed session handle");
    assert_eq!(s(-7), "unknown status");
    let v = unsafe { CStr::from_ptr(mm_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn thread_counts_above_the_machine_are_lowered_with_a_warning() {
    let m = models();
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_WARN as i32, Some(record_log), std::ptr::null_mut()), MM_OK);
    LOGGED.lock().unwrap().clear();
    WATCH.store(true, Ordering::SeqCst);
    let mut p = params(m);
    p.n_threads = 100_000;
    let s = create(&p).unwrap();
    WATCH.store(false, Ordering::SeqCst);
    let logged = LOGGED.lock().unwrap().join("");
    assert!(logged.contains("n_threads 100000 is more than this machine's"), "{logged}");
    let prompt = c("Quick.");
    assert_eq!(status_of_ask(s, &prompt_params(&prompt)), MM_OK);
    assert_eq!(mm_session_destroy(s), MM_OK);
    assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), MM_OK);
}

#[test]
fn small_ones() {
    let m = models();
    // count_tokens on a request that does not fit gives its count with MM_ERR_CONTEXT_FULL.
    let mut p = params(m);
    p.n_ctx = 32;
    let s = create(&p).unwrap();
    let long = c(&"word ".repeat(2000));
    let mut n = 0;
    assert_eq!(unsafe { mm_session_count_tokens(s, &prompt_params(&long), &mut n) }, MM_ERR_CONTEXT_FULL);
    assert!(n > 1000, "count {n}");
    assert_eq!(mm_session_destroy(s), MM_OK);

    // An unknown template name is the caller's, and said so, at create.
    let name = c("no-such-template");
    let mut p = params(m);
    p.chat_template = name.as_ptr();
    let (st, msg) = create(&p).unwrap_err();
    assert_eq!(st, MM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("chat_template \"no-such-template\" is neither a built-in name"), "{msg}");

    // MM_ERR_FILE_UNREADABLE is not only about GGUF files.
    let text = unsafe { CStr::from_ptr(mm_status_str(MM_ERR_FILE_UNREADABLE as i32)) }.to_str().unwrap();
    assert!(!text.contains("GGUF"), "{text}");
}
