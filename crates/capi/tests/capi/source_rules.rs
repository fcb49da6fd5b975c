//! Rules of the source that a compiler does not check: every `unsafe` block and `unsafe impl`
//! says why it is sound in a `// SAFETY:` comment just above it (or on its line).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_unsafe_block_has_a_safety_comment() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["capi", "core", "gguf", "fixtures"] {
        rust_files(&crates.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 20);
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap();
            if !(code.contains("unsafe {") || code.contains("unsafe impl")) {
                continue;
            }
            // The comment may stand a few lines up, above the statement the block is part of.
            let justified = lines[i.saturating_sub(6)..=i].iter().any(|l| l.contains("SAFETY:"));
            if !justified {
                missing.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert!(missing.is_empty(), "unsafe without a `// SAFETY:` comment:\n{}", missing.join("\n"));
}

/// The folder of crates/core/src whose files alone may call llama.cpp and mtmd.
const CORE_LLAMA_FOLDER: &str = "llama";

/// A source file's code without its comments (doc comments included), so that a doc link or a
/// note about another module is no dependency and a comment that says "unsafe" is no block.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if rest.starts_with("/*") {
            rest = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else if let Some(raw) = rest.strip_prefix("r#\"") {
            rest = raw.find("\"#").map_or("", |i| &raw[i + 2..]);
            code.push_str("\"\"");
        } else if rest.starts_with("'\"'") || rest.starts_with("'\\\"'") {
            // A quote as a character starts no string.
            rest = &rest[rest[1..].find('\'').unwrap() + 2..];
        } else if rest.starts_with('"') {
            // A string's text is no code either (escapes kept whole, so `\"` does not end it).
            let mut chars = rest.char_indices().skip(1);
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            code.push_str("\"\"");
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    code
}

/// The module path of each file of crates/core/src ("session/cache.rs": ["session", "cache"];
/// "lib.rs" and "x/mod.rs" are the module of their folder), with the code of each. A file named
/// by `#[path = "..."] mod name;` (model/rpc_off.rs) is the module it is declared as.
fn core_modules() -> Vec<(Vec<String>, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let texts: Vec<(PathBuf, String)> =
        files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect();
    let mut renamed = std::collections::HashMap::new();
    for (file, text) in &texts {
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let attr = pair[0].trim();
            if let Some(target) = attr.strip_prefix("#[path = \"").and_then(|a| a.strip_suffix("\"]")) {
                let name = pair[1].trim().trim_start_matches("pub ").trim_start_matches("mod ").trim_end_matches(';');
                renamed.insert(file.parent().unwrap().join(target), file.parent().unwrap().join(format!("{name}.rs")));
            }
        }
    }
    texts
        .into_iter()
        .map(|(file, text)| {
            let as_declared = renamed.get(&file).unwrap_or(&file);
            let relative = as_declared.strip_prefix(&src).unwrap().with_extension("");
            let mut path: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if path.last().is_some_and(|l| l == "mod" || l == "lib") {
                path.pop();
            }
            (path, code_of(&text))
        })
        .collect()
}

/// The modules that `code` (of the module at `here`) names: `crate::a::b::...` paths, grouped
/// ones (`crate::a::{b, c::d}`) too; `super::` and `self::` paths, where `super` inside an inline
/// module (`mod tests { ... }`) is the file itself; and paths that start with the name of one of
/// its child modules. Each path counts for the longest of `modules` it starts with (a path to an
/// item re-exported at the crate root, `crate::Session`, names the root).
fn named_modules(here: &[String], code: &str, modules: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut resolve = |start: Vec<String>, rest: &str| {
        // Each path in `rest`: braces split it into several, each continuing `start`.
        let mut paths = vec![(start, rest)];
        while let Some((mut path, text)) = paths.pop() {
            let mut text = text;
            loop {
                text = text.trim_start();
                if let Some(group) = text.strip_prefix('{') {
                    let mut depth = 0;
                    let mut from = 0;
                    for (i, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => {
                                paths.push((path.clone(), &group[from..i]));
                                break;
                            }
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                paths.push((path.clone(), &group[from..i]));
                                from = i + 1;
                            }
                            _ => {}
                        }
                    }
                    break;
                }
                let len = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
                if len == 0 {
                    break;
                }
                path.push(text[..len].to_string());
                match text[len..].strip_prefix("::") {
                    Some(next) => text = next,
                    None => break,
                }
            }
            let found = (0..=path.len()).rev().map(|n| &path[..n]).find(|p| modules.iter().any(|m| m == p));
            out.push(found.unwrap_or(&[]).to_vec());
        }
    };
    let is_folder = modules.iter().any(|m| m.len() > here.len() && m.starts_with(here));
    let mut inline_module = false;
    for line in code.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.iter().position(|w| *w == "mod").is_some_and(|i| words.get(i + 2) == Some(&"{")) {
            inline_module = true;
        }
        let mut rest = line;
        while let Some(i) = rest.find("::") {
            let before = &rest[..i];
            let word_start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |j| j + 1);
            let word = &before[word_start..];
            let after = &rest[i + 2..];
            let joined = word_start >= 2 && before[..word_start].ends_with("::");
            rest = after;
            if joined {
                continue;
            }
            // The module a path's first word stands for, relative to the crate root.
            let base: Option<Vec<String>> = match word {
                "crate" => Some(Vec::new()),
                "self" => Some(here.to_vec()),
                "super" if inline_module => Some(here.to_vec()),
                "super" => Some(here[..here.len().saturating_sub(1)].to_vec()),
                w if is_folder
                    && modules
                        .iter()
                        .any(|m| m.len() == here.len() + 1 && m.starts_with(here) && m[here.len()] == w) =>
                {
                    let mut child = here.to_vec();
                    child.push(w.to_string());
                    resolve(child, after);
                    None
                }
                _ => None,
            };
            if let Some(base) = base {
                resolve(base, after);
            }
        }
    }
    out
}

/// A cycle in `edges` (each node's list of nodes it depends on), as the nodes along it.
fn find_cycle(edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        done: &mut std::collections::BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

/// No two modules of crates/core/src depend on each other, directly or around a circle, and no
/// two of its top folders do: the layers depend one way.
///
/// How it checks: each file is a node named by its module path (a folder's mod.rs is the
/// folder's module, lib.rs the crate root). Its code, without comments and strings, is scanned
/// for the modules it names: `crate::...` paths (grouped `use crate::a::{b, c}` too), `super::`
/// and `self::` paths, and paths that start with a child module's name; each path counts for the
/// longest module it starts with. A file's edge to itself is dropped (its tests use it); every
/// other edge must leave the graph acyclic, a folder's mod.rs included: its `mod` declarations
/// are no edge, but what it uses or re-exports of its children is, so its children import each
/// other by their own paths, not through it. The folder graph merges the files of each top folder
/// (the root's files are the folder "(root)"), drops the edges within a folder, and must be
/// acyclic too.
#[test]
fn core_modules_import_one_way() {
    use std::collections::{BTreeMap, BTreeSet};
    let modules = core_modules();
    let paths: Vec<Vec<String>> = modules.iter().map(|(p, _)| p.clone()).collect();
    assert!(paths.len() > 20, "crates/core/src: {} files found", paths.len());
    let name = |p: &[String]| if p.is_empty() { "(root)".to_string() } else { p.join("::") };
    let folder = |p: &[String]| p.first().cloned().unwrap_or_else(|| "(root)".into());
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (here, code) in &modules {
        for there in named_modules(here, code, &paths) {
            if there == *here {
                continue;
            }
            files.entry(name(here)).or_default().insert(name(&there));
            if folder(here) != folder(&there) {
                folders.entry(folder(here)).or_default().insert(folder(&there));
            }
        }
    }
    assert!(files.values().map(BTreeSet::len).sum::<usize>() > 30, "too few imports found: {files:?}");
    if let Some(cycle) = find_cycle(&folders) {
        panic!("crates/core/src: the folders import each other in a circle: {}\n{folders:#?}", cycle.join(" -> "));
    }
    if let Some(cycle) = find_cycle(&files) {
        panic!("crates/core/src: the modules import each other in a circle: {}\n{files:#?}", cycle.join(" -> "));
    }
}

/// Only crates/core/src/llama/ calls llama.cpp: `llama_cpp_sys_2` and the word `unsafe` (blocks,
/// functions, impls) appear in the code of no other core file, so the rest of the core is safe
/// Rust over the wrappers there. (crates/capi is the C boundary, a crate of its own.)
#[test]
fn only_the_llama_folder_of_core_calls_llama_cpp() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20);
    let mut stray = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(src.join(CORE_LLAMA_FOLDER))) {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (i, line) in code.lines().enumerate() {
            let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            if let Some(word) = words.into_iter().find(|w| *w == "unsafe" || *w == "llama_cpp_sys_2") {
                stray.push(format!("{}:{}: {word}", file.display(), i + 1));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "llama.cpp is called outside crates/core/src/{CORE_LLAMA_FOLDER}/ (wrap it there):\n{}",
        stray.join("\n")
    );
}
