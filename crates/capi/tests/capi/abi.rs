//! The ABI is a promise: no implicit padding in any public struct (so a new field always
//! changes `sizeof`), every released layout pinned as literal numbers (tests/c/abi_snapshot.c,
//! checked by a C compiler), every constant the API uses named in the header, and version
//! macros that match the crate's version.

mod header;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compile(compiler: &str, args: &[&str], source: &Path) -> Result<(), String> {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let object = out_dir.join(format!("{}-{compiler}.o", source.file_stem().unwrap().to_string_lossy()));
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object)
        .output()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn public_structs_have_no_implicit_padding() {
    let src = Path::new(env!("CARGO_TARGET_TMPDIR")).join("padded.c");
    std::fs::write(&src, "#include \"mm_session.h\"\n").unwrap();
    compile("gcc", &["-std=c99", "-Wpadded", "-Werror"], &src).unwrap();
}

#[test]
fn released_layouts_and_constants_are_pinned() {
    let snapshot = root().join("tests/c/abi_snapshot.c");
    compile("gcc", &["-std=c11", "-Wall", "-Wextra", "-Werror"], &snapshot).unwrap();
    compile("g++", &["-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"], &snapshot).unwrap();
}

/// The `MM_*` names in a text.
fn constants(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("MM_") {
        let start = i + at;
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(text.len() - start);
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !preceded {
            names.insert(text[start..end].trim_end_matches('_').to_string());
        }
        i = end;
    }
    names
}

/// Names that are not API constants: the include guard, and environment and CMake variables.
fn not_constants(name: &str) -> bool {
    name.starts_with("MM_SESSION_")
        || name.starts_with("MM_TEST_")
        || name.starts_with("MM_FUZZ_")
        || name.starts_with("MM_CYCLES")
        || name.starts_with("MM_STRESS")
        || name.starts_with("MM_BENCH")
}

#[test]
fn every_constant_is_named_in_the_header_and_pinned() {
    let header = std::fs::read_to_string(root().join("include/mm_session.h")).unwrap();
    let snapshot = std::fs::read_to_string(root().join("tests/c/abi_snapshot.c")).unwrap();
    let in_header: BTreeSet<String> = constants(&header).into_iter().filter(|n| !not_constants(n)).collect();
    assert!(in_header.len() > 40, "{in_header:?}");
    let pinned = constants(&snapshot);
    let unpinned: Vec<&String> = in_header.iter().filter(|n| !pinned.contains(*n)).collect();
    assert!(unpinned.is_empty(), "constants of the header missing from tests/c/abi_snapshot.c: {unpinned:?}");
    let mut docs: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"].map(|d| root().join(d)).to_vec();
    for folder in ["docs", "bindings/python", "bindings/node", "bindings/go"] {
        for entry in std::fs::read_dir(root().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                docs.push(path);
            }
        }
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let doc = doc.display();
        let missing: Vec<String> =
            constants(&text).into_iter().filter(|n| !not_constants(n) && !in_header.contains(n)).collect();
        assert!(missing.is_empty(), "{doc} names constants the header lacks: {missing:?}");
    }
}

#[test]
fn version_macros_match_the_crate() {
    use mm_session::library::*;
    let version = [MM_VERSION_MAJOR, MM_VERSION_MINOR, MM_VERSION_PATCH].map(|v| v.to_string()).join(".");
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "update MM_VERSION_* in crates/capi/src/library.rs");
    assert_eq!(mm_version_number(), MM_VERSION_NUMBER);
    let text = unsafe { std::ffi::CStr::from_ptr(mm_version()) }.to_str().unwrap();
    assert_eq!(text, env!("CARGO_PKG_VERSION"));
}
