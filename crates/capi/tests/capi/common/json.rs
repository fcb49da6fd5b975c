//! A small JSON reader for the tests' checks of tool calls (the tests have no JSON crate).

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parses JSON text; `None` when it is not one JSON value (whitespace around allowed).
    pub fn parse(text: &str) -> Option<Json> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let value = value(&chars, &mut pos)?;
        space(&chars, &mut pos);
        (pos == chars.len()).then_some(value)
    }
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
}

fn space(c: &[char], pos: &mut usize) {
    while *pos < c.len() && c[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn value(c: &[char], pos: &mut usize) -> Option<Json> {
    space(c, pos);
    let literal = |pos: &mut usize, word: &str, v: Json| {
        let end = *pos + word.len();
        (end <= c.len() && c[*pos..end].iter().collect::<String>() == word).then(|| {
            *pos = end;
            v
        })
    };
    match *c.get(*pos)? {
        'n' => literal(pos, "null", Json::Null),
        't' => literal(pos, "true", Json::Bool(true)),
        'f' => literal(pos, "false", Json::Bool(false)),
        '"' => string(c, pos).map(Json::String),
        '[' => {
            *pos += 1;
            let mut items = Vec::new();
            space(c, pos);
            if c.get(*pos) == Some(&']') {
                *pos += 1;
                return Some(Json::Array(items));
            }
            loop {
                items.push(value(c, pos)?);
                space(c, pos);
                match c.get(*pos)? {
                    ',' => *pos += 1,
                    ']' => {
                        *pos += 1;
                        return Some(Json::Array(items));
                    }
                    _ => return None,
                }
            }
        }
        '{' => {
            *pos += 1;
            let mut map = BTreeMap::new();
            space(c, pos);
            if c.get(*pos) == Some(&'}') {
                *pos += 1;
                return Some(Json::Object(map));
            }
            loop {
                space(c, pos);
                let key = string(c, pos)?;
                space(c, pos);
                (c.get(*pos)? == &':').then_some(())?;
                *pos += 1;
                if map.insert(key, value(c, pos)?).is_some() {
                    return None;
                }
                space(c, pos);
                match c.get(*pos)? {
                    ',' => *pos += 1,
                    '}' => {
                        *pos += 1;
                        return Some(Json::Object(map));
                    }
                    _ => return None,
                }
            }
        }
        _ => {
            let start = *pos;
            while *pos < c.len() && matches!(c[*pos], '-' | '+' | '.' | 'e' | 'E' | '0'..='9') {
                *pos += 1;
            }
            c[start..*pos].iter().collect::<String>().parse().ok().map(Json::Number)
        }
    }
}

fn string(c: &[char], pos: &mut usize) -> Option<String> {
    (c.get(*pos)? == &'"').then_some(())?;
    *pos += 1;
    let mut out = String::new();
    loop {
        match *c.get(*pos)? {
            '"' => {
                *pos += 1;
                return Some(out);
            }
            '\\' => {
                *pos += 1;
                match *c.get(*pos)? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = c.get(*pos + 1..*pos + 5)?.iter().collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('\u{FFFD}'));
                        *pos += 4;
                    }
                    other => out.push(other),
                }
                *pos += 1;
            }
            ch if (ch as u32) < 0x20 => return None,
            ch => {
                out.push(ch);
                *pos += 1;
            }
        }
    }
}

#[test]
fn reads_what_tool_calls_hold() {
    let j = Json::parse(r#" {"a": [1, -2.5e1, true, null], "b": "x\"\u00e9\n"} "#).unwrap();
    assert_eq!(j.get("a").unwrap().as_array().unwrap()[1], Json::Number(-25.0));
    assert_eq!(j.get("b").unwrap().as_str(), Some("x\"é\n"));
    assert!(Json::parse("{\"a\": 1,}").is_none());
    assert!(Json::parse("[1] x").is_none());
    assert!(Json::parse("{\"a\": 1, \"a\": 2}").is_none(), "duplicate keys");
}
