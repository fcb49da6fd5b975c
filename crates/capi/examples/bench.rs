//! `make bench`: mm-session against raw llama.cpp, stage by stage, in one process.
//!
//! Each stage runs the same work through the C API of mm-session and through llama.cpp's and
//! mtmd's own calls (llama-cpp-sys-2, the same build of llama.cpp), interleaved run by run
//! (the side that goes first alternates), one thread each, and prints the medians:
//!
//! ```text
//! stage=NAME mm_ms=A raw_ms=B ratio=A/B
//! ```
//!
//! then `worst_ratio=X`, the largest ratio. Stages: requests on the tiny and the bench pair, a
//! follow-up that reuses the conversation, a whole create/ask/destroy cycle, and, when
//! `MM_TEST_MODEL` names a real text model, its create, a prefill and a generation. Memory
//! figures come from child processes (one fresh process per measurement):
//!
//! ```text
//! memory=NAME mm_kb=A raw_kb=B over_raw_kb=A-B
//! ```
//!
//! Usage: `bench [RUNS]` (default 11 runs per stage; the tiny pair's stages run 4 times as
//! many, the follow-up twice, the real model's a third). A stage is one function; a new stage is one more function and one more line in `main`.

mod support;

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::process::Command;

use ::mm_session::ask::*;
use llama_cpp_sys_2 as sys;
use support::*;

/// Context of every session and raw context of the benchmark.
const N_CTX: u32 = 2048;
/// `n_batch` (and `n_ubatch`) of both sides: the library's default.
const N_BATCH: u32 = 512;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(11).max(1);
    quiet();
    let dir = fixture_dir();
    let f = Fixtures::write(&dir);
    let gemma = real_model();
    let mut stages = vec![
        stage_request_tiny(&f, runs * 4),
        stage_request_bench(&f, runs),
        stage_followup_bench(&f, runs * 2),
        stage_cycle_tiny(&f, runs * 4),
    ];
    if let Some(g) = &gemma {
        let runs = runs.div_ceil(3).max(3);
        stages.push(stage_create_model(g, runs));
        stages.push(stage_prefill_model(g, runs));
        stages.push(stage_generation_model(g, runs));
    }
    media_hash_share(&f, &stages[1]);
    memory_after_destroy(&f, gemma.as_deref());
    memory_cycles(&f);
    let worst = stages.iter().map(Stage::ratio).fold(0.0, f64::max);
    println!("worst_ratio={worst:.3}");
}

/// One stage's medians.
struct Stage {
    name: &'static str,
    mm_ms: f64,
    raw_ms: f64,
}

impl Stage {
    fn ratio(&self) -> f64 {
        self.mm_ms / self.raw_ms
    }
    fn print(self) -> Stage {
        println!("stage={} mm_ms={:.3} raw_ms={:.3} ratio={:.3}", self.name, self.mm_ms, self.raw_ms, self.ratio());
        self
    }
}

/// Runs `mm` and `raw` (each returns the milliseconds of its timed part) twice each to warm up,
/// then `runs` times each, alternating which goes first, and keeps their medians.
fn interleave(name: &'static str, runs: usize, mut mm: impl FnMut() -> f64, mut raw: impl FnMut() -> f64) -> Stage {
    for _ in 0..2 {
        mm();
        raw();
    }
    let (mut a, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for r in 0..runs {
        if r % 2 == 0 {
            a.push(mm());
            b.push(raw());
        } else {
            b.push(raw());
            a.push(mm());
        }
    }
    Stage { name, mm_ms: median(&mut a), raw_ms: median(&mut b) }.print()
}

/// Times `f`, in milliseconds.
fn timed(f: impl FnOnce()) -> f64 {
    let t = clock_ms();
    f();
    clock_ms() - t
}

// ---- Stages ---------------------------------------------------------------------------------

const TINY_PROMPT: &CStr = c"Compare <__media__> and <__media__>.";
const TINY_TOKENS: i32 = 8;
const BENCH_PROMPT: &CStr = c"Describe <__media__> in one line.";
const BENCH_TOKENS: i32 = 16;

/// A request on the tiny pair: two image files, 8 tokens, from an empty cache.
fn stage_request_tiny(f: &Fixtures, runs: usize) -> Stage {
    let p = &f.tiny;
    let s = create(&session_params(&p.model, Some(&p.mmproj), N_CTX));
    let raw = Raw::load(&p.model, Some(&p.mmproj), N_CTX);
    let media = [image_file(&p.image), image_file(&p.image)];
    let images = [p.image.as_c_str(), p.image.as_c_str()];
    let stage = interleave(
        "request_tiny",
        runs,
        || timed(|| drop(ask_fresh(s, TINY_PROMPT, &media, TINY_TOKENS))),
        || timed(|| drop(raw.request(TINY_PROMPT, &images, TINY_TOKENS))),
    );
    destroy(s);
    stage
}

/// A request on the bench pair: one 448 px PNG file, 16 tokens, from an empty cache.
fn stage_request_bench(f: &Fixtures, runs: usize) -> Stage {
    let p = &f.bench;
    let s = create(&session_params(&p.model, Some(&p.mmproj), N_CTX));
    let raw = Raw::load(&p.model, Some(&p.mmproj), N_CTX);
    let media = [image_file(&p.image)];
    let stage = interleave(
        "request_bench",
        runs,
        || timed(|| drop(ask_fresh(s, BENCH_PROMPT, &media, BENCH_TOKENS))),
        || timed(|| drop(raw.request(BENCH_PROMPT, &[&p.image], BENCH_TOKENS))),
    );
    destroy(s);
    stage
}

/// A follow-up question on the bench pair: the whole chat is sent again and the library
/// evaluates what its cache lacks. The raw side does what a llama.cpp program that keeps its
/// conversation does (llama-cpp-python and llama-server alike): it keeps its image in the KV
/// cache, tokenizes the chat's text after the image, and evaluates it from the first token that
/// differs from the tokens it holds (a generated answer, tokenized again, may differ from the
/// tokens sampled). Both evaluate the same tokens, and start each run from the first turn (the
/// library's session reloads its saved state, untimed).
fn stage_followup_bench(f: &Fixtures, runs: usize) -> Stage {
    let p = &f.bench;
    let first_text = c"Describe this picture.";
    let answer_tokens = BENCH_TOKENS;
    let media = [image_file(&p.image)];
    let user =
        |text: &CStr| mm_message { role: c"user".as_ptr(), text: text.as_ptr(), media: std::ptr::null(), n_media: 0 };
    let mut first = user(first_text);
    first.media = media.as_ptr();
    first.n_media = 1;

    let s = create(&session_params(&p.model, Some(&p.mmproj), N_CTX));
    let mut a = greedy(answer_tokens);
    a.messages = &first;
    a.n_messages = 1;
    let answer = CString::new(ask(s, &a)).expect("no NUL");
    let state = CString::new(fixture_dir().join("followup.mmstate").to_str().unwrap()).unwrap();
    // SAFETY: the path is a NUL-terminated string.
    assert_eq!(
        unsafe { ::mm_session::state::mm_session_save_state(s, state.as_ptr()) },
        ::mm_session::status::mm_status::MM_OK,
        "{}",
        last_error()
    );

    let raw = Raw::load(&p.model, Some(&p.mmproj), N_CTX);
    let marker = unsafe { CStr::from_ptr(sys::mtmd_default_marker()) }.to_string_lossy().into_owned();
    let first_user = format!("{marker}\n{}", first_text.to_str().unwrap());
    let opening = chatml(&[("user", &first_user)], true);
    let opening_c = CString::new(opening.as_str()).unwrap();
    raw.forget_from(0);
    let mut held = raw.eval_media_prompt(&opening_c, &[&p.image]);
    let after_image = raw.n_past() - held.len() as i32;
    let generated = raw.generate(answer_tokens);
    assert_eq!(generated.text, answer.to_str().unwrap(), "both sides answer the first turn alike");
    held.extend(&generated.evaluated);

    let question = |turn: usize| format!("Turn {turn}: which part is brightest?");
    let (mut mm_turn, mut raw_turn) = (0, 0);
    let (mut mm_evaluated, mut raw_evaluated) = (0, 0);
    let stage = interleave(
        "followup_bench",
        runs,
        || {
            mm_turn += 1;
            let question = CString::new(question(mm_turn)).unwrap();
            let chat = [
                first,
                mm_message { role: c"assistant".as_ptr(), text: answer.as_ptr(), media: std::ptr::null(), n_media: 0 },
                user(&question),
            ];
            let mut a = greedy(BENCH_TOKENS);
            a.messages = chat.as_ptr();
            a.n_messages = chat.len();
            // SAFETY: the path is a NUL-terminated string.
            assert_eq!(
                unsafe { ::mm_session::state::mm_session_load_state(s, state.as_ptr()) },
                ::mm_session::status::mm_status::MM_OK
            );
            let ms = timed(|| drop(ask(s, &a)));
            let info = last_ask(s);
            assert_eq!(info.media_encoded, 0, "the follow-up reuses the image");
            mm_evaluated = info.tokens_evaluated;
            ms
        },
        || {
            raw_turn += 1;
            let question = question(raw_turn);
            let whole =
                chatml(&[("user", &first_user), ("assistant", answer.to_str().unwrap()), ("user", &question)], true);
            let after_marker = whole[whole.find(&marker).expect("the image's marker") + marker.len()..].to_string();
            timed(|| {
                let tokens = raw.tokenize(&after_marker, false);
                let common = tokens.iter().zip(&held).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
                raw.forget_from(after_image + common as i32);
                raw_evaluated = tokens.len() - common;
                raw.decode(&tokens[common..]);
                drop(raw.generate(BENCH_TOKENS));
            })
        },
    );
    println!("followup_tokens_evaluated mm={mm_evaluated} raw={raw_evaluated}");
    destroy(s);
    stage
}

/// A whole cycle on the tiny pair: create, one request (two images, 8 tokens), destroy.
fn stage_cycle_tiny(f: &Fixtures, runs: usize) -> Stage {
    let p = &f.tiny;
    let media = [image_file(&p.image), image_file(&p.image)];
    let images = [p.image.as_c_str(), p.image.as_c_str()];
    let params = session_params(&p.model, Some(&p.mmproj), N_CTX);
    interleave(
        "cycle_tiny",
        runs,
        || {
            timed(|| {
                let s = create(&params);
                ask_fresh(s, TINY_PROMPT, &media, TINY_TOKENS);
                destroy(s);
            })
        },
        || timed(|| drop(Raw::load(&p.model, Some(&p.mmproj), N_CTX).request(TINY_PROMPT, &images, TINY_TOKENS))),
    )
}

/// Creating a text-only session of the real model (the destroy is not timed).
fn stage_create_model(model: &CStr, runs: usize) -> Stage {
    let params = session_params(model, None, N_CTX);
    interleave(
        "create_model",
        runs,
        || {
            let t = clock_ms();
            let s = create(&params);
            let ms = clock_ms() - t;
            destroy(s);
            ms
        },
        || {
            let t = clock_ms();
            let raw = Raw::load(model, None, N_CTX);
            let ms = clock_ms() - t;
            drop(raw);
            ms
        },
    )
}

/// Tokens of the real model's prefill prompt.
const PREFILL_TOKENS: usize = 420;

/// A prompt of about `PREFILL_TOKENS` tokens for `raw`'s model.
fn prefill_prompt(raw: &Raw) -> CString {
    let sentence = "The old lighthouse keeper counted the ships that passed the northern cape each night, wrote their names in a worn ledger, and wondered where the sea would carry them next. ";
    let mut text = String::new();
    let mut i = 0;
    while raw.tokenize(&text, true).len() < PREFILL_TOKENS {
        text.push_str(&format!("{i}. {sentence}"));
        i += 1;
    }
    CString::new(text).unwrap()
}

/// Evaluating a prompt of about 420 tokens with the real model, and sampling one token.
fn stage_prefill_model(model: &CStr, runs: usize) -> Stage {
    let s = create(&session_params(model, None, N_CTX));
    let raw = Raw::load(model, None, N_CTX);
    let prompt = prefill_prompt(&raw);
    let stage = interleave(
        "prefill_model",
        runs,
        || timed(|| drop(ask_fresh(s, &prompt, &[], 1))),
        || timed(|| drop(raw.request(&prompt, &[], 1))),
    );
    println!("prefill_tokens={} generated_tokens=1", raw.tokenize(prompt.to_str().unwrap(), true).len());
    destroy(s);
    stage
}

/// Generating up to 128 tokens with the real model after a short prompt (greedy: both sides
/// give the same tokens and stop at the same place).
fn stage_generation_model(model: &CStr, runs: usize) -> Stage {
    const TOKENS: i32 = 128;
    let prompt = c"Write a long story about a dragon who learns to cook. Chapter 1:";
    let s = create(&session_params(model, None, N_CTX));
    let raw = Raw::load(model, None, N_CTX);
    let stage = interleave(
        "generation_model",
        runs,
        || timed(|| drop(ask_fresh(s, prompt, &[], TOKENS))),
        || timed(|| drop(raw.request(prompt, &[], TOKENS))),
    );
    println!(
        "generation_tokens={} prompt_tokens={}",
        last_ask(s).tokens_generated,
        raw.tokenize(prompt.to_str().unwrap(), true).len()
    );
    destroy(s);
    stage
}

// ---- Figures beside the stages ----------------------------------------------------------------

/// What hashing the bench request's image file costs (SHA-256, the library's media identity),
/// against the whole request.
fn media_hash_share(f: &Fixtures, request: &Stage) {
    use sha2::Digest;
    let bytes = std::fs::read(f.bench.image.to_str().unwrap()).expect("bench image");
    let mut times: Vec<f64> = (0..21)
        .map(|_| {
            timed(|| {
                std::hint::black_box(sha2::Sha256::digest(&bytes));
            })
        })
        .collect();
    let ms = median(&mut times);
    println!(
        "media_hash bytes={} hash_ms={ms:.3} request_bench_ms={:.3} share_pct={:.2}",
        bytes.len(),
        request.mm_ms,
        100.0 * ms / request.mm_ms
    );
}

/// Resident memory a fresh process keeps after creating and destroying one session (the real
/// model's text-only session when there is one, else the tiny pair) and `malloc_trim`: the
/// medians of 3 child processes per side.
fn memory_after_destroy(f: &Fixtures, model: Option<&CStr>) {
    let (name, model, mmproj) = match model {
        Some(m) => ("after_destroy_model", m.to_str().unwrap(), ""),
        None => ("after_destroy_tiny", f.tiny.model.to_str().unwrap(), f.tiny.mmproj.to_str().unwrap()),
    };
    let kb = |side: &str| -> i64 {
        let mut v: Vec<f64> =
            (0..3).map(|_| child_figure(&["after-destroy", side, model, mmproj], "kept_kb", None) as f64).collect();
        median(&mut v) as i64
    };
    let (mm, raw) = (kb("mm"), kb("raw"));
    println!("memory={name} mm_kb={mm} raw_kb={raw} over_raw_kb={}", mm - raw);
}

/// Growth of resident memory over 200 create/ask/destroy cycles of the tiny pair, from cycle
/// 10 to cycle 200: the medians of 3 child processes per side, with glibc's malloc as it comes
/// (its mmap threshold rises with the largest block freed, which moves llama.cpp's compute
/// buffers onto the heap, where their place shifts with allocation history) and with the
/// threshold fixed (`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`).
fn memory_cycles(f: &Fixtures) {
    let args = |side: &'static str| {
        [side, f.tiny.model.to_str().unwrap(), f.tiny.mmproj.to_str().unwrap(), f.tiny.image.to_str().unwrap()]
    };
    for (name, tunables) in [
        ("cycles_tiny_200", None),
        ("cycles_tiny_200_fixed_mmap_threshold", Some("glibc.malloc.mmap_threshold=131072")),
    ] {
        let kb = |side: &'static str| -> i64 {
            let mut v: Vec<f64> = (0..3)
                .map(|_| child_figure(&[&["cycles"][..], &args(side)].concat(), "growth_kb", tunables) as f64)
                .collect();
            median(&mut v) as i64
        };
        let (mm, raw) = (kb("mm"), kb("raw"));
        println!("memory={name} mm_kb={mm} raw_kb={raw} over_raw_kb={}", mm - raw);
    }
}

/// Runs this program as a child with `--child args` (and `GLIBC_TUNABLES` set to `tunables`
/// when given) and reads `key=N` from its output.
fn child_figure(args: &[&str], key: &str, tunables: Option<&str>) -> i64 {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(t) = tunables {
        command.env("GLIBC_TUNABLES", t);
    }
    let out = command.arg("--child").args(args).output().expect("child process");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child {args:?} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("child {args:?} printed no {key}: {text}"))
}

/// The child processes' work: `after-destroy SIDE MODEL MMPROJ` and
/// `cycles SIDE MODEL MMPROJ IMAGE`.
fn child(args: &[String]) {
    quiet();
    let mm = args[1] == "mm";
    let model = CString::new(args[2].as_str()).unwrap();
    let mmproj = CString::new(args[3].as_str()).unwrap();
    let mmproj = (!args[3].is_empty()).then_some(mmproj.as_c_str());
    // Both sides start from an initialised llama.cpp.
    unsafe { sys::llama_backend_init() };
    match args[0].as_str() {
        "after-destroy" => {
            trim();
            let before = rss_kb();
            if mm {
                destroy(create(&session_params(&model, mmproj, N_CTX)));
            } else {
                drop(Raw::load(&model, mmproj, N_CTX));
            }
            trim();
            println!("kept_kb={}", rss_kb() - before);
        }
        "cycles" => {
            let image = CString::new(args[4].as_str()).unwrap();
            let media = [image_file(&image), image_file(&image)];
            let images = [image.as_c_str(), image.as_c_str()];
            let params = session_params(&model, mmproj, 512);
            let mut rss10 = 0;
            for i in 1..=200 {
                if mm {
                    let s = create(&params);
                    ask_fresh(s, TINY_PROMPT, &media, TINY_TOKENS);
                    destroy(s);
                } else {
                    drop(Raw::load(&model, mmproj, 512).request(TINY_PROMPT, &images, TINY_TOKENS));
                }
                if i == 10 {
                    rss10 = rss_kb();
                }
            }
            println!("growth_kb={}", rss_kb() - rss10);
        }
        other => panic!("unknown child mode {other}"),
    }
}

// ---- Raw llama.cpp ----------------------------------------------------------------------------

/// The ChatML rendering of `messages` (what the library uses for models without a template).
fn chatml(messages: &[(&str, &str)], add_assistant: bool) -> String {
    let c: Vec<(CString, CString)> =
        messages.iter().map(|(r, t)| (CString::new(*r).unwrap(), CString::new(*t).unwrap())).collect();
    let chat: Vec<sys::llama_chat_message> =
        c.iter().map(|(r, t)| sys::llama_chat_message { role: r.as_ptr(), content: t.as_ptr() }).collect();
    let mut buf = vec![0u8; 4096];
    let n = unsafe {
        sys::llama_chat_apply_template(
            c"chatml".as_ptr(),
            chat.as_ptr(),
            chat.len(),
            add_assistant,
            buf.as_mut_ptr().cast(),
            buf.len() as i32,
        )
    };
    assert!(n > 0 && (n as usize) <= buf.len());
    buf.truncate(n as usize);
    String::from_utf8(buf).unwrap()
}

/// What a raw request generated.
struct Generated {
    text: String,
    /// The tokens evaluated after the prompt (every one sampled but the last, as in the library).
    evaluated: Vec<sys::llama_token>,
}

/// A model, its context and (optionally) its projector, made and used with llama.cpp's and
/// mtmd's calls alone, with the settings the library uses (1 thread, greedy sampling).
struct Raw {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    mtmd: *mut sys::mtmd_context,
    batch: sys::llama_batch,
    n_past: std::cell::Cell<i32>,
}

impl Raw {
    fn load(model_path: &CStr, mmproj: Option<&CStr>, n_ctx: u32) -> Raw {
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.load_mode = sys::LLAMA_LOAD_MODE_MMAP;
            let model = sys::llama_model_load_from_file(model_path.as_ptr(), mp);
            assert!(!model.is_null(), "raw: model did not load");
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = N_BATCH;
            cp.n_ubatch = N_BATCH;
            cp.n_threads = 1;
            cp.n_threads_batch = 1;
            cp.no_perf = true;
            let ctx = sys::llama_init_from_model(model, cp);
            assert!(!ctx.is_null(), "raw: no context");
            let mtmd = match mmproj {
                None => std::ptr::null_mut(),
                Some(path) => {
                    let mut pp = sys::mtmd_context_params_default();
                    pp.n_threads = 1;
                    pp.print_timings = false;
                    let m = sys::mtmd_init_from_file(path.as_ptr(), model, pp);
                    assert!(!m.is_null(), "raw: projector did not load");
                    m
                }
            };
            Raw { model, ctx, mtmd, batch: sys::llama_batch_init(N_BATCH as i32, 0, 1), n_past: 0.into() }
        }
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        unsafe { sys::llama_model_get_vocab(self.model) }
    }

    fn n_past(&self) -> i32 {
        self.n_past.get()
    }

    fn forget_from(&self, pos: i32) {
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ctx), 0, pos, -1) };
        self.n_past.set(pos);
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Vec<sys::llama_token> {
        raw_tokenize(self.vocab(), text, add_special)
    }

    /// Evaluates `tokens` after what the context holds, `n_batch` at a time, with logits for
    /// the last one only.
    fn decode(&self, tokens: &[sys::llama_token]) {
        let mut b = self.batch;
        for chunk in tokens.chunks(N_BATCH as usize) {
            let at = self.n_past.get();
            unsafe {
                for (i, &t) in chunk.iter().enumerate() {
                    *b.token.add(i) = t;
                    *b.pos.add(i) = at + i as i32;
                    *b.n_seq_id.add(i) = 1;
                    **b.seq_id.add(i) = 0;
                    *b.logits.add(i) = 0;
                }
                b.n_tokens = chunk.len() as i32;
                *b.logits.add(chunk.len() - 1) = 1;
                assert_eq!(sys::llama_decode(self.ctx, b), 0, "raw: llama_decode");
            }
            self.n_past.set(at + chunk.len() as i32);
        }
    }

    /// Evaluates a prompt with markers and the image files they stand for (mtmd's helpers);
    /// returns the text tokens that follow the last image.
    fn eval_media_prompt(&self, text: &CStr, images: &[&CStr]) -> Vec<sys::llama_token> {
        unsafe {
            let bitmaps: Vec<*mut sys::mtmd_bitmap> = images
                .iter()
                .map(|p| {
                    let w = sys::mtmd_helper_bitmap_init_from_file(
                        self.mtmd,
                        p.as_ptr(),
                        false,
                        sys::mtmd_helper_init_opt_default(),
                    );
                    assert!(!w.bitmap.is_null(), "raw: image did not decode");
                    w.bitmap
                })
                .collect();
            let chunks = sys::mtmd_input_chunks_init();
            let input = sys::mtmd_input_text {
                text: text.as_ptr(),
                text_len: text.to_bytes().len(),
                add_special: true,
                parse_special: true,
            };
            let ptrs: Vec<*const sys::mtmd_bitmap> = bitmaps.iter().map(|&b| b as *const _).collect();
            assert_eq!(
                sys::mtmd_tokenize(self.mtmd, chunks, &input, ptrs.as_ptr(), ptrs.len()),
                0,
                "raw: mtmd_tokenize"
            );
            let mut new_n_past = 0;
            assert_eq!(
                sys::mtmd_helper_eval_chunks(
                    self.mtmd,
                    self.ctx,
                    chunks,
                    self.n_past.get(),
                    0,
                    N_BATCH as i32,
                    true,
                    &mut new_n_past
                ),
                0,
                "raw: eval"
            );
            self.n_past.set(new_n_past);
            let last = sys::mtmd_input_chunks_get(chunks, sys::mtmd_input_chunks_size(chunks) - 1);
            let mut tail = Vec::new();
            if sys::mtmd_input_chunk_get_type(last) == sys::MTMD_INPUT_CHUNK_TYPE_TEXT {
                let mut n = 0;
                let tokens = sys::mtmd_input_chunk_get_tokens_text(last, &mut n);
                tail.extend_from_slice(std::slice::from_raw_parts(tokens, n));
            }
            sys::mtmd_input_chunks_free(chunks);
            bitmaps.into_iter().for_each(|b| sys::mtmd_bitmap_free(b));
            tail
        }
    }

    /// Greedy generation of up to `max_tokens` tokens; the last one sampled is not evaluated.
    fn generate(&self, max_tokens: i32) -> Generated {
        unsafe {
            let sampler = sys::llama_sampler_init_greedy();
            let mut bytes = Vec::new();
            let mut evaluated = Vec::new();
            for n in 0..max_tokens {
                let token = sys::llama_sampler_sample(sampler, self.ctx, -1);
                if sys::llama_vocab_is_eog(self.vocab(), token) {
                    break;
                }
                let mut piece = [0u8; 256];
                let len = sys::llama_token_to_piece(
                    self.vocab(),
                    token,
                    piece.as_mut_ptr() as *mut c_char,
                    piece.len() as i32,
                    0,
                    false,
                );
                bytes.extend_from_slice(&piece[..len.max(0) as usize]);
                if n + 1 == max_tokens {
                    break;
                }
                self.decode(&[token]);
                evaluated.push(token);
            }
            sys::llama_sampler_free(sampler);
            Generated { text: String::from_utf8_lossy(&bytes).into_owned(), evaluated }
        }
    }

    /// A request from an empty context: the prompt (with image files at its markers when there
    /// is a projector), then greedy generation.
    fn request(&self, prompt: &CStr, images: &[&CStr], max_tokens: i32) -> Generated {
        self.forget_from(0);
        if self.mtmd.is_null() {
            self.decode(&self.tokenize(prompt.to_str().unwrap(), true));
        } else {
            self.eval_media_prompt(prompt, images);
        }
        self.generate(max_tokens)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        unsafe {
            sys::llama_batch_free(self.batch);
            if !self.mtmd.is_null() {
                sys::mtmd_free(self.mtmd);
            }
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}
