//! The committed header is what cbindgen generates from the source, and it compiles cleanly as
//! C99 and as C++.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn committed_header_matches_generated() {
    let generated = std::fs::read_to_string(env!("MM_GENERATED_HEADER")).unwrap();
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/mm_session.h")).unwrap();
    assert!(generated == committed, "include/mm_session.h is outdated: run `make header` and commit it");
}

#[test]
fn header_compiles_as_c99_and_cpp_twice_included() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("header_check.c");
    std::fs::write(&src, "#include \"mm_session.h\"\n#include \"mm_session.h\"\nint main(void) { mm_session_params p = mm_session_params_default(); (void)p; return 0; }\n").unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include");
    for (compiler, args) in [
        ("gcc", vec!["-std=c99", "-Wall", "-Wextra", "-Werror"]),
        ("g++", vec!["-x", "c++", "-Wall", "-Wextra", "-Werror"]),
    ] {
        let out = Command::new(compiler)
            .args(&args)
            .arg("-I")
            .arg(&include)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(dir.join(format!("header_check_{compiler}.o")))
            .output()
            .unwrap_or_else(|e| panic!("{compiler}: {e}"));
        assert!(out.status.success(), "{compiler}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The guides that hold C and C++ examples: README.md and the pages of docs/.
fn guides() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    out.extend(pages);
    out
}

/// The guides' code blocks fenced as `lang`, written to files and compiled with `compiler`.
fn compile_readme_blocks(lang: &str, extension: &str, compiler: &str, flags: &[&str]) {
    let fence = format!("```{lang}\n");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut compiled = 0;
    for guide in guides() {
        let text = std::fs::read_to_string(&guide).unwrap();
        let name = guide.file_stem().unwrap().to_string_lossy().into_owned();
        let blocks: Vec<&str> = text.split(fence.as_str()).skip(1).map(|b| &b[..b.find("```").unwrap()]).collect();
        for (i, code) in blocks.iter().enumerate() {
            let src = dir.join(format!("example_{name}_{i}.{extension}"));
            std::fs::write(&src, code).unwrap();
            let out = Command::new(compiler)
                .args(flags)
                .arg("-I")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include"))
                .arg("-c")
                .arg(&src)
                .arg("-o")
                .arg(dir.join(format!("example_{name}_{i}_{extension}.o")))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}'s {lang} example {i}: {}",
                guide.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            compiled += 1;
        }
    }
    assert!(compiled > 1, "the guides have their {lang} examples");
}

#[test]
fn readme_c_examples_compile() {
    compile_readme_blocks(
        "c",
        "c",
        "gcc",
        &["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers"],
    );
}

#[test]
fn readme_cpp_examples_compile() {
    compile_readme_blocks("cpp", "cpp", "g++", &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"]);
}
