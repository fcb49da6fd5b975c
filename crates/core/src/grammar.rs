//! Bounds on GBNF grammars, in two parts.
//!
//! Here, the text, before llama.cpp's parser sees it: a repetition `{m,n}` with n < m makes
//! the parser make rules until memory runs out, large repetition bounds make it make a rule for
//! each step, and nested bounds multiply into the ways a grammar can start, which llama.cpp
//! expands when it builds the grammar (`(("a"{0,20}){0,20}){0,20}` took 208 s to build).
//!
//! Then (`Model::grammar_steps`, shim/guard.cpp) what llama.cpp made of it. The sampler checks
//! every token of the vocabulary against every parse stack the grammar keeps, following each
//! way an ambiguous grammar can read the token's characters; [`MAX_STEPS`] bounds that work for
//! one token. The text alone cannot tell: a bound on how deep repetitions nest refused JSON
//! Schemas as plain as an array of strings, and let through grammars of three repetitions that
//! took minutes a token: `[a-z ]{1,5}* {2,5}` (bounds multiplying to 50, found by fuzzing under
//! ASan) took 396 s for 4 tokens of Gemma 3 270M, whose vocabulary has 262,144 tokens.

use std::collections::HashMap;

/// Largest product of repetition bounds along a nesting path, through rule references too
/// (`*`, `+` and `?` count 2). Building and probing `(("a"{0,12}){0,12}){0,12}` (1,728) took
/// 4.9 s, `(("a"{0,10}){0,10}){0,10}` (1,000) 1.3 s; llama.cpp's JSON Schema converter writes
/// 80 for an array of strings and 640 for an array of objects holding arrays of strings.
pub const MAX_PRODUCT: u64 = 1000;
/// Largest sum of all repetition bounds: llama.cpp makes a rule for each repetition step
/// (300 flat `"a"{0,1999}` took 5.2 s and 156 MB a request).
pub const MAX_REPETITIONS: u64 = 10_000;

/// The characters of the token whose check the probe counts (most tokens are shorter).
pub const TOKEN_CHARS: u32 = 8;
/// At how many places of a text the grammar allows the probe checks it (after 0, 8, 16 and 24
/// characters: some grammars are costly at once, others once their stacks have multiplied).
pub const POSITIONS: u32 = 4;
/// Most steps checking one token may take. Measured with Gemma 3 270M, 8 tokens each: grammars
/// of up to 3,300 steps took 0.35-1.5 s (`[a-z ]*{2,5}`, `([a-z ]{1,5})*`, `([a-z ]+){2,5}`,
/// every JSON Schema tried: at most 35), those of 90,000 steps and more 12 s to over a minute
/// (`([a-z ]?){0,20}`, `([a-z ]{1,20}){1,20}`, `(([a-z ]+)+)+`, the fuzzing find).
pub const MAX_STEPS: u64 = 20_000;

/// The error for a grammar past [`MAX_STEPS`].
pub fn too_ambiguous() -> String {
    format!(
        "it is too ambiguous: llama.cpp's sampler would take more than {MAX_STEPS} steps to check one {TOKEN_CHARS}-character token against it (it reads the token every way the grammar allows, and does so for every token of the vocabulary), seconds to minutes a token"
    )
}

/// Checks what in the grammar's text would stop llama.cpp's parser; the error says which limit
/// it passes.
pub fn check(grammar: &str) -> Result<(), String> {
    let total = repetition_total(grammar)?;
    if total > MAX_REPETITIONS {
        return Err(format!("the grammar's repetition bounds add up to {total} (limit {MAX_REPETITIONS}); llama.cpp would make a rule for each"));
    }
    let rules = split_rules(grammar);
    let mut memo: HashMap<&str, Nest> = HashMap::new();
    let mut worst = Nest::ATOM;
    for name in rules.keys() {
        worst = worst.max(rule_nest(name, &rules, &mut memo, &mut Vec::new()));
    }
    if worst.nested > MAX_PRODUCT {
        return Err(format!(
            "the grammar nests repetitions whose bounds multiply to {} (limit {MAX_PRODUCT}); llama.cpp would expand every combination",
            worst.nested
        ));
    }
    Ok(())
}

/// The largest product of the bounds of repetitions nested in one another (one alone is
/// [`MAX_REPETITIONS`]' business), along a nesting path.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Nest {
    /// Of the worst path of two or more repetitions (1 when there is none).
    nested: u64,
    /// Of the worst path, whatever its depth.
    product: u64,
}

impl Nest {
    const ATOM: Nest = Nest { nested: 1, product: 1 };
    fn max(self, o: Nest) -> Nest {
        Nest { nested: self.nested.max(o.nested), product: self.product.max(o.product) }
    }
}

/// The sum of the largest bounds of all `{m,n}` repetitions outside strings, classes and
/// comments, or an error for any with n < m: llama.cpp's parser computes max - min unsigned
/// and never stops making rules. Every brace counts wherever it stands, so that no reading of
/// the syntax that differs from llama.cpp's lets one through (a space, a line break or a
/// comment before it, a quantifier before it, a token or `.` as its atom: fuzzing under ASan
/// found the first two); a brace that is not a repetition is a syntax error to llama.cpp
/// anyway.
fn repetition_total(grammar: &str) -> Result<u64, String> {
    let chars: Vec<char> = grammar.chars().collect();
    let (mut i, mut total) = (0, 0u64);
    while i < chars.len() {
        match chars[i] {
            '"' | '[' => skip_literal(&chars, &mut i),
            '#' => {
                skip_space(&chars, &mut i);
                continue;
            }
            '{' => {
                let b = braces(&chars, &mut i);
                if b.inverted {
                    return Err("a repetition {m,n} has n < m".into());
                }
                total = total.saturating_add(b.largest);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(total)
}

/// What the braces of a repetition say.
struct Bounds {
    /// The largest bound written (0 when none reads).
    largest: u64,
    /// `{m,}`: no upper bound.
    open: bool,
    /// `{m,n}` with n < m.
    inverted: bool,
}

/// Reads the braces at `pos` (`{m}`, `{m,}`, `{m,n}`) and moves past the closing one.
fn braces(chars: &[char], pos: &mut usize) -> Bounds {
    let start = *pos + 1;
    while *pos < chars.len() && chars[*pos] != '}' {
        *pos += 1;
    }
    let inner: String = chars[start..(*pos).min(chars.len())].iter().collect();
    *pos += 1;
    let bounds: Vec<u64> = inner.split(',').filter_map(|b| b.trim().parse().ok()).collect();
    Bounds {
        largest: bounds.iter().max().copied().unwrap_or(0),
        open: inner.trim_end().ends_with(','),
        inverted: matches!(bounds[..], [min, max] if max < min),
    }
}

/// Moves `pos` past the string or character class that starts there (escapes included).
fn skip_literal(chars: &[char], pos: &mut usize) {
    let close = if chars[*pos] == '"' { '"' } else { ']' };
    *pos += 1;
    while *pos < chars.len() && chars[*pos] != close {
        *pos += if chars[*pos] == '\\' { 2 } else { 1 };
    }
}

/// Rule name -> body. A rule starts where a line begins with `name ::=`.
fn split_rules(grammar: &str) -> HashMap<&str, String> {
    let mut rules: HashMap<&str, String> = HashMap::new();
    let mut current: Option<&str> = None;
    for line in grammar.lines() {
        if let Some((name, body)) = line.split_once("::=").filter(|(n, _)| is_name(n.trim())) {
            current = Some(name.trim());
            rules.insert(name.trim(), body.to_string());
        } else if let Some(name) = current {
            let body = rules.get_mut(name).expect("inserted above");
            body.push('\n');
            body.push_str(line);
        }
    }
    rules
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn rule_nest<'a>(
    name: &'a str,
    rules: &'a HashMap<&'a str, String>,
    memo: &mut HashMap<&'a str, Nest>,
    visiting: &mut Vec<&'a str>,
) -> Nest {
    if let Some(n) = memo.get(name) {
        return *n;
    }
    let Some(body) = rules.get(name) else { return Nest::ATOM };
    if visiting.contains(&name) {
        return Nest::ATOM; // recursion: llama.cpp does not expand it
    }
    visiting.push(name);
    let chars: Vec<char> = body.chars().collect();
    let mut pos = 0;
    let n = group_nest(&chars, &mut pos, rules, memo, visiting);
    visiting.pop();
    memo.insert(name, n);
    n
}

/// The worst nesting in `chars[*pos..]` up to the `)` that closes the group (or the end).
fn group_nest<'a>(
    chars: &[char],
    pos: &mut usize,
    rules: &'a HashMap<&'a str, String>,
    memo: &mut HashMap<&'a str, Nest>,
    visiting: &mut Vec<&'a str>,
) -> Nest {
    let mut worst = Nest::ATOM;
    while *pos < chars.len() {
        let c = chars[*pos];
        *pos += 1;
        let atom = match c {
            ')' => return worst,
            '(' => group_nest(chars, pos, rules, memo, visiting),
            '"' | '[' => {
                *pos -= 1;
                skip_literal(chars, pos);
                *pos += 1;
                Nest::ATOM
            }
            // A token, `<[id]>` or `<|text|>`, or `!` and one (any token but it).
            '<' | '!' => {
                while *pos < chars.len() && chars[*pos - 1] != '>' {
                    *pos += 1;
                }
                Nest::ATOM
            }
            '.' => Nest::ATOM,
            '#' => {
                *pos -= 1;
                skip_space(chars, pos);
                continue;
            }
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                let start = *pos - 1;
                while *pos < chars.len()
                    && (chars[*pos].is_ascii_alphanumeric() || chars[*pos] == '-' || chars[*pos] == '_')
                {
                    *pos += 1;
                }
                let name: String = chars[start..*pos].iter().collect();
                match rules.get_key_value(name.as_str()) {
                    Some((key, _)) => rule_nest(key, rules, memo, visiting),
                    None => Nest::ATOM,
                }
            }
            _ => continue,
        };
        worst = worst.max(quantified(atom, chars, pos));
    }
    worst
}

/// Applies the quantifiers that follow an atom, if any. llama.cpp's parser skips spaces, line
/// breaks (inside parentheses) and comments before a quantifier, and applies each of several in
/// a row to what the one before made (`[a-z]+ {5,4}`), so this does too.
fn quantified(mut atom: Nest, chars: &[char], pos: &mut usize) -> Nest {
    loop {
        skip_space(chars, pos);
        let factor = match chars.get(*pos) {
            Some('*' | '+' | '?') => {
                *pos += 1;
                2
            }
            Some('{') => {
                let b = braces(chars, pos);
                b.largest.max(1) + b.open as u64
            }
            _ => return atom,
        };
        let product = atom.product.saturating_mul(factor);
        // An atom holding a repetition nests it under this one (and its product is its worst).
        let nested = if atom.product > 1 { product } else { 1 };
        atom = Nest { nested, product };
    }
}

/// Moves `pos` past spaces, tabs, line breaks and `#` comments.
fn skip_space(chars: &[char], pos: &mut usize) {
    while let Some(&c) = chars.get(*pos) {
        match c {
            ' ' | '\t' | '\n' | '\r' => *pos += 1,
            '#' => {
                while *pos < chars.len() && chars[*pos] != '\n' {
                    *pos += 1;
                }
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn what_stops_the_parser_is_refused() {
        assert!(check(r#"root ::= [0-9]{1,1000}"#).is_ok());
        assert!(check(r#"root ::= "a"{5,2}"#).is_err(), "max below min never ends in llama.cpp");
        // Space, a line break inside parentheses or a comment before the quantifier.
        assert!(check("root ::= \"\\n\\nyes\" {8,5}'").is_err(), "found by fuzz_prompt under ASan");
        assert!(check("root ::= (\"a\"\n  {1,0})").is_err());
        assert!(check("root ::= \"a\" # note\n{1,0}").is_err());
        // After another quantifier, a token or any character; a brace anywhere outside literals.
        assert!(check("root ::=[ a-z@@@@@1d]+ {5,4}").is_err(), "found by fuzz_prompt under ASan");
        assert!(check("root ::=[ a-@@@1@@d]{2,5}+<|endoftext|> {22,5}").is_err(), "found by fuzz_prompt under ASan");
        assert!(check("root ::= . {3,1}").is_err());
        assert!(check("root ::= !<[12]>{3,1}").is_err());
        assert!(check(r#"root ::= "{3,1}" [{}] # {3,1}"#).is_ok(), "not in strings, classes or comments");
        let flat = format!("root ::= {}", vec![r#""a"{0,1999}"#; 300].join(" "));
        assert!(check(&flat).is_err(), "the sum of flat repetitions is bounded");
        assert!(check("root ::= (\"yes\" | \"no\") \".\"\n# a comment {0,99}{0,99}").is_ok());
        // Nested bounds multiply, through rule references, spaces, stacked quantifiers, tokens.
        assert!(check(r#"root ::= (("a"{0,20}){0,20}){0,20}"#).is_err());
        assert!(check("root ::= inner{0,50}\ninner ::= (\"b\"{0,50})").is_err(), "through a rule reference");
        assert!(check(r#"root ::= (("a" {0,20}) {0,20}) {0,20}"#).is_err(), "behind spaces");
        assert!(check(r#"root ::= "a"{0,20}{0,20}{0,20}"#).is_err(), "stacked");
        assert!(check(r#"root ::= ((<|a|> {0,20}){0,20}){0,20}"#).is_err(), "from a token");
        assert!(check(r#"root ::= (("a"{0,10}){0,10}){0,10}"#).is_ok());
        assert!(check(r#"root ::= (("a"{0,11}){0,11}){0,11}"#).is_err());
        assert!(check("root ::= [a-z ] root").is_ok(), "recursion is not expansion");
        // What llama.cpp's JSON Schema converter writes for an array of strings: 4 deep.
        let strings = "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4})\nroot ::= \"[\" space (string (\",\" space string)*)? space \"]\" space\nspace ::= | \" \" | \"\\n\"{1,2} [ \\t]{0,20}\nstring ::= \"\\\"\" char* \"\\\"\" space";
        assert!(check(strings).is_ok(), "{:?}", check(strings));
    }
}
