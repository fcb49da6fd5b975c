//! JSON Schemas as answer constraints: a schema is converted to a GBNF grammar by llama.cpp's
//! own converter (`common/json-schema-to-grammar.cpp`, the one llama.cpp's server and, ported
//! to Python, llama-cpp-python use), so a schema constrains an answer here exactly as it does
//! there.
//!
//! The converter is bounded before it runs. It parses the schema recursively, so nesting is
//! limited. Its `std::regex` calls recurse once per character of a property name (about 350
//! bytes of stack each), so it runs on a thread of its own with a stack sized for the largest
//! schema accepted. And its grammars of many alternatives cost llama.cpp's grammar sampler more
//! than linear time, so the schema's size is limited (docs/reliability.md has the figures).

use std::ffi::CString;

use crate::llama::sampler::json_schema_to_grammar;
use crate::util::error::{fail, ErrorKind::*, Result};

/// Largest schema accepted, in bytes.
pub const MAX_BYTES: usize = 16 * 1024;
/// Most arrays and objects nested in one another in a schema.
pub const MAX_DEPTH: usize = 64;
/// The converter thread's stack: about 6 MiB is what a schema of `MAX_BYTES` that is one long
/// property name needs.
const CONVERTER_STACK: usize = 32 << 20;

/// Converts the schema to a GBNF grammar (start rule `root`) with llama.cpp's converter. A
/// schema that is too large or too deep, not JSON, or outside what the converter supports is
/// refused, with the converter's reason.
pub fn to_grammar(schema: &str) -> Result<String> {
    bounded(schema, MAX_BYTES, MAX_DEPTH)
        .or_else(|why| fail(InvalidArgument, format!("json_schema refused: {why}")))?;
    let text = CString::new(schema).or_else(|_| fail(InvalidArgument, "json_schema contains a NUL byte"))?;
    // A plain spawned thread, joined at once: a scoped thread would make the calling thread
    // allocate its own std handle, which valgrind reports as possibly lost at exit.
    let converter = std::thread::Builder::new()
        .name("mm-json-schema".into())
        .stack_size(CONVERTER_STACK)
        .spawn(move || json_schema_to_grammar(&text));
    let converted = match converter {
        Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(e) => return fail(Internal, format!("could not start the JSON Schema converter's thread: {e}")),
    };
    converted.or_else(|why| fail(InvalidArgument, format!("json_schema could not be converted by llama.cpp: {why}")))
}

/// Checks the size of JSON text (at most `max_bytes`) and the nesting of its arrays and
/// objects (outside strings; at most `max_depth`).
pub fn bounded(schema: &str, max_bytes: usize, max_depth: usize) -> std::result::Result<(), String> {
    if schema.len() > max_bytes {
        return Err(format!("it is {} bytes long (limit {max_bytes})", schema.len()));
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in schema.bytes() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'{' | b'[') => {
                depth += 1;
                if depth > max_depth {
                    return Err(format!("it nests arrays and objects more than {max_depth} deep"));
                }
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_nesting_are_bounded() {
        assert!(bounded(r#"{"type": "object", "properties": {"a": {"type": "string"}}}"#, MAX_BYTES, MAX_DEPTH).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(bounded(&deep, MAX_BYTES, MAX_DEPTH).unwrap_err().contains("deep"));
        let flat = format!("[{}]", vec!["[]"; 1000].join(","));
        assert!(bounded(&flat, MAX_BYTES, MAX_DEPTH).is_ok(), "siblings are not nesting");
        let in_string = format!(r#"{{"description": "{}"}}"#, "{[\\\"".repeat(200));
        assert!(bounded(&in_string, MAX_BYTES, MAX_DEPTH).is_ok(), "brackets inside strings do not count");
        assert!(bounded(&" ".repeat(MAX_BYTES + 1), MAX_BYTES, MAX_DEPTH).unwrap_err().contains("bytes"));
    }
}
