//! `make gpu-check`: GPU memory and speed of a build with a GPU backend (`--features cuda`),
//! through the C API. `scripts/gpu-check.sh` builds it and runs it; with `DRY=1` it is built for
//! the CPU, runs the same steps, and reports GPU memory as n/a.
//!
//! For the bench pair (projector on the GPU, then on the CPU) and for the real text model of
//! `MM_TEST_MODEL` when set, it prints free GPU memory (ggml's `ggml_backend_dev_memory`, which
//! is CUDA's `cudaMemGetInfo`) before create, after create, after destroy and after N
//! create/ask/destroy cycles:
//!
//! ```text
//! gpu_check model=NAME projector=gpu|cpu|none free_mib_before=A after_create=B after_destroy=C after_cycles=D cycles=N
//! speed model=NAME prefill_tokens=N prefill_tok_s=X generated_tokens=M generation_tok_s=Y
//! vram_growth_mib=X
//! ```
//!
//! `vram_growth_mib` is the most free memory lost between a "before" and its "after_cycles".
//! Usage: `gpu_check [CYCLES]` (default 100).

mod support;

use std::ffi::CStr;

use ::mm_session::session::*;
use llama_cpp_sys_2 as sys;
use support::*;

fn main() {
    let cycles: usize = std::env::args().nth(1).and_then(|c| c.parse().ok()).unwrap_or(100);
    quiet();
    println!("build: {}", unsafe { CStr::from_ptr(::mm_session::library::mm_build_info()) }.to_string_lossy());
    let f = Fixtures::write(&fixture_dir());
    let mut growth: Option<f64> = None;
    let mut record = |g: Option<f64>| growth = g.map(|g| growth.map_or(g, |x: f64| x.max(g)));
    for on_gpu in [true, false] {
        let mut p = session_params(&f.bench.model, Some(&f.bench.mmproj), 2048);
        p.n_gpu_layers = -1;
        p.mmproj_use_gpu = on_gpu;
        record(memory("bench", if on_gpu { "gpu" } else { "cpu" }, &p, &f.bench.image, cycles));
    }
    speed("bench", &session_params(&f.bench.model, None, 2048));
    if let Some(model) = real_model() {
        let p = session_params(&model, None, 2048);
        record(memory("model", "none", &p, &f.bench.image, cycles));
        speed("model", &p);
    }
    println!("vram_growth_mib={}", mib(growth));
}

/// Free memory of the first GPU ggml knows, in MiB; `None` without one (a CPU build).
fn free_gpu_mib() -> Option<f64> {
    // SAFETY: plain queries of ggml's device registry, which lives for the process; the
    // outputs are writable.
    unsafe {
        let gpu = (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .find(|&d| sys::ggml_backend_dev_type(d) == sys::GGML_BACKEND_DEVICE_TYPE_GPU)?;
        let (mut free, mut total) = (0usize, 0usize);
        sys::ggml_backend_dev_memory(gpu, &mut free, &mut total);
        Some(free as f64 / (1 << 20) as f64)
    }
}

fn mib(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1}"))
}

/// A request that suits the session: an image when it has a projector.
fn request(s: *mut mm_session, image: &CStr, with_image: bool) {
    if with_image {
        ask_fresh(s, c"Describe <__media__> in one line.", &[image_file(image)], 16);
    } else {
        ask_fresh(s, c"The capital of France is", &[], 16);
    }
}

/// Free GPU memory around one create/ask/destroy and over `cycles` more; returns the memory
/// lost over the cycles.
fn memory(name: &str, projector: &str, p: &mm_session_params, image: &CStr, cycles: usize) -> Option<f64> {
    let with_image = !p.mmproj_path.is_null();
    // The first session of the process starts the GPU's context: make it before "before".
    destroy(create(p));
    let before = free_gpu_mib();
    let s = create(p);
    let after_create = free_gpu_mib();
    request(s, image, with_image);
    destroy(s);
    let after_destroy = free_gpu_mib();
    for _ in 0..cycles {
        let s = create(p);
        request(s, image, with_image);
        destroy(s);
    }
    let after_cycles = free_gpu_mib();
    println!(
        "gpu_check model={name} projector={projector} free_mib_before={} after_create={} after_destroy={} after_cycles={} cycles={cycles}",
        mib(before),
        mib(after_create),
        mib(after_destroy),
        mib(after_cycles)
    );
    Some(before? - after_cycles?)
}

/// Prefill and generation speed of a text-only session: a prompt of about 420 tokens, then
/// 128 tokens from a short one (the library's own timings, `mm_session_last_ask`).
fn speed(name: &str, p: &mm_session_params) {
    let s = create(p);
    let sentence = "The old lighthouse keeper counted the ships that passed the northern cape each night. ";
    let prompt = std::ffi::CString::new(sentence.repeat(24)).unwrap();
    ask_fresh(s, &prompt, &[], 1);
    let prefill = last_ask(s);
    ask_fresh(s, c"Write a long story about a dragon who learns to cook. Chapter 1:", &[], 128);
    let generation = last_ask(s);
    destroy(s);
    println!(
        "speed model={name} prefill_tokens={} prefill_tok_s={:.1} generated_tokens={} generation_tok_s={:.1}",
        prefill.tokens_evaluated,
        prefill.tokens_evaluated as f64 * 1e3 / prefill.prompt_ms,
        generation.tokens_generated,
        generation.tokens_generated as f64 * 1e3 / generation.generate_ms
    );
}
