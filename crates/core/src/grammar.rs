//! A bound on GBNF grammars before llama.cpp sees them. A repetition `{m,n}` with n < m makes
//! llama.cpp's parser make rules until memory runs out. Nested repetitions (`(("a"{0,20}){0,20}){0,20}`)
//! make llama.cpp's grammar sampler track exponentially many stacks: that grammar took 9 s for
//! 3 tokens here. A grammar is refused when, along any path of nesting (through rule
//! references too), the repetition bounds multiply past [`MAX_PRODUCT`] or more than
//! [`MAX_DEPTH`] repetitions nest.

use std::collections::HashMap;

/// Largest product of repetition bounds along a nesting path (`*`, `+` and `?` count 2).
pub const MAX_PRODUCT: u64 = 2000;
/// Most repetitions nested in one another.
pub const MAX_DEPTH: u32 = 3;
/// Largest sum of all repetition bounds: llama.cpp makes a rule for each repetition step
/// (300 flat `"a"{0,1999}` took 5.2 s and 156 MB a request).
pub const MAX_REPETITIONS: u64 = 10_000;

/// (product, depth) of the worst nesting path.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Nest {
    product: u64,
    depth: u32,
}

impl Nest {
    const ATOM: Nest = Nest { product: 1, depth: 0 };
    fn max(self, o: Nest) -> Nest {
        Nest { product: self.product.max(o.product), depth: self.depth.max(o.depth) }
    }
}

/// Checks the grammar's repetitions; the error says which limit it passes.
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
    if worst.product > MAX_PRODUCT || worst.depth > MAX_DEPTH {
        return Err(format!(
            "the grammar nests repetitions {} deep with bounds multiplying to {} (limits: {MAX_DEPTH} deep, {MAX_PRODUCT}); llama.cpp's sampler would take exponential time",
            worst.depth, worst.product
        ));
    }
    Ok(())
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

fn rule_nest<'a>(name: &'a str, rules: &'a HashMap<&'a str, String>, memo: &mut HashMap<&'a str, Nest>, visiting: &mut Vec<&'a str>) -> Nest {
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
fn group_nest<'a>(chars: &[char], pos: &mut usize, rules: &'a HashMap<&'a str, String>, memo: &mut HashMap<&'a str, Nest>, visiting: &mut Vec<&'a str>) -> Nest {
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
                while *pos < chars.len() && (chars[*pos].is_ascii_alphanumeric() || chars[*pos] == '-' || chars[*pos] == '_') {
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
        atom = Nest { product: atom.product.saturating_mul(factor), depth: atom.depth.saturating_add(1) };
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
    fn nested_repetitions_are_bounded() {
        assert!(check(r#"root ::= (("a"{0,20}){0,20}){0,20}"#).is_err());
        assert!(check(r#"root ::= ((("a"{0,6}){0,6}){0,6}){0,6}"#).is_err());
        assert!(check("root ::= inner{0,50}\ninner ::= (\"b\"{0,50})").is_err(), "through a rule reference");
        assert!(check(r#"root ::= (("a"{0,10}){0,10}){0,10}"#).is_ok());
        assert!(check(r#"root ::= [0-9]{1,1000}"#).is_ok());
        assert!(check(r#"root ::= "a"{5,2}"#).is_err(), "max below min never ends in llama.cpp");
        // Space, a line break inside parentheses or a comment before the quantifier.
        assert!(check("root ::= \"\\n\\nyes\" {8,5}'").is_err(), "found by fuzz_prompt under ASan");
        assert!(check("root ::= (\"a\"\n  {1,0})").is_err());
        assert!(check("root ::= \"a\" # note\n{1,0}").is_err());
        assert!(check(r#"root ::= (("a" {0,20}) {0,20}) {0,20}"#).is_err(), "nesting behind spaces");
        assert!(check(r#"root ::= ("a" {0,10}) {0,10} "b" *"#).is_ok());
        // Quantifiers in a row apply one after the other.
        assert!(check("root ::=[ a-z@@@@@1d]+ {5,4}").is_err(), "found by fuzz_prompt under ASan");
        assert!(check(r#"root ::= "a"{0,20}{0,20}{0,20}"#).is_err(), "stacked repetitions nest");
        assert!(check(r#"root ::= "a"+ ?"#).is_ok());
        // A token or any character as the atom; a brace anywhere outside literals.
        assert!(check("root ::=[ a-@@@1@@d]{2,5}+<|endoftext|> {22,5}").is_err(), "found by fuzz_prompt under ASan");
        assert!(check("root ::= . {3,1}").is_err());
        assert!(check("root ::= !<[12]>{3,1}").is_err());
        assert!(check(r#"root ::= "{3,1}" [{}] # {3,1}"#).is_ok(), "not in strings, classes or comments");
        assert!(check(r#"root ::= ((. {0,20}) {0,20}) {0,20}"#).is_err(), "nesting from .");
        assert!(check(r#"root ::= ((<|a|> {0,20}){0,20}){0,20}"#).is_err(), "nesting from a token");
        let flat = format!("root ::= {}", vec![r#""a"{0,1999}"#; 300].join(" "));
        assert!(check(&flat).is_err(), "the sum of flat repetitions is bounded too");
        assert!(check("root ::= (\"yes\" | \"no\") \".\"\n# a comment {0,99}{0,99}").is_ok());
        assert!(check("root ::= [a-z ] root").is_ok(), "recursion is not expansion");
        let json = "root ::= object\nobject ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\"\nvalue ::= object | string | [0-9]+\nstring ::= \"\\\"\" [a-z]* \"\\\"\"\nws ::= [ \\t\\n]*";
        assert!(check(json).is_ok(), "{:?}", check(json));
    }
}
