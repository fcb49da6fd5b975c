//! Builds the C++ shims: llama.cpp's memory accounting and the exception barriers around the
//! llama.cpp, mtmd and llama.cpp `common` calls that can throw. With the `rpc` feature, checks
//! that llama.cpp was built with its RPC backend.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    // The CPU the build targets, for `build_info`: the level a portable build names
    // (MM_CPU_LEVEL, which the Makefile sets: x86-64-v4-vnni is no rustc CPU name), else what
    // `-C target-cpu` says (".cargo/config.toml" sets "native"), or rustc's default.
    println!("cargo:rerun-if-env-changed=MM_CPU_LEVEL");
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let from_flags =
        rustflags.split('\x1f').filter_map(|f| f.split("target-cpu=").nth(1)).next_back().unwrap_or("default");
    let target_cpu = env::var("MM_CPU_LEVEL").ok().filter(|l| !l.is_empty()).unwrap_or(from_flags.to_string());
    println!("cargo:rustc-env=MM_TARGET_CPU={target_cpu}");

    // llama-cpp-sys-2 installs llama.cpp's headers beside the cmake package it announces.
    let cmake_dir = PathBuf::from(
        env::var("DEP_LLAMA_GGML_CMAKE_DIR").expect("llama-cpp-sys-2 announces DEP_LLAMA_GGML_CMAKE_DIR"),
    );
    let rpc = env::var_os("CARGO_FEATURE_RPC").is_some();
    if rpc {
        require_ggml_rpc(&cmake_dir);
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file("src/llama/shim/memory.cpp")
        .file("src/llama/shim/guard.cpp")
        .file("src/llama/shim/chat.cpp")
        .include(cmake_dir.join("../../include"))
        .include(llama_source_dir(&cmake_dir).join("common"))
        // llama-grammar.h, for the grammar probe of guard.cpp.
        .include(llama_source_dir(&cmake_dir).join("src"))
        .warnings(false);
    if rpc {
        build.define("MM_RPC", None);
    }
    build.compile("mm_shim");
    println!("cargo:rerun-if-changed=src/llama/shim");
    println!("cargo:rerun-if-env-changed=GGML_RPC");
}

/// Fails the build, saying how to fix it, unless llama-cpp-sys-2 built and installed ggml-rpc
/// (it does when GGML_RPC=ON is in the environment, which its build script passes to CMake;
/// it then links every library it installed, ggml-rpc included).
fn require_ggml_rpc(cmake_dir: &Path) {
    let lib_dir = cmake_dir.parent().expect("the cmake directory lies in the library directory");
    let built = ["libggml-rpc.a", "libggml-rpc.so", "ggml-rpc.lib"].iter().any(|name| lib_dir.join(name).exists());
    if !built {
        panic!(
            "\n\nthe `rpc` feature needs llama.cpp built with its RPC backend, and {} has no ggml-rpc library.\n\
             Build with GGML_RPC=ON and GGML_RPC_RDMA=OFF in the environment (the workspace's .cargo/config.toml sets\n\
             them), or without the feature: cargo build --release --no-default-features\n\n",
            lib_dir.display()
        );
    }
}

/// The llama.cpp source tree llama-cpp-sys-2 built (its `common` headers, such as the JSON
/// Schema converter's, are not installed): the source directory its CMake cache records.
fn llama_source_dir(cmake_dir: &Path) -> PathBuf {
    let cache_path = cmake_dir.join("../../build/CMakeCache.txt");
    let cache = std::fs::read_to_string(&cache_path).unwrap_or_else(|e| panic!("{}: {e}", cache_path.display()));
    let dir = cache
        .lines()
        .find_map(|line| line.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL="))
        .unwrap_or_else(|| panic!("{} names no CMAKE_HOME_DIRECTORY", cache_path.display()));
    PathBuf::from(dir)
}
