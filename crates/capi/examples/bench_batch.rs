//! `make bench-batch`: sessions that decode together (`mm_session_params.n_parallel`) against
//! raw llama.cpp decoding the same sequences in one batch, in one process.
//!
//! For B = 1, 2, 4 and 8 sessions, each generating `TOKENS` (64) tokens, greedy, from its own
//! short prompt ("Write a short story about a <animal>.", one animal each), every end-of-generation
//! token banned so that each generates exactly 64:
//!
//! - mm: a session created with `n_parallel` = B and B-1 forks (default fork params), asked at
//!   once from B threads started by a barrier; timed from the barrier to the last answer.
//! - raw: one llama.cpp context with `n_seq_max` = B, `kv_unified`, `n_ctx` = B x `N_CTX`, the
//!   same `n_batch`/`n_ubatch` and threads; the B prompts evaluated in one batch (`n_batch` at
//!   a time), then one `llama_decode` per generated token carrying one token of each sequence,
//!   greedy argmax over the logits with the same tokens banned. Both sides evaluate the same
//!   tokens: the prompt with BOS, then every generated token but the last.
//!
//! Runs alternate which side goes first (one warm-up each), and the medians give:
//!
//! ```text
//! sessions=B mm_tok_s=X raw_tok_s=Y ratio=X/Y
//! sessions=8 mm_tok_s=X raw_tok_s=Y ratio=R speedup_vs_one=S
//! goal: ...
//! ```
//!
//! (`detail` lines before each: the most sessions one step carried, whether both sides generated
//! the same tokens in the warm-up run, the process's CPU time over each side's span (all its
//! threads: the work each side does, whatever else the machine runs), prompt time and time per
//! step. After the goal line,
//! `pick_ms_per_token`: what choosing one session's next token costs done as the library does
//! it, against the raw side's argmax, for the vocabulary's size.)
//! Then the time to first piece of a request (a prompt of about 30 tokens, 1 token) made while
//! 7 other sessions of the same context generate, against the same request on a session alone:
//!
//! ```text
//! join_ttft_ms=X alone_ttft_ms=Y
//! why: ...
//! ```
//!
//! The model: `MM_TEST_MODEL` when set (a text model), else the bench pair's text model
//! (`mm-fixtures --size bench`, under `MM_BENCH_DIR`). Threads: `MM_BENCH_THREADS`, else the
//! library's default (half the hardware threads, between 1 and 8), given to both sides.
//! Layers on a GPU: all (the library's default), on both sides. Usage: `bench_batch [RUNS]`
//! (default 3 runs per median, or `MM_BENCH_RUNS`); `MM_BENCH_SESSIONS` (such as "1,2,4,8,16")
//! measures other session counts, up to 16.

mod support;

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use ::mm_session::ask::*;
use ::mm_session::conversation::{mm_ask_info, mm_session_reset};
use ::mm_session::library::mm_string_free;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use llama_cpp_sys_2 as sys;
use support::*;

/// Context positions of each session (and each raw sequence).
const N_CTX: u32 = 512;
/// `n_batch` (and `n_ubatch`) of both sides: the library's default.
const N_BATCH: u32 = 512;
/// Tokens each session generates.
const TOKENS: i32 = 64;
/// Session counts measured (`MM_BENCH_SESSIONS`, such as "1,8,16", measures others, up to 16).
const SESSIONS: [usize; 4] = [1, 2, 4, 8];
const ANIMALS: [&str; 16] = [
    "fox", "whale", "owl", "tiger", "otter", "falcon", "turtle", "wolf", "bear", "crow", "seal", "hare", "lynx",
    "moth", "swan", "yak",
];
/// The request that joins 7 generating sessions: about 30 tokens.
const JOIN_PROMPT: &str = "Explain in one clear sentence why the ocean tides rise and fall twice every day, and name the two bodies whose gravity pulls the water.";
/// Tokens the 7 other sessions are asked for while the 8th joins (they are stopped after it).
const BACKGROUND_TOKENS: i32 = 256;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MM_BENCH_RUNS").ok())
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    quiet();
    let model = real_model().unwrap_or_else(|| Fixtures::write(&fixture_dir()).bench.model);
    let threads: i32 = std::env::var("MM_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or_else(|| {
        let hw = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
        (hw / 2).clamp(1, 8)
    });
    let name = model.to_string_lossy();
    println!("model={} threads={threads} tokens={TOKENS} runs={runs}", name.rsplit('/').next().unwrap_or(&name));

    // A session first: it initializes llama.cpp's backends for the raw side too.
    let first = create(&params(&model, threads, 1));
    let raw = RawModel::load(&model);
    let banned = raw.eog_mask();
    let bias: Vec<mm_logit_bias> = banned
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(t, _)| mm_logit_bias { token: t as i32, bias: f32::NEG_INFINITY })
        .collect();
    println!("eog_tokens_banned={}", bias.len());
    destroy(first);

    let prompts: Vec<CString> =
        ANIMALS.iter().map(|a| CString::new(format!("Write a short story about a {a}.")).unwrap()).collect();
    let prompt_tokens: Vec<Vec<sys::llama_token>> =
        prompts.iter().map(|p| raw_tokenize(raw.vocab(), p.to_str().unwrap(), true)).collect();

    let counts: Vec<usize> = std::env::var("MM_BENCH_SESSIONS").ok().map_or(SESSIONS.to_vec(), |list| {
        list.split(',').filter_map(|n| n.trim().parse().ok()).filter(|n| (1..=ANIMALS.len()).contains(n)).collect()
    });
    let mut mm_one = 0.0;
    let mut lines = Vec::new();
    for b in counts {
        let (mm_tok_s, raw_tok_s) =
            sessions(&model, &raw, threads, b, &prompts[..b], &prompt_tokens[..b], &bias, &banned, runs);
        if b == 1 {
            mm_one = mm_tok_s;
        }
        let mut line =
            format!("sessions={b} mm_tok_s={mm_tok_s:.2} raw_tok_s={raw_tok_s:.2} ratio={:.3}", mm_tok_s / raw_tok_s);
        if b == 8 {
            line.push_str(&format!(" speedup_vs_one={:.3}", mm_tok_s / mm_one));
        }
        println!("{line}");
        lines.push(line);
    }
    println!("goal: ratio >= 0.90 and speedup_vs_one >= 1.5 (2-core CPU, Gemma 3 270M); on a GPU speedup_vs_one >= 4");
    let (chain_ms, argmax_ms) = RawBatch::new(&raw, 1, threads).pick_cost(&prompt_tokens[0], &banned);
    println!(
        "pick_ms_per_token n_vocab={} library_like={chain_ms:.4} argmax={argmax_ms:.4} (row copy + candidates + logit_bias + greedy, per session per step)",
        banned.len()
    );
    join_ttft(&model, &raw, threads, &prompts, &bias, runs);
}

/// Session parameters of the benchmark: `threads` threads, `n_parallel` slots.
fn params(model: &CStr, threads: i32, n_parallel: u32) -> mm_session_params {
    let mut p = session_params(model, None, N_CTX);
    p.n_threads = threads;
    p.n_batch = N_BATCH;
    p.n_parallel = n_parallel;
    p
}

/// A session handle that threads share (the library's handles may be used from any thread).
#[derive(Clone, Copy)]
struct Handle(*mut mm_session);
// SAFETY: sessions are thread-safe handles of the C API.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// A session created with `n_parallel` = `n` and its `n - 1` forks (default fork params).
fn group(model: &CStr, threads: i32, n: usize) -> Vec<Handle> {
    let first = create(&params(model, threads, n as u32));
    let mut all = vec![Handle(first)];
    let fp = mm_fork_params_default();
    for _ in 1..n {
        let mut s = std::ptr::null_mut();
        // SAFETY: `first` is live, `fp` and `s` valid for the call.
        let st = unsafe { mm_session_fork(first, &fp, &mut s) };
        assert_eq!(st, mm_status::MM_OK, "mm_session_fork: {}", last_error());
        all.push(Handle(s));
    }
    all
}

/// Greedy request of `max_tokens` for `prompt`, the end-of-generation tokens banned.
fn request(prompt: &CStr, max_tokens: i32, bias: &[mm_logit_bias]) -> mm_ask_params {
    let mut a = greedy(max_tokens);
    a.prompt = prompt.as_ptr();
    a.logit_bias = bias.as_ptr();
    a.n_logit_bias = bias.len();
    a
}

/// Asks `a`, accepting an answer a callback stopped; frees the text.
fn ask_any(s: *mut mm_session, a: &mm_ask_params) {
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: `a` and what it points to are valid for the call; the answer is freed below.
    let st = unsafe { mm_session_ask(s, a, &mut out) };
    assert_eq!(st, mm_status::MM_OK, "mm_session_ask: {}", last_error());
    // SAFETY: the library's answer, freed once.
    unsafe { mm_string_free(out) };
}

/// One measurement of B sessions: the medians of mm's and raw's tokens per second.
#[allow(clippy::too_many_arguments)]
fn sessions(
    model: &CStr,
    raw: &RawModel,
    threads: i32,
    b: usize,
    prompts: &[CString],
    prompt_tokens: &[Vec<sys::llama_token>],
    bias: &[mm_logit_bias],
    banned: &[bool],
    runs: usize,
) -> (f64, f64) {
    let group = group(model, threads, b);
    let ctx = RawBatch::new(raw, b, threads);
    let total = (b as i32 * TOKENS) as f64;
    let mut most_together = 0;
    let (mut mm_ms, mut raw_ms) = (Vec::new(), Vec::new());
    let (mut mm_cpu, mut raw_cpu) = (Vec::new(), Vec::new());
    let (mut mm_prompt, mut mm_gen, mut raw_prompt, mut raw_step) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut same = false;
    for r in 0..runs + 1 {
        // The warm-up run collects mm's tokens (a token callback costs a softmax per token).
        let mut mm = || {
            let m = mm_run(&group, prompts, bias, r == 0);
            most_together = most_together.max(m.most_together);
            m
        };
        let (m, w) = if r % 2 == 0 {
            let m = mm();
            (m, ctx.run(prompt_tokens, banned))
        } else {
            let w = ctx.run(prompt_tokens, banned);
            (mm(), w)
        };
        if r == 0 {
            same = m.tokens == w.tokens;
        } else {
            mm_ms.push(m.ms);
            raw_ms.push(w.ms);
            mm_cpu.push(m.cpu_ms);
            raw_cpu.push(w.cpu_ms);
            mm_prompt.push(m.prompt_ms);
            mm_gen.push(m.generate_ms / (TOKENS - 1) as f64);
            raw_prompt.push(w.prompt_ms);
            raw_step.push((w.ms - w.prompt_ms) / (TOKENS - 1) as f64);
        }
    }
    let (mm_ms, raw_ms) = (median(&mut mm_ms), median(&mut raw_ms));
    println!(
        "detail sessions={b} most_together={most_together} same_tokens={same} mm_ms={mm_ms:.1} raw_ms={raw_ms:.1} \
         mm_cpu_ms={:.1} raw_cpu_ms={:.1} \
         mm_prompt_ms={:.1} raw_prompt_ms={:.1} mm_ms_per_step={:.2} raw_ms_per_step={:.2}",
        median(&mut mm_cpu),
        median(&mut raw_cpu),
        median(&mut mm_prompt),
        median(&mut raw_prompt),
        median(&mut mm_gen),
        median(&mut raw_step),
    );
    for h in group.into_iter().rev() {
        destroy(h.0);
    }
    (total / mm_ms * 1e3, total / raw_ms * 1e3)
}

/// CPU time of the whole process (every thread), in ms.
fn process_cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is writable; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

/// What one run of a side measured.
struct Run {
    ms: f64,
    /// CPU time of the process over the same span (all threads).
    cpu_ms: f64,
    /// Prompt time (mm: the slowest session's `prompt_ms`).
    prompt_ms: f64,
    /// mm: the slowest session's `generate_ms`.
    generate_ms: f64,
    most_together: u32,
    /// Each sequence's generated tokens (mm: when collected).
    tokens: Vec<Vec<i32>>,
}

/// Collects a request's generated token ids (`mm_token_callback`).
extern "C" fn collect_token(
    user_data: *mut c_void,
    chosen: *const mm_token_logprob,
    _top: *const mm_token_logprob,
    _n_top: usize,
) {
    // SAFETY: `user_data` is the asking thread's Vec, `chosen` valid during the call.
    unsafe { (*(user_data as *mut Vec<i32>)).push((*chosen).token) };
}

/// Asks every session of `group` its prompt at once, from one thread each; with `collect`,
/// keeps the tokens each generated.
fn mm_run(group: &[Handle], prompts: &[CString], bias: &[mm_logit_bias], collect: bool) -> Run {
    for h in group {
        assert_eq!(mm_session_reset(h.0), mm_status::MM_OK);
    }
    let barrier = Barrier::new(group.len() + 1);
    let (ms, cpu_ms, infos) = std::thread::scope(|scope| {
        let workers: Vec<_> = group
            .iter()
            .zip(prompts)
            .map(|(&h, prompt)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let h = h; // the whole Handle (Send), not its pointer field
                    let mut tokens: Vec<i32> = Vec::with_capacity(TOKENS as usize);
                    let mut a = request(prompt, TOKENS, bias);
                    if collect {
                        a.on_token = Some(collect_token);
                        a.user_data = (&mut tokens as *mut Vec<i32>).cast();
                    }
                    barrier.wait();
                    ask_any(h.0, &a);
                    (last_ask(h.0), tokens)
                })
            })
            .collect();
        barrier.wait();
        let (t, cpu) = (Instant::now(), process_cpu_ms());
        let infos: Vec<_> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
        (t.elapsed().as_secs_f64() * 1e3, process_cpu_ms() - cpu, infos)
    });
    for (info, _) in &infos {
        assert_eq!(info.tokens_generated, TOKENS as u32, "every session generates exactly {TOKENS} tokens");
    }
    Run {
        ms,
        cpu_ms,
        prompt_ms: infos.iter().map(|(i, _)| i.prompt_ms).fold(0.0, f64::max),
        generate_ms: infos.iter().map(|(i, _)| i.generate_ms).fold(0.0, f64::max),
        most_together: infos.iter().map(|(i, _)| i.most_together).max().unwrap_or(0),
        tokens: infos.into_iter().map(|(_, t)| t).collect(),
    }
}

// ---- A session that joins 7 generating ones ---------------------------------------------------

/// What the callbacks of one of the 7 background requests share with the main thread.
struct Background<'a> {
    started: &'a AtomicUsize,
    stop: &'a AtomicBool,
    seen: bool,
}

/// Counts the request as generating at its first piece; stops it once `stop` is set.
extern "C" fn background_text(user_data: *mut c_void, _text: *const c_char, _len: usize) -> bool {
    // SAFETY: `user_data` is the asking thread's Background.
    let b = unsafe { &mut *(user_data as *mut Background) };
    if !b.seen {
        b.seen = true;
        b.started.fetch_add(1, Ordering::SeqCst);
    }
    !b.stop.load(Ordering::SeqCst)
}

/// Records when the first piece came.
extern "C" fn first_text(user_data: *mut c_void, _text: *const c_char, _len: usize) -> bool {
    // SAFETY: `user_data` is the asking thread's Option<Instant>.
    let first = unsafe { &mut *(user_data as *mut Option<Instant>) };
    first.get_or_insert_with(Instant::now);
    true
}

/// Milliseconds to the first piece of `JOIN_PROMPT` on `s` (to the answer if no piece came).
fn ttft(s: *mut mm_session, prompt: &CStr, bias: &[mm_logit_bias]) -> (f64, mm_ask_info) {
    assert_eq!(mm_session_reset(s), mm_status::MM_OK);
    let mut first: Option<Instant> = None;
    let mut a = request(prompt, 1, bias);
    a.on_text = Some(first_text);
    a.user_data = (&mut first as *mut Option<Instant>).cast();
    let t = Instant::now();
    ask_any(s, &a);
    let end = first.unwrap_or_else(Instant::now);
    ((end - t).as_secs_f64() * 1e3, last_ask(s))
}

/// The 8th session of a context asks while the 7 others generate, against the same request
/// on a session alone; prints the medians and why they differ.
fn join_ttft(model: &CStr, raw: &RawModel, threads: i32, prompts: &[CString], bias: &[mm_logit_bias], runs: usize) {
    let group = group(model, threads, 8);
    let alone = create(&params(model, threads, 1));
    let join_prompt = CString::new(JOIN_PROMPT).unwrap();
    let (mut joined, mut single) = (Vec::new(), Vec::new());
    let (mut join_prompt_ms, mut alone_prompt_ms, mut together, mut wait) = (Vec::new(), Vec::new(), 0, Vec::new());
    let mut join_info = None;
    let joining = |prompt: &CStr| -> (f64, mm_ask_info) {
        for h in &group[..7] {
            assert_eq!(mm_session_reset(h.0), mm_status::MM_OK);
        }
        let started = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for (&h, p) in group[..7].iter().zip(prompts) {
                let (started, stop) = (&started, &stop);
                scope.spawn(move || {
                    let h = h; // the whole Handle (Send), not its pointer field
                    let mut bg = Background { started, stop, seen: false };
                    let mut a = request(p, BACKGROUND_TOKENS, bias);
                    a.on_text = Some(background_text);
                    a.user_data = (&mut bg as *mut Background).cast();
                    ask_any(h.0, &a);
                });
            }
            let t = Instant::now();
            while started.load(Ordering::SeqCst) < 7 {
                assert!(t.elapsed() < Duration::from_secs(120), "the 7 sessions did not start generating");
                std::thread::sleep(Duration::from_millis(1));
            }
            // A few steps into their generation.
            std::thread::sleep(Duration::from_millis(50));
            let m = ttft(group[7].0, prompt, bias);
            stop.store(true, Ordering::SeqCst);
            m
        })
    };
    for r in 0..runs + 1 {
        let (j, a) = if r % 2 == 0 {
            let j = joining(&join_prompt);
            (j, ttft(alone, &join_prompt, bias))
        } else {
            let a = ttft(alone, &join_prompt, bias);
            (joining(&join_prompt), a)
        };
        if r > 0 {
            joined.push(j.0);
            single.push(a.0);
            join_prompt_ms.push(j.1.prompt_ms);
            alone_prompt_ms.push(a.1.prompt_ms);
            wait.push(j.1.slot_wait_ms);
            together = together.max(j.1.most_together);
            join_info = Some(j.1);
        }
    }
    let info = join_info.expect("a run");
    let (join_ms, alone_ms) = (median(&mut joined), median(&mut single));
    let (jp, ap) = (median(&mut join_prompt_ms), median(&mut alone_prompt_ms));
    let wait = median(&mut wait);
    println!("join_ttft_ms={join_ms:.1} alone_ttft_ms={alone_ms:.1}");
    println!(
        "join_detail prompt_tokens={} raw_prompt_tokens={} join_prompt_ms={jp:.1} alone_prompt_ms={ap:.1} most_together={together} slot_wait_ms={wait:.1}",
        info.prompt_tokens,
        raw_tokenize(raw.vocab(), JOIN_PROMPT, true).len(),
    );
    let outside = join_ms - jp;
    let why = if together <= 1 {
        format!("the joining request decoded alone (most_together={together}): its steps were not shared")
    } else if join_ms > alone_ms {
        format!(
            "its {} prompt tokens were evaluated in steps shared with the 7 others' next tokens (most_together={together}), \
             so each step costs more: prompt {jp:.1} ms joined against {ap:.1} ms alone ({:.2}x), and {outside:.1} ms outside the \
             prompt (waiting for the step in flight, sampling) against {:.1} ms alone; ttft {:.2}x",
            info.prompt_tokens,
            jp / ap,
            alone_ms - ap,
            join_ms / alone_ms
        )
    } else {
        format!(
            "its prompt was evaluated in steps shared with the others (most_together={together}) at no extra cost: prompt \
             {jp:.1} ms joined against {ap:.1} ms alone; ttft {:.2}x",
            join_ms / alone_ms
        )
    };
    println!("why: {why}");
    destroy(alone);
    for h in group.into_iter().rev() {
        destroy(h.0);
    }
}

// ---- Raw llama.cpp ----------------------------------------------------------------------------

/// The model, loaded with llama.cpp's own call (all layers on a GPU when there is one, as the
/// library's default).
struct RawModel {
    model: *mut sys::llama_model,
}

impl RawModel {
    fn load(path: &CStr) -> RawModel {
        // SAFETY: llama.cpp's calls with a valid path; the model is freed in Drop.
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.load_mode = sys::LLAMA_LOAD_MODE_MMAP;
            mp.n_gpu_layers = i32::MAX;
            let model = sys::llama_model_load_from_file(path.as_ptr(), mp);
            assert!(!model.is_null(), "raw: model did not load");
            RawModel { model }
        }
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: a loaded model.
        unsafe { sys::llama_model_get_vocab(self.model) }
    }

    /// For each token of the vocabulary, whether it ends generation (`llama_vocab_is_eog`).
    fn eog_mask(&self) -> Vec<bool> {
        // SAFETY: a loaded model's vocabulary, asked about its own token ids.
        unsafe {
            let n = sys::llama_vocab_n_tokens(self.vocab());
            (0..n).map(|t| sys::llama_vocab_is_eog(self.vocab(), t)).collect()
        }
    }
}

impl Drop for RawModel {
    fn drop(&mut self) {
        // SAFETY: loaded in `load`, freed once, after every context (dropped before it).
        unsafe { sys::llama_model_free(self.model) };
    }
}

/// One context of `n_seq` sequences in a unified KV cache, as the library makes for
/// `n_parallel` sessions.
struct RawBatch<'a> {
    raw: &'a RawModel,
    ctx: *mut sys::llama_context,
    batch: sys::llama_batch,
    n_seq: usize,
}

impl<'a> RawBatch<'a> {
    fn new(raw: &'a RawModel, n_seq: usize, threads: i32) -> RawBatch<'a> {
        // SAFETY: llama.cpp's calls on a loaded model; freed in Drop.
        unsafe {
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = N_CTX * n_seq as u32;
            cp.n_batch = N_BATCH;
            cp.n_ubatch = N_BATCH;
            cp.n_seq_max = n_seq as u32;
            cp.kv_unified = true;
            cp.n_threads = threads;
            cp.n_threads_batch = threads;
            cp.no_perf = true;
            let ctx = sys::llama_init_from_model(raw.model, cp);
            assert!(!ctx.is_null(), "raw: no context");
            let batch = sys::llama_batch_init(N_BATCH.max(n_seq as u32) as i32, 0, 1);
            RawBatch { raw, ctx, batch, n_seq }
        }
    }

    /// The most likely token at batch index `i` that is not banned.
    fn argmax(&self, i: usize, banned: &[bool]) -> sys::llama_token {
        // SAFETY: index `i` had logits in the last decode; the row has one logit per token.
        let logits = unsafe { std::slice::from_raw_parts(sys::llama_get_logits_ith(self.ctx, i as i32), banned.len()) };
        let mut best = (f32::NEG_INFINITY, 0);
        for (t, &l) in logits.iter().enumerate() {
            if l > best.0 && !banned[t] {
                best = (l, t);
            }
        }
        best.1 as sys::llama_token
    }

    /// Per-token cost of picking the next token from one logits row: as the library does
    /// (the row copied, a candidate array of the whole vocabulary, llama.cpp's logit-bias and
    /// greedy samplers), and as the raw side does (argmax); ms each, after evaluating `prompt`.
    fn pick_cost(&self, prompt: &[sys::llama_token], banned: &[bool]) -> (f64, f64) {
        const REPS: usize = 50;
        // SAFETY: the context's memory, cleared; the logits row read after the decode that
        // produced it; the sampler chain made and freed here.
        unsafe {
            sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true);
            let entries: Vec<_> =
                prompt.iter().enumerate().map(|(i, &t)| (0, i as i32, t, i + 1 == prompt.len())).collect();
            self.decode(&entries);
            let row =
                std::slice::from_raw_parts(sys::llama_get_logits_ith(self.ctx, prompt.len() as i32 - 1), banned.len());
            let biases: Vec<sys::llama_logit_bias> = banned
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(t, _)| sys::llama_logit_bias { token: t as i32, bias: f32::NEG_INFINITY })
                .collect();
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            sys::llama_sampler_chain_add(
                chain,
                sys::llama_sampler_init_logit_bias(banned.len() as i32, biases.len() as i32, biases.as_ptr()),
            );
            sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_greedy());
            let (mut copy, mut scratch) = (Vec::new(), Vec::new());
            let t = Instant::now();
            for _ in 0..REPS {
                copy.clear();
                copy.extend_from_slice(row);
                scratch.clear();
                scratch.extend(copy.iter().enumerate().map(|(id, &logit)| sys::llama_token_data {
                    id: id as sys::llama_token,
                    logit,
                    p: 0.0,
                }));
                let mut a = sys::llama_token_data_array {
                    data: scratch.as_mut_ptr(),
                    size: scratch.len(),
                    selected: -1,
                    sorted: false,
                };
                sys::llama_sampler_apply(chain, &mut a);
                std::hint::black_box(a.selected);
            }
            let chain_ms = t.elapsed().as_secs_f64() * 1e3 / REPS as f64;
            sys::llama_sampler_free(chain);
            let t = Instant::now();
            for _ in 0..REPS {
                std::hint::black_box(self.argmax(prompt.len() - 1, banned));
            }
            (chain_ms, t.elapsed().as_secs_f64() * 1e3 / REPS as f64)
        }
    }

    /// Evaluates `entries` (sequence, position, token, logits wanted) as one batch.
    fn decode(&self, entries: &[(usize, i32, sys::llama_token, bool)]) {
        let mut b = self.batch;
        // SAFETY: the batch holds `N_BATCH.max(n_seq)` tokens; entries are at most that many.
        unsafe {
            for (i, &(seq, pos, token, logits)) in entries.iter().enumerate() {
                *b.token.add(i) = token;
                *b.pos.add(i) = pos;
                *b.n_seq_id.add(i) = 1;
                **b.seq_id.add(i) = seq as i32;
                *b.logits.add(i) = logits as i8;
            }
            b.n_tokens = entries.len() as i32;
            assert_eq!(sys::llama_decode(self.ctx, b), 0, "raw: llama_decode");
        }
    }

    /// The prompts in batches of `n_batch`, then `TOKENS - 1` steps of one token per sequence.
    fn run(&self, prompts: &[Vec<sys::llama_token>], banned: &[bool]) -> Run {
        assert_eq!(prompts.len(), self.n_seq);
        // SAFETY: the context's memory, cleared between runs.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true) };
        let (t, cpu) = (Instant::now(), process_cpu_ms());
        let entries: Vec<(usize, i32, sys::llama_token, bool)> = prompts
            .iter()
            .enumerate()
            .flat_map(|(s, p)| p.iter().enumerate().map(move |(i, &tok)| (s, i as i32, tok, i + 1 == p.len())))
            .collect();
        let mut tokens: Vec<Vec<i32>> = vec![Vec::with_capacity(TOKENS as usize); self.n_seq];
        for chunk in entries.chunks(N_BATCH as usize) {
            self.decode(chunk);
            for (i, e) in chunk.iter().enumerate().filter(|(_, e)| e.3) {
                tokens[e.0].push(self.argmax(i, banned));
            }
        }
        let prompt_ms = t.elapsed().as_secs_f64() * 1e3;
        for n in 1..TOKENS as usize {
            let step: Vec<_> =
                (0..self.n_seq).map(|s| (s, (prompts[s].len() + n - 1) as i32, tokens[s][n - 1], true)).collect();
            self.decode(&step);
            for (s, seq) in tokens.iter_mut().enumerate() {
                seq.push(self.argmax(s, banned));
            }
        }
        Run {
            ms: t.elapsed().as_secs_f64() * 1e3,
            cpu_ms: process_cpu_ms() - cpu,
            prompt_ms,
            generate_ms: 0.0,
            most_together: self.n_seq as u32,
            tokens,
        }
    }
}

impl Drop for RawBatch<'_> {
    fn drop(&mut self) {
        // SAFETY: made in `new`, freed once; the model outlives it (`raw` borrows it).
        unsafe {
            sys::llama_batch_free(self.batch);
            sys::llama_free(self.ctx);
        }
        let _ = self.raw;
    }
}
