//! Generates the C header from this crate's `extern "C"` items with cbindgen. The test
//! `header::committed_header_matches_generated` compares it with the committed
//! `include/mm_session.h`; `make header` copies it there.

use std::env;
use std::path::PathBuf;

fn main() {
    set_soname();
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("mm_session.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    println!("cargo:rustc-env=MM_GENERATED_HEADER={}", out.display());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
}

/// The shared library's soname carries the ABI version: `libmm_session.so.0.MINOR` while the
/// major version is 0 (each minor version may change the ABI), `libmm_session.so.MAJOR` after.
fn set_soname() {
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let abi = if major == "0" { format!("0.{minor}") } else { major };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmm_session.so.{abi}");
    }
}
