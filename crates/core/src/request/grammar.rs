//! Bounds on GBNF grammars, in two parts.
//!
//! Here, the text, before llama.cpp's parser sees it: a repetition `{m,n}` with n < m makes
//! the parser make rules until memory runs out, large repetition bounds make it make a rule for
//! each step, and nested bounds multiply into the ways a grammar can start, which llama.cpp
//! expands when it builds the grammar (minutes for three nested `{0,20}`).
//!
//! Then (`Model::grammar_steps`, shim/guard.cpp) what llama.cpp made of it. The sampler checks
//! every token of the vocabulary against every parse stack the grammar keeps, following each
//! way an ambiguous grammar can read the token's characters; [`MAX_STEPS`] bounds that work for
//! one token. The text alone cannot tell: a bound on how deep repetitions nest refuses JSON
//! Schemas as plain as an array of strings, and lets through grammars of three repetitions that
//! take minutes a token on a vocabulary of 262,144 tokens (docs/reliability.md, "Fuzzing").

use std::collections::{HashMap, HashSet};

/// Largest product of repetition bounds along a nesting path, through rule references too
/// (`*`, `+` and `?` count 2): building and probing costs grow with it, about a second at the
/// limit; llama.cpp's JSON Schema converter writes 80 for an array of strings and 640 for an
/// array of objects holding arrays of strings.
pub const MAX_PRODUCT: u64 = 1000;
/// Largest sum of all repetition bounds: llama.cpp makes a rule for each repetition step.
pub const MAX_REPETITIONS: u64 = 10_000;

/// The characters of the token whose check the probe counts (most tokens are shorter).
pub const TOKEN_CHARS: u32 = 8;
/// At how many places of a text the grammar allows the probe checks it (after 0, 8, 16 and 24
/// characters: some grammars are costly at once, others once their stacks have multiplied).
pub const POSITIONS: u32 = 4;
/// Most steps checking one token may take: between the costliest plain grammars (every JSON
/// Schema tried takes at most 35; `[a-z ]*{2,5}` and the like a few thousand, about a second for
/// 8 tokens of a 262,144-token vocabulary) and the ambiguous ones (90,000 steps and more, many
/// seconds a token).
pub const MAX_STEPS: u64 = 20_000;

/// The error for a grammar past [`MAX_STEPS`].
pub fn too_ambiguous() -> String {
    format!(
        "it is too ambiguous: llama.cpp's sampler would take more than {MAX_STEPS} steps to check one {TOKEN_CHARS}-character token against it (it reads the token every way the grammar allows, and does so for every token of the vocabulary), seconds to minutes a token"
    )
}

/// Longest grammar text accepted, in bytes. llama.cpp compares every parse stack with every
/// other when it starts a grammar, so a grammar of many alternatives costs their square: at the
/// limit, about a second.
pub const MAX_GRAMMAR_BYTES: usize = 64 * 1024;
/// Deepest nesting of parentheses: llama.cpp's parser recurses once per level (30,000 levels
/// overflowed an 8 MiB stack, 1,000 a 256 KiB one).
pub const MAX_GROUP_DEPTH: usize = 64;
/// Longest chain of rules referring to one another: llama.cpp's left-recursion check and its
/// parse-stack expansion recurse once per leftmost reference, and this check once per
/// reference (chains of 20,000 rules overflowed an 8 MiB stack, 2,000 a 256 KiB one). A JSON
/// Schema nested [`crate::request::json_schema::MAX_DEPTH`] deep gives a chain of about as many rules.
pub const MAX_RULE_DEPTH: u32 = 256;

/// Checks what in the grammar's text would stop llama.cpp's parser, overflow a stack, or loop
/// without end; the error says which limit it passes.
pub fn check(grammar: &str) -> Result<(), String> {
    if grammar.len() > MAX_GRAMMAR_BYTES {
        return Err(format!("the grammar is {} bytes long (limit {MAX_GRAMMAR_BYTES})", grammar.len()));
    }
    let total = repetition_total(grammar)?;
    if total > MAX_REPETITIONS {
        return Err(format!("the grammar's repetition bounds add up to {total} (limit {MAX_REPETITIONS}); llama.cpp would make a rule for each"));
    }
    let rules = parse_rules(grammar)?;
    let mut walk = Walk { rules: &rules, done: HashMap::new(), visiting: Vec::new() };
    let mut worst = Nest::ATOM;
    // In a fixed order, root first, so that a verdict never depends on a hash map's order.
    let mut names: Vec<&str> = rules.keys().copied().collect();
    names.sort_by_key(|&n| (n != "root", n));
    for name in names {
        worst = worst.max(walk.rule(name)?.nest);
    }
    if worst.nested > MAX_PRODUCT {
        return Err(format!(
            "the grammar nests repetitions whose bounds multiply to {} (limit {MAX_PRODUCT}); llama.cpp would expand every combination",
            worst.nested
        ));
    }
    check_left_recursion(&rules)
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
    /// The smallest bound written (0 when none reads).
    smallest: u64,
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
        smallest: bounds.first().copied().unwrap_or(0),
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

/// A rule body as far as the checks need it: its alternatives, each a sequence of items.
type Alternatives = Vec<Vec<Item>>;

/// One element of a sequence and the quantifiers after it.
struct Item {
    atom: Atom,
    /// What each quantifier multiplies the ways of reading the atom by (`*`, `+`, `?`: 2;
    /// `{m,n}`: n, and one more for `{m,}`).
    factors: Vec<u64>,
    /// Whether a quantifier lets the item match nothing (`*`, `?`, `{0,n}`).
    optional: bool,
}

enum Atom {
    /// A string, class, token or `.`; `empty` for `""`, which matches nothing.
    Terminal {
        empty: bool,
    },
    Rule(String),
    Group(Alternatives),
}

/// Rule name -> its parsed body. A rule starts where a line begins with `name ::=`; a later
/// definition of the same name adds alternatives, as in llama.cpp.
fn parse_rules(grammar: &str) -> Result<HashMap<&str, Alternatives>, String> {
    let mut bodies: Vec<(&str, String)> = Vec::new();
    for line in grammar.lines() {
        if let Some((name, body)) = line.split_once("::=").filter(|(n, _)| is_name(n.trim())) {
            bodies.push((name.trim(), body.to_string()));
        } else if let Some((_, body)) = bodies.last_mut() {
            body.push('\n');
            body.push_str(line);
        }
    }
    let mut rules: HashMap<&str, Alternatives> = HashMap::new();
    for (name, body) in bodies {
        let chars: Vec<char> = body.chars().collect();
        let alternatives = parse_alternatives(&chars, &mut 0, 0)?;
        rules.entry(name).or_default().extend(alternatives);
    }
    Ok(rules)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `chars[*pos..]` up to the `)` that closes the group `depth` deep (or the end).
fn parse_alternatives(chars: &[char], pos: &mut usize, depth: usize) -> Result<Alternatives, String> {
    if depth > MAX_GROUP_DEPTH {
        return Err(format!("the grammar nests parentheses more than {MAX_GROUP_DEPTH} deep"));
    }
    let mut alternatives = vec![Vec::new()];
    while *pos < chars.len() {
        let c = chars[*pos];
        *pos += 1;
        let atom = match c {
            ')' => break,
            '|' => {
                alternatives.push(Vec::new());
                continue;
            }
            '(' => Atom::Group(parse_alternatives(chars, pos, depth + 1)?),
            '"' | '[' => {
                let start = *pos;
                *pos -= 1;
                skip_literal(chars, pos);
                *pos += 1;
                Atom::Terminal { empty: c == '"' && *pos == start + 1 }
            }
            // A token, `<[id]>` or `<|text|>`, or `!` and one (any token but it).
            '<' | '!' => {
                while *pos < chars.len() && chars[*pos - 1] != '>' {
                    *pos += 1;
                }
                Atom::Terminal { empty: false }
            }
            '.' => Atom::Terminal { empty: false },
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
                Atom::Rule(chars[start..*pos].iter().collect())
            }
            _ => continue,
        };
        let item = quantifiers(atom, chars, pos);
        alternatives.last_mut().expect("one alternative at least").push(item);
    }
    Ok(alternatives)
}

/// Reads the quantifiers that follow an atom, if any. llama.cpp's parser skips spaces, line
/// breaks (inside parentheses) and comments before a quantifier, and applies each of several in
/// a row to what the one before made (`[a-z]+ {5,4}`), so this does too.
fn quantifiers(atom: Atom, chars: &[char], pos: &mut usize) -> Item {
    let mut item = Item { atom, factors: Vec::new(), optional: false };
    loop {
        skip_space(chars, pos);
        match chars.get(*pos) {
            Some(&q @ ('*' | '+' | '?')) => {
                *pos += 1;
                item.factors.push(2);
                item.optional |= q != '+';
            }
            Some('{') => {
                let b = braces(chars, pos);
                item.factors.push(b.largest.max(1) + b.open as u64);
                item.optional |= b.smallest == 0;
            }
            _ => return item,
        }
    }
}

/// The error for a chain of rule references past [`MAX_RULE_DEPTH`], on the walk's stack or
/// through rules it already walked.
fn too_deep() -> String {
    format!("the grammar's rules refer to one another more than {MAX_RULE_DEPTH} deep")
}

/// What the walk over the rules found for one rule.
#[derive(Clone, Copy)]
struct RuleFacts {
    nest: Nest,
    /// The longest chain of references from this rule (1: it refers to no rule).
    depth: u32,
}

/// A depth-first walk over the rules through every reference, each rule visited once.
struct Walk<'a> {
    rules: &'a HashMap<&'a str, Alternatives>,
    done: HashMap<&'a str, RuleFacts>,
    visiting: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn rule(&mut self, name: &str) -> Result<RuleFacts, String> {
        let leaf = RuleFacts { nest: Nest::ATOM, depth: 1 };
        let Some((&key, body)) = self.rules.get_key_value(name) else { return Ok(leaf) };
        if let Some(facts) = self.done.get(key) {
            return Ok(*facts);
        }
        if self.visiting.contains(&key) {
            return Ok(leaf); // recursion: llama.cpp does not expand it
        }
        if self.visiting.len() as u32 >= MAX_RULE_DEPTH {
            return Err(too_deep());
        }
        self.visiting.push(key);
        let facts = self.alternatives(body);
        self.visiting.pop();
        let mut facts = facts?;
        facts.depth += 1;
        if facts.depth > MAX_RULE_DEPTH {
            return Err(too_deep());
        }
        self.done.insert(key, facts);
        Ok(facts)
    }

    /// The worst nesting and deepest reference chain in a body (0 deep: no reference).
    fn alternatives(&mut self, alternatives: &'a Alternatives) -> Result<RuleFacts, String> {
        let mut worst = RuleFacts { nest: Nest::ATOM, depth: 0 };
        for item in alternatives.iter().flatten() {
            let atom = match &item.atom {
                Atom::Terminal { .. } => RuleFacts { nest: Nest::ATOM, depth: 0 },
                Atom::Rule(name) => self.rule(name)?,
                Atom::Group(inner) => self.alternatives(inner)?,
            };
            let mut nest = atom.nest;
            for &factor in &item.factors {
                let product = nest.product.saturating_mul(factor);
                // An atom holding a repetition nests it under this one (and its product is its worst).
                nest = Nest { nested: if nest.product > 1 { product } else { 1 }, product };
            }
            worst = RuleFacts { nest: worst.nest.max(nest), depth: worst.depth.max(atom.depth) };
        }
        Ok(worst)
    }
}

/// Refuses left recursion, which llama.cpp's parse stacks follow without end: llama.cpp's own
/// check misses a rule that reaches itself behind symbols that can match nothing (`root ::= x
/// root "a" | "b"` with `x ::= "c"?` grows until memory runs out). A rule is nullable when one of its
/// alternatives can match nothing; the leftmost references of an alternative are those before
/// and at its first item that must match something.
fn check_left_recursion(rules: &HashMap<&str, Alternatives>) -> Result<(), String> {
    let nullable = nullable_rules(rules);
    let mut names: Vec<&str> = rules.keys().copied().collect();
    names.sort_unstable();
    let leftmost: HashMap<&str, Vec<&str>> = names
        .iter()
        .map(|&name| {
            let mut refs = Vec::new();
            leftmost_refs(&rules[name], &nullable, &mut refs);
            (name, refs.into_iter().filter_map(|r| rules.get_key_value(r).map(|(&k, _)| k)).collect())
        })
        .collect();
    // Depth-first over the leftmost references, iteratively: a reference back to a rule on the
    // path is a cycle.
    let (mut state, mut stack): (HashMap<&str, bool>, Vec<(&str, usize)>) = (HashMap::new(), Vec::new());
    for &start in &names {
        if state.contains_key(start) {
            continue;
        }
        state.insert(start, false);
        stack.push((start, 0));
        while let Some((name, next)) = stack.last_mut() {
            let name = *name;
            match leftmost[name].get(*next) {
                Some(&child) => {
                    *next += 1;
                    match state.get(child) {
                        Some(false) => {
                            return Err(format!(
                            "rule {child} is left-recursive (through {name}); llama.cpp would expand it without end"
                        ))
                        }
                        Some(true) => {}
                        None => {
                            state.insert(child, false);
                            stack.push((child, 0));
                        }
                    }
                }
                None => {
                    state.insert(name, true);
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// The rules that can match nothing: a least fixed point, rules rechecked as those they refer
/// to turn out nullable.
fn nullable_rules<'a>(rules: &HashMap<&'a str, Alternatives>) -> HashSet<&'a str> {
    let mut used_by: HashMap<&str, Vec<&'a str>> = HashMap::new();
    for (&name, body) in rules {
        let mut refs = Vec::new();
        all_refs(body, &mut refs);
        for r in refs {
            used_by.entry(r).or_default().push(name);
        }
    }
    let mut nullable = HashSet::new();
    let mut queue: Vec<&'a str> = rules.keys().copied().collect();
    while let Some(name) = queue.pop() {
        if !nullable.contains(name) && alternatives_nullable(&rules[name], &nullable) {
            nullable.insert(name);
            queue.extend(used_by.get(name).into_iter().flatten().copied());
        }
    }
    nullable
}

fn alternatives_nullable(alternatives: &Alternatives, nullable: &HashSet<&str>) -> bool {
    alternatives.iter().any(|items| items.iter().all(|item| item_nullable(item, nullable)))
}

fn item_nullable(item: &Item, nullable: &HashSet<&str>) -> bool {
    item.optional
        || match &item.atom {
            Atom::Terminal { empty } => *empty,
            Atom::Rule(name) => nullable.contains(name.as_str()),
            Atom::Group(inner) => alternatives_nullable(inner, nullable),
        }
}

fn all_refs<'b>(alternatives: &'b Alternatives, out: &mut Vec<&'b str>) {
    for item in alternatives.iter().flatten() {
        match &item.atom {
            Atom::Rule(name) => out.push(name),
            Atom::Group(inner) => all_refs(inner, out),
            Atom::Terminal { .. } => {}
        }
    }
}

/// The references each alternative reaches before it must match something.
fn leftmost_refs<'b>(alternatives: &'b Alternatives, nullable: &HashSet<&str>, out: &mut Vec<&'b str>) {
    for items in alternatives {
        for item in items {
            match &item.atom {
                Atom::Rule(name) => out.push(name),
                Atom::Group(inner) => leftmost_refs(inner, nullable, out),
                Atom::Terminal { .. } => {}
            }
            if !item_nullable(item, nullable) {
                break;
            }
        }
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

    /// Found by the third outside tester: what overflowed a stack or ran without end.
    #[test]
    fn deep_nesting_and_hidden_left_recursion_are_refused() {
        let parens = |n: usize| format!("root ::= {}\"a\"{}", "(".repeat(n), ")".repeat(n));
        assert!(check(&parens(super::MAX_GROUP_DEPTH)).is_ok());
        assert!(check(&parens(super::MAX_GROUP_DEPTH + 1)).unwrap_err().contains("parentheses"));
        assert!(check(&parens(30_000)).is_err());
        let alternatives = format!("root ::= {}", vec!["\"w\""; 300_000].join(" | "));
        assert!(check(&alternatives).unwrap_err().contains("bytes long"));
        let chain = |n: usize, body: &dyn Fn(usize) -> String| {
            let mut g: Vec<String> = (0..n).map(|i| format!("r{i} ::= {}", body(i))).collect();
            g.push(format!("r{n} ::= \"a\""));
            g.insert(0, "root ::= r0".into());
            g.join("\n")
        };
        let plain = |i: usize| format!("r{}", i + 1);
        let guarded = |i: usize| format!("\"a\" r{} | \"b\"", i + 1);
        assert!(check(&chain(200, &plain)).is_ok());
        for n in [300, 2_000] {
            assert!(check(&chain(n, &plain)).unwrap_err().contains("deep"), "{n}");
            assert!(check(&chain(n, &guarded)).unwrap_err().contains("deep"), "{n}");
        }
        assert!(check(&chain(20_000, &plain)).unwrap_err().contains("bytes long"));
        for g in [
            "root ::= x root \"a\" | \"b\"\nx ::= \"c\"?",
            "root ::= ((\"c\")?) root \"a\" | \"b\"",
            "root ::= a\na ::= n b \"x\" | \"y\"\nb ::= n c\nc ::= n a\nn ::= \"c\"?",
            "root ::= \"\" root | \"b\"",
            "root ::= root \"a\" | \"b\"",
        ] {
            assert!(check(g).unwrap_err().contains("left-recursive"), "{g}");
        }
        for g in ["root ::= [a-z ] root", "root ::= \"a\" root | \"\"", "root ::= x? \"a\" root | \"b\"\nx ::= \"c\""] {
            assert!(check(g).is_ok(), "{g}: {:?}", check(g));
        }
    }
}
