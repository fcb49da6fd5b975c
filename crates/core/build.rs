//! Builds the C++ shims: llama.cpp's memory accounting and the exception barriers around the
//! llama.cpp, mtmd and llama.cpp `common` calls that can throw.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    // llama-cpp-sys-2 installs llama.cpp's headers beside the cmake package it announces.
    let cmake_dir = PathBuf::from(env::var("DEP_LLAMA_GGML_CMAKE_DIR").expect("llama-cpp-sys-2 announces DEP_LLAMA_GGML_CMAKE_DIR"));
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/shim/memory.cpp")
        .file("src/shim/guard.cpp")
        .include(cmake_dir.join("../../include"))
        .include(llama_source_dir(&cmake_dir).join("common"))
        .warnings(false)
        .compile("mm_shim");
    println!("cargo:rerun-if-changed=src/shim");
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
