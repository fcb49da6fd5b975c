//! Builds the C++ shims: llama.cpp's memory accounting and the exception barriers around the
//! llama.cpp and mtmd calls that can throw.

use std::env;
use std::path::PathBuf;

fn main() {
    // The CPU the build targets, for `build_info`: what `-C target-cpu` says (".cargo/config.toml"
    // sets "native"; portable builds set a baseline), or rustc's default.
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let target_cpu = rustflags.split('\x1f').filter_map(|f| f.split("target-cpu=").nth(1)).last().unwrap_or("default");
    println!("cargo:rustc-env=MM_TARGET_CPU={target_cpu}");

    // llama-cpp-sys-2 installs llama.cpp's headers beside the cmake package it announces.
    let cmake_dir = PathBuf::from(env::var("DEP_LLAMA_GGML_CMAKE_DIR").expect("llama-cpp-sys-2 announces DEP_LLAMA_GGML_CMAKE_DIR"));
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/shim/memory.cpp")
        .file("src/shim/guard.cpp")
        .include(cmake_dir.join("../../include"))
        .warnings(false)
        .compile("mm_shim");
    println!("cargo:rerun-if-changed=src/shim");
}
