//! Chats through llama.cpp's chat layer: tools, a tool choice and reasoning as a request gives
//! them, the JSON that describes a render to the layer, and the answer parsed into content,
//! reasoning and tool calls as it streams.

use crate::llama::chat::{Applied, ChatParser, Delta};
use crate::request::json_schema;
use crate::request::prompt::Message;
use crate::session::report::Answer;
use crate::util::error::{fail, ErrorKind::*, Result};
use crate::util::json::quote;
use crate::util::log;

/// Largest tools array accepted (JSON text), in bytes.
pub const MAX_TOOLS_BYTES: usize = 64 * 1024;

/// The functions a model may call, as OpenAI's `tools` array (JSON text), and how it may.
#[derive(Clone, Copy, Debug)]
pub struct Tools<'a> {
    pub json: &'a str,
    pub choice: ToolChoice<'a>,
    /// Whether an answer may make more than one call.
    pub parallel: bool,
}

/// Whether the model must call a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    /// The model answers or calls, as it decides.
    Auto,
    /// The model answers with text only (the tools are still described to it).
    None,
    /// The answer is one or more calls (a grammar makes them well-formed).
    Required,
    /// The answer is a call to this function.
    Function(&'a str),
}

/// What becomes of a model's reasoning (its `<think>` block and the like).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reasoning {
    /// Kept apart from the content (`Answer::reasoning`, `Sinks::on_reasoning`).
    #[default]
    Separate,
    /// Left in the content, as the model wrote it.
    Inline,
    /// The template is asked not to think (`enable_thinking` false), where it knows how; the
    /// answer is then read as text.
    Off,
}

/// A change of the tool call at `index` of the answer being streamed: its id and name when it
/// first appears (empty after), then pieces of its arguments (JSON text), in order. The pieces
/// of one call's arguments, joined, are its arguments.
#[derive(Clone, Copy, Debug)]
pub struct ToolCallDelta<'a> {
    pub index: usize,
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: &'a str,
}

/// The JSON that asks llama.cpp's chat layer to render `messages` (each with the text to put
/// in its place) with `tools` (shim/chat.cpp's `mm_chat_apply` reads it); with `prompt_only`,
/// what an answer needs (its grammar) is not made.
pub fn render_request(
    messages: &[(&Message, &str)],
    tools: Option<&Tools>,
    reasoning: Reasoning,
    prompt_only: bool,
) -> String {
    let mut out = String::from("{\"messages\":[");
    for (i, (m, text)) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"role\":{},\"content\":{}", quote(m.role), quote(text)));
        for (key, value) in [
            ("tool_calls_json", m.tool_calls),
            ("tool_call_id", m.tool_call_id),
            ("name", m.name),
            ("reasoning_content", m.reasoning),
        ] {
            if let Some(v) = value {
                out.push_str(&format!(",{}:{}", quote(key), quote(v)));
            }
        }
        out.push('}');
    }
    out.push(']');
    if let Some(t) = tools {
        let choice = match t.choice {
            ToolChoice::Auto => quote("auto"),
            ToolChoice::None => quote("none"),
            ToolChoice::Required => quote("required"),
            ToolChoice::Function(name) => format!("{{\"name\":{}}}", quote(name)),
        };
        out.push_str(&format!(
            ",\"tools_json\":{},\"tool_choice\":{choice},\"parallel_tool_calls\":{}",
            quote(t.json),
            t.parallel
        ));
    }
    out.push_str(&format!(
        ",\"reasoning\":{},\"enable_thinking\":{},\"prompt_only\":{prompt_only}}}",
        reasoning != Reasoning::Inline,
        reasoning != Reasoning::Off
    ));
    out
}

/// `grammar` (a required call's, from llama.cpp's chat layer) without the free text it lets
/// come before the call: llama.cpp writes such a root rule as `root ::= space until-N?
/// tool-call` (any text up to the call's marker), and a model that never writes the marker
/// (one with random weights, or a weak one) then never makes the call it is required to make.
/// The call starts at once instead (after the reasoning, where the template has one).
pub fn call_at_once(grammar: &str) -> String {
    grammar
        .lines()
        .map(|line| match line.strip_prefix("root ::= ") {
            Some(rule) => {
                let kept: Vec<&str> =
                    rule.split(' ').filter(|t| !(t.starts_with("until-") && t.ends_with('?'))).collect();
                format!("root ::= {}", kept.join(" "))
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks the tools' size and nesting before llama.cpp parses them (and converts each one's
/// parameters with its JSON Schema converter).
pub fn check_tools(tools: &Tools) -> Result<()> {
    json_schema::bounded(tools.json, MAX_TOOLS_BYTES, json_schema::MAX_DEPTH + 4)
        .or_else(|why| fail(InvalidArgument, format!("tools refused: {why}")))?;
    if tools.json.trim().is_empty() {
        return fail(InvalidArgument, "tools is empty: give a JSON array of tools, or no tools");
    }
    if let ToolChoice::Function(name) = tools.choice {
        if name.is_empty() {
            return fail(InvalidArgument, "tool_choice names a function with an empty name");
        }
    }
    Ok(())
}

/// Where the parts of an answer go as it is generated.
pub struct AnswerSinks<'s> {
    pub on_text: &'s mut dyn FnMut(&str) -> bool,
    pub on_reasoning: Option<&'s mut dyn FnMut(&str) -> bool>,
    pub on_tool_call: Option<&'s mut dyn FnMut(&ToolCallDelta) -> bool>,
}

/// An answer parsed as it streams: the raw text so far, and the parser that splits it.
pub struct AnswerStream<'s> {
    raw: String,
    parser: ChatParser,
    sinks: AnswerSinks<'s>,
}

impl<'s> AnswerStream<'s> {
    pub fn new(applied: &Applied, reasoning: Reasoning, seed: u32, sinks: AnswerSinks<'s>) -> Result<Self> {
        Ok(AnswerStream {
            raw: String::new(),
            parser: ChatParser::new(applied, reasoning != Reasoning::Inline, seed)?,
            sinks,
        })
    }

    /// Adds generated text; returns false when a sink asked to stop.
    pub fn push(&mut self, text: &str) -> Result<bool> {
        self.raw.push_str(text);
        self.parser.update(&self.raw, true)?;
        Ok(self.forward())
    }

    /// Parses the whole answer, hands out what is left, and returns it.
    pub fn finish(mut self) -> Result<Answer> {
        if !self.parser.update(&self.raw, false)? {
            log::emit(
                log::LogLevel::Warn,
                "the answer does not follow the chat format's syntax: it is returned as content",
            );
        }
        self.forward();
        let (content, reasoning, tool_calls) = self.parser.message();
        Ok(Answer { content, reasoning, tool_calls })
    }

    /// Hands the last update's changes to the sinks; false when one asked to stop.
    fn forward(&mut self) -> bool {
        let mut go_on = true;
        for Delta { content, reasoning, tool_call } in self.parser.deltas() {
            if !content.is_empty() {
                go_on &= (self.sinks.on_text)(&content);
            }
            if let (false, Some(sink)) = (reasoning.is_empty(), self.sinks.on_reasoning.as_mut()) {
                go_on &= sink(&reasoning);
            }
            if let (Some((index, call)), Some(sink)) = (tool_call, self.sinks.on_tool_call.as_mut()) {
                go_on &= sink(&ToolCallDelta { index, id: &call.id, name: &call.name, arguments: &call.arguments });
            }
        }
        go_on
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_required_call_starts_at_once() {
        let grammar =
            "root ::= space until-272? tool-call\nuntil-272 ::= | [^\\[] until-272\ntool-call ::= \"[TOOL_CALLS]\"";
        assert_eq!(
            super::call_at_once(grammar),
            "root ::= space tool-call\nuntil-272 ::= | [^\\[] until-272\ntool-call ::= \"[TOOL_CALLS]\""
        );
    }
}
