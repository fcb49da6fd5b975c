//! Builds the C++ shims (llama.cpp's memory accounting, exception barriers) and generates the
//! C header.

use std::env;
use std::path::PathBuf;

fn main() {
    // llama-cpp-sys-2 installs llama.cpp's headers beside the cmake package it announces.
    let cmake_dir = PathBuf::from(env::var("DEP_LLAMA_GGML_CMAKE_DIR").expect("llama-cpp-sys-2 announces DEP_LLAMA_GGML_CMAKE_DIR"));
    let include = cmake_dir.join("../../include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/shim/memory.cpp")
        .file("src/shim/guard.cpp")
        .include(&include)
        .warnings(false)
        .compile("mm_shim");
    println!("cargo:rerun-if-changed=src/shim");

    let crate_dir = env::var("CARGO_MANIFEST_DIR").unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("mm_session.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(cbindgen::Config::from_file(PathBuf::from(&crate_dir).join("cbindgen.toml")).expect("cbindgen.toml"))
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    // The header test compares this file with the committed include/mm_session.h.
    println!("cargo:rustc-env=MM_GENERATED_HEADER={}", out.display());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
}
