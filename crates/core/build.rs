//! Builds the C++ shims: llama.cpp's memory accounting and the exception barriers around the
//! llama.cpp and mtmd calls that can throw. With the `rpc` feature, checks that llama.cpp was
//! built with its RPC backend.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    // llama-cpp-sys-2 installs llama.cpp's headers and libraries beside the cmake package it
    // announces.
    let cmake_dir = PathBuf::from(env::var("DEP_LLAMA_GGML_CMAKE_DIR").expect("llama-cpp-sys-2 announces DEP_LLAMA_GGML_CMAKE_DIR"));
    let rpc = env::var_os("CARGO_FEATURE_RPC").is_some();
    if rpc {
        require_ggml_rpc(&cmake_dir);
    }
    let mut build = cc::Build::new();
    build.cpp(true).std("c++17").file("src/shim/memory.cpp").file("src/shim/guard.cpp").include(cmake_dir.join("../../include")).warnings(false);
    if rpc {
        build.define("MM_RPC", None);
    }
    build.compile("mm_shim");
    println!("cargo:rerun-if-changed=src/shim");
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
             Build with GGML_RPC=ON (and GGML_RPC_RDMA=OFF) in the environment, in a target directory of its own so that\n\
             the plain build is not recompiled back and forth: `make build RPC=1`, or\n\
             GGML_RPC=ON GGML_RPC_RDMA=OFF CARGO_TARGET_DIR=target/rpc cargo build --release --features rpc\n\n",
            lib_dir.display()
        );
    }
}
