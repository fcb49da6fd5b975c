// llama.cpp's chat layer (`common/chat.h`, what llama-server uses): the model's Jinja template,
// rendered with messages, tools and a tool choice; the grammar and lazy triggers that make a
// tool call well-formed; and the parser that splits an answer into content, reasoning and tool
// calls, also while it streams. Every function is an exception barrier (see guard.cpp): a C++
// exception becomes an error return and a message in mm_guard_what().
//
// Each object here is opaque to Rust, which reads it through the accessors below.

#include <cstdint>
#include <cstring>
#include <exception>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chat.h"
#include "common.h"
#include "json-schema-to-grammar.h"
#include "log.h"
#include "llama.h"

extern std::string & mm_guard_what_ref();

namespace {

template <typename T, typename F>
T guarded_chat(T on_error, F && f) noexcept {
    try {
        return f();
    } catch (const std::exception & e) {
        try { mm_guard_what_ref() = e.what(); } catch (...) {}
    } catch (...) {
        try { mm_guard_what_ref() = "unknown C++ exception"; } catch (...) {}
    }
    return on_error;
}

}  // namespace

// A parsed template.
struct mm_chat_tmpl {
    common_chat_templates_ptr templates;
};

// What one render gives a request: the prompt, and what generating and parsing the answer need.
struct mm_chat_applied {
    common_chat_params params;
    // The lazy grammar's triggers as llama.cpp's sampler takes them (as common/sampling.cpp
    // turns them): regular expressions, and tokens.
    std::vector<std::string> trigger_patterns;
    std::vector<llama_token> trigger_tokens;
    // The preserved tokens that are one token each: their text stays in the answer.
    std::vector<llama_token> preserved;
    // Whether the answer is in the generic JSON format (see generic_* below).
    bool generic = false;
};

// An answer being parsed: the message so far, and what changed with the last update.
struct mm_chat_stream {
    common_chat_parser_params params;
    bool generic = false;
    common_chat_msg msg;
    std::vector<common_chat_msg_diff> diffs;
    std::vector<std::string> ids;
    std::mt19937 rng;
};

// A change of an answer being streamed; pointers valid until the next update.
struct mm_chat_delta {
    const char * content;
    const char * reasoning;
    // -1: no tool call changed.
    int64_t tool_index;
    const char * tool_name;
    const char * tool_id;
    const char * tool_arguments;
};

// The generic tool call format, for templates without a tool call syntax of their own (as
// llama.cpp's chat layer once had): the tools are described in the system message, the answer
// is one JSON object, {"tool_calls": [{"name": ..., "arguments": {...}}]} or, when a call is
// not required, {"response": "..."}, and a grammar made from the tools' schemas holds it to that.

static common_json generic_answer_schema(const std::vector<common_chat_tool> & tools, bool required, bool parallel) {
    common_json calls = common_json::array();
    for (const auto & tool : tools) {
        common_json name = common_json::object();
        name["type"] = "string";
        name["const"] = tool.name;
        common_json properties = common_json::object();
        properties["name"] = name;
        properties["arguments"] = common_json::parse(tool.parameters);
        common_json call = common_json::object();
        call["type"] = "object";
        call["properties"] = properties;
        call["required"] = common_json::array({ "name", "arguments" });
        call["additionalProperties"] = false;
        calls.push_back(call);
    }
    common_json items = common_json::object();
    if (calls.size() == 1) {
        items = calls.at(0);
    } else {
        items["anyOf"] = calls;
    }
    common_json list = common_json::object();
    list["type"] = "array";
    list["items"] = items;
    list["minItems"] = 1;
    if (!parallel) {
        list["maxItems"] = 1;
    }
    common_json with_calls = common_json::object();
    with_calls["type"] = "object";
    common_json call_properties = common_json::object();
    call_properties["tool_calls"] = list;
    with_calls["properties"] = call_properties;
    with_calls["required"] = common_json::array({ "tool_calls" });
    with_calls["additionalProperties"] = false;
    if (required) {
        return with_calls;
    }
    common_json text = common_json::object();
    text["type"] = "string";
    common_json response_properties = common_json::object();
    response_properties["response"] = text;
    common_json response = common_json::object();
    response["type"] = "object";
    response["properties"] = response_properties;
    response["required"] = common_json::array({ "response" });
    response["additionalProperties"] = false;
    common_json either = common_json::object();
    either["anyOf"] = common_json::array({ with_calls, response });
    return either;
}

// The messages as the generic format shows them to a template that knows no tools: the tools
// described in the system message, calls and results as JSON text.
static std::vector<common_chat_msg> generic_messages(const std::vector<common_chat_msg> & messages,
                                                     const std::vector<common_chat_tool> & tools) {
    common_json described = common_json::array();
    for (const auto & tool : tools) {
        common_json t = common_json::object();
        t["name"] = tool.name;
        t["description"] = tool.description;
        t["parameters"] = common_json::parse(tool.parameters);
        described.push_back(t);
    }
    // The same whatever the tool choice: the prompt's prefix stays the same across requests.
    const std::string prompt = "You can call these tools:\n" + described.dump(2) +
                               "\n\nAnswer with one JSON object: {\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": "
                               "{<its arguments>}}]} to call tools, or {\"response\": \"<your answer>\"} to answer.";
    std::vector<common_chat_msg> out;
    for (const auto & m : messages) {
        common_chat_msg shown = m;
        if (!m.tool_calls.empty()) {
            common_json calls = common_json::array();
            for (const auto & call : m.tool_calls) {
                common_json c = common_json::object();
                c["name"] = call.name;
                common_json arguments = common_json::parse_no_throw(call.arguments);
                c["arguments"] = arguments.is_discarded() ? common_json(call.arguments) : arguments;
                if (!call.id.empty()) {
                    c["id"] = call.id;
                }
                calls.push_back(c);
            }
            // The message's own text (and its media's markers) stays, as the answer's response.
            common_json answer = common_json::object();
            if (!m.content.empty()) {
                answer["response"] = m.content;
            }
            answer["tool_calls"] = calls;
            shown.content = answer.dump();
            shown.tool_calls.clear();
        } else if (m.role == "tool") {
            common_json result = common_json::object();
            result["name"] = m.tool_name;
            result["id"] = m.tool_call_id;
            result["content"] = m.content;
            common_json wrapped = common_json::object();
            wrapped["tool_response"] = result;
            shown.role = "user";
            shown.content = wrapped.dump();
            shown.tool_name.clear();
            shown.tool_call_id.clear();
        }
        out.push_back(shown);
    }
    if (!out.empty() && out.front().role == "system") {
        out.front().content = prompt + "\n\n" + out.front().content;
    } else {
        common_chat_msg system;
        system.role = "system";
        system.content = prompt;
        out.insert(out.begin(), system);
    }
    return out;
}

// The answer in the generic format: its tool calls, or its response as content. False when the
// text is not that JSON.
static bool generic_parse(const std::string & text, common_chat_msg & msg) {
    const common_json answer = common_json::parse_no_throw(text);
    if (answer.is_discarded() || !answer.is_object()) {
        return false;
    }
    if (answer.contains("response") && answer.at("response").is_string()) {
        msg.content = answer.at("response").get<std::string>();
        return true;
    }
    if (!answer.contains("tool_calls") || !answer.at("tool_calls").is_array()) {
        return false;
    }
    const common_json & calls = answer.at("tool_calls");
    for (size_t i = 0; i < calls.size(); i++) {
        const common_json & c = calls.at(i);
        if (!c.is_object() || !c.contains("name") || !c.at("name").is_string() || !c.contains("arguments")) {
            return false;
        }
        common_chat_tool_call call;
        call.name = c.at("name").get<std::string>();
        call.arguments = c.at("arguments").is_string() ? c.at("arguments").get<std::string>() : c.at("arguments").dump();
        msg.tool_calls.push_back(call);
    }
    return true;
}

// Whether llama.cpp's chat layer makes a tool call grammar for `t`: a required call to a dummy
// tool gets one from a template with its own syntax.
static bool knows_tool_calls(const common_chat_templates * t) {
    common_chat_templates_inputs probe;
    common_chat_msg user;
    user.role = "user";
    user.content = "x";
    probe.messages = { user };
    probe.tools = { { "probe", "A probe.", "{\"type\": \"object\", \"properties\": {}}" } };
    probe.tool_choice = COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    try {
        return !common_chat_templates_apply(t, probe).grammar.empty();
    } catch (const std::bad_alloc &) {
        throw;
    } catch (const std::exception &) {
        return false;
    }
}

extern "C" {

// Silences llama.cpp common's own log, which prints to stderr from a thread of its own: its
// messages never pass through the log route. Not thread-safe: called once, at backend init.
void mm_chat_quiet_common_log(void) noexcept { common_log_set_verbosity_thold(-1); }

// Parses `src` and runs the capability probes llama.cpp's chat layer runs on a template (which
// render it several times): what common_chat_templates_init does to it, apart from the model.
// 0, or -1 with the parser's or the render's error (common_chat_templates_init rethrows the
// parser's error as a bare std::exception, without its message).
int32_t mm_chat_template_check(const char * src) noexcept {
    return guarded_chat<int32_t>(-1, [&] {
        common_chat_template probe(src, "", "");
        return (int32_t) 0;
    });
}

// Parses the model's template (`tmpl` NULL or empty) or `tmpl`. NULL with the parser's error.
mm_chat_tmpl * mm_chat_templates_init(const llama_model * model, const char * tmpl) noexcept {
    return guarded_chat<mm_chat_tmpl *>(nullptr, [&] {
        auto t = std::make_unique<mm_chat_tmpl>();
        t->templates = common_chat_templates_init(model, tmpl ? tmpl : "");
        return t.release();
    });
}

void mm_chat_templates_free(mm_chat_tmpl * t) noexcept { delete t; }

// Whether llama.cpp's chat layer knows the template's own tool call syntax (otherwise the
// generic JSON format): 1 or 0, -1 on error.
int32_t mm_chat_templates_native_tools(const mm_chat_tmpl * t) noexcept {
    return guarded_chat<int32_t>(-1, [&] { return (int32_t) knows_tool_calls(t->templates.get()); });
}

// Fails unless every tool result answers a tool call of an earlier assistant message.
static void check_tool_call_ids(const std::vector<common_chat_msg> & messages) {
    std::set<std::string> ids;
    for (size_t i = 0; i < messages.size(); i++) {
        const auto & m = messages[i];
        for (const auto & call : m.tool_calls) {
            if (!call.id.empty()) {
                ids.insert(call.id);
            }
        }
        if (m.role == "tool" && !m.tool_call_id.empty() && !ids.count(m.tool_call_id)) {
            throw std::invalid_argument("message " + std::to_string(i) + " is the result of tool call \"" +
                                        m.tool_call_id.substr(0, 64) + "\", but no earlier assistant message made a call with that id");
        }
    }
}

// Renders a chat. `request` is JSON: {"messages": [OpenAI messages, whose "tool_calls" come as
// JSON text in "tool_calls_json"], "tools_json": the OpenAI tools array as JSON text (optional),
// "tool_choice": "auto" | "none" | "required" | {"name": one tool's name},
// "parallel_tool_calls": bool, "reasoning": bool (separate the reasoning), "enable_thinking":
// bool, "prompt_only": bool (the prompt alone is wanted)}. NULL on error.
mm_chat_applied * mm_chat_apply(const mm_chat_tmpl * t, bool native_tools, const llama_vocab * vocab,
                                const char * request) noexcept {
    return guarded_chat<mm_chat_applied *>(nullptr, [&] {
        const common_json req = common_json::parse(request);
        common_chat_templates_inputs inputs;
        common_json messages = req.at("messages");
        for (size_t i = 0; i < messages.size(); i++) {
            common_json & m = messages.at(i);
            if (m.contains("tool_calls_json")) {
                const std::string text = m.at("tool_calls_json").get<std::string>();
                common_json calls = common_json::parse_no_throw(text);
                if (calls.is_discarded() || !calls.is_array()) {
                    throw std::invalid_argument("message " + std::to_string(i) + ": tool_calls is not a JSON array");
                }
                m["tool_calls"] = calls;
                m.erase("tool_calls_json");
            }
        }
        inputs.messages = common_chat_msgs_parse_oaicompat(messages);
        check_tool_call_ids(inputs.messages);
        if (req.contains("tools_json")) {
            common_json tools = common_json::parse_no_throw(req.at("tools_json").get<std::string>());
            if (tools.is_discarded() || !tools.is_array()) {
                throw std::invalid_argument("tools is not a JSON array");
            }
            inputs.tools = common_chat_tools_parse_oaicompat(tools);
        }
        const common_json choice = req.value("tool_choice", common_json("auto"));
        // One function by name: a call required, to that tool alone (the prompt still shows
        // every tool, so that it stays the same from one request to the next).
        std::vector<common_chat_tool> named;
        if (choice.is_object()) {
            const std::string name = choice.at("name").get<std::string>();
            for (const auto & tool : inputs.tools) {
                if (tool.name == name) {
                    named.push_back(tool);
                }
            }
            if (named.empty()) {
                throw std::invalid_argument("tool_choice names the function \"" + name.substr(0, 64) + "\", which is not among the tools");
            }
            inputs.tool_choice = COMMON_CHAT_TOOL_CHOICE_REQUIRED;
        } else {
            inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(choice.get<std::string>());
        }
        inputs.parallel_tool_calls = req.value("parallel_tool_calls", false);
        inputs.reasoning_format = req.value("reasoning", true) ? COMMON_REASONING_FORMAT_DEEPSEEK : COMMON_REASONING_FORMAT_NONE;
        inputs.enable_thinking = req.value("enable_thinking", true);
        inputs.add_generation_prompt = true;
        inputs.use_jinja = true;

        // Only the prompt is wanted (the render that finds the markup): no grammar, no tokens.
        const bool prompt_only = req.value("prompt_only", false);
        auto applied = std::make_unique<mm_chat_applied>();
        const bool generic = !native_tools && !inputs.tools.empty() && inputs.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE;
        if (generic) {
            const bool required = inputs.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED;
            const auto schema = generic_answer_schema(named.empty() ? inputs.tools : named, required, inputs.parallel_tool_calls);
            inputs.messages = generic_messages(inputs.messages, inputs.tools);
            inputs.tools.clear();
            inputs.tool_choice = COMMON_CHAT_TOOL_CHOICE_AUTO;
            applied->params = common_chat_templates_apply(t->templates.get(), inputs);
            if (!prompt_only) {
                applied->params.grammar = json_schema_to_grammar(schema, /* force_gbnf */ true);
            }
            applied->params.grammar_lazy = false;
            applied->params.grammar_triggers.clear();
            applied->generic = true;
        } else if (!named.empty()) {
            const std::string prompt = common_chat_templates_apply(t->templates.get(), inputs).prompt;
            inputs.tools = named;
            applied->params = common_chat_templates_apply(t->templates.get(), inputs);
            applied->params.prompt = prompt;
        } else {
            applied->params = common_chat_templates_apply(t->templates.get(), inputs);
        }
        if (prompt_only) {
            return applied.release();
        }
        std::set<llama_token> preserved;
        for (const auto & text : applied->params.preserved_tokens) {
            const auto ids = common_tokenize(vocab, text, false, true);
            if (ids.size() == 1) {
                preserved.insert(ids[0]);
            }
        }
        applied->preserved.assign(preserved.begin(), preserved.end());
        for (const auto & trigger : applied->params.grammar_triggers) {
            switch (trigger.type) {
                case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: {
                    // A word that is one preserved token triggers as that token (as llama-server does).
                    const auto ids = common_tokenize(vocab, trigger.value, false, true);
                    if (ids.size() == 1 && preserved.count(ids[0])) {
                        applied->trigger_tokens.push_back(ids[0]);
                    } else {
                        applied->trigger_patterns.push_back(regex_escape(trigger.value));
                    }
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
                    applied->trigger_patterns.push_back(trigger.value);
                    break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
                    const auto & p = trigger.value;
                    std::string anchored = "^$";
                    if (!p.empty()) {
                        anchored = (p.front() != '^' ? "^" : "") + p + (p.back() != '$' ? "$" : "");
                    }
                    applied->trigger_patterns.push_back(anchored);
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:
                    applied->trigger_tokens.push_back(trigger.token);
                    break;
            }
        }
        return applied.release();
    });
}

void mm_chat_applied_free(mm_chat_applied * a) noexcept { delete a; }

const char * mm_chat_applied_prompt(const mm_chat_applied * a, size_t * len) noexcept {
    *len = a->params.prompt.size();
    return a->params.prompt.data();
}
const char * mm_chat_applied_grammar(const mm_chat_applied * a) noexcept { return a->params.grammar.c_str(); }
bool mm_chat_applied_grammar_lazy(const mm_chat_applied * a) noexcept { return a->params.grammar_lazy; }
const char * mm_chat_applied_generation_prompt(const mm_chat_applied * a) noexcept {
    return a->params.generation_prompt.c_str();
}
size_t mm_chat_applied_n_patterns(const mm_chat_applied * a) noexcept { return a->trigger_patterns.size(); }
const char * mm_chat_applied_pattern(const mm_chat_applied * a, size_t i) noexcept { return a->trigger_patterns[i].c_str(); }
size_t mm_chat_applied_n_trigger_tokens(const mm_chat_applied * a) noexcept { return a->trigger_tokens.size(); }
const llama_token * mm_chat_applied_trigger_tokens(const mm_chat_applied * a) noexcept { return a->trigger_tokens.data(); }
size_t mm_chat_applied_n_preserved(const mm_chat_applied * a) noexcept { return a->preserved.size(); }
const llama_token * mm_chat_applied_preserved(const mm_chat_applied * a) noexcept { return a->preserved.data(); }
size_t mm_chat_applied_n_stops(const mm_chat_applied * a) noexcept { return a->params.additional_stops.size(); }
const char * mm_chat_applied_stop(const mm_chat_applied * a, size_t i) noexcept { return a->params.additional_stops[i].c_str(); }
bool mm_chat_applied_supports_thinking(const mm_chat_applied * a) noexcept { return a->params.supports_thinking; }
// Whether the grammar reads the generation prompt first (the chat layer's tool call grammars
// that apply from the start do; the generic format's does not).
bool mm_chat_applied_prefill(const mm_chat_applied * a) noexcept { return !a->generic && !a->params.grammar_lazy; }
// A parser of answers to the render `a`; tool call ids it makes up come from `seed`.
mm_chat_stream * mm_chat_stream_new(const mm_chat_applied * a, bool reasoning, uint32_t seed) noexcept {
    return guarded_chat<mm_chat_stream *>(nullptr, [&] {
        auto s = std::make_unique<mm_chat_stream>();
        s->params = common_chat_parser_params(a->params);
        s->generic = a->generic;
        s->params.reasoning_format = reasoning ? COMMON_REASONING_FORMAT_DEEPSEEK : COMMON_REASONING_FORMAT_NONE;
        if (!a->params.parser.empty()) {
            s->params.parser.load(a->params.parser);
        }
        s->rng.seed(seed);
        s->msg.role = "assistant";
        return s.release();
    });
}

void mm_chat_stream_free(mm_chat_stream * s) noexcept { delete s; }

// Parses the whole answer so far (`partial`: more may follow). 0: parsed; 1: the final text
// does not parse as the format (the message is then the text as content); -1: error.
int32_t mm_chat_stream_update(mm_chat_stream * s, const char * text, size_t len, bool partial) noexcept {
    return guarded_chat<int32_t>(-1, [&] {
        const std::string input(text, len);
        int32_t status = 0;
        common_chat_msg next;
        next.role = "assistant";
        try {
            if (s->generic) {
                // One JSON object: read whole, once it is.
                if (partial) {
                    s->diffs.clear();
                    return 0;
                }
                if (!generic_parse(input, next)) {
                    throw std::runtime_error("the answer is not the JSON object of the generic tool call format");
                }
            } else {
                next = common_chat_parse(input, partial, s->params);
            }
        } catch (const std::bad_alloc &) {
            throw;
        } catch (const std::exception & e) {
            if (partial) {
                // Half a call that does not parse yet: wait for more text.
                s->diffs.clear();
                return 0;
            }
            mm_guard_what_ref() = e.what();
            next = common_chat_msg();
            next.role = "assistant";
            next.content = input;
            status = 1;
        }
        next.set_tool_call_ids(s->ids, [&] {
            static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            std::string id = "call_";
            for (int i = 0; i < 24; i++) {
                id += alphabet[s->rng() % (sizeof(alphabet) - 1)];
            }
            return id;
        });
        s->diffs = common_chat_msg_diff::compute_diffs(s->msg, next);
        s->msg = std::move(next);
        return status;
    });
}

size_t mm_chat_stream_n_diffs(const mm_chat_stream * s) noexcept { return s->diffs.size(); }

void mm_chat_stream_diff(const mm_chat_stream * s, size_t i, mm_chat_delta * out) noexcept {
    const auto & d = s->diffs[i];
    out->content = d.content_delta.c_str();
    out->reasoning = d.reasoning_content_delta.c_str();
    out->tool_index = d.tool_call_index == std::string::npos ? -1 : (int64_t) d.tool_call_index;
    out->tool_name = d.tool_call_delta.name.c_str();
    out->tool_id = d.tool_call_delta.id.c_str();
    out->tool_arguments = d.tool_call_delta.arguments.c_str();
}

const char * mm_chat_stream_content(const mm_chat_stream * s) noexcept { return s->msg.content.c_str(); }
const char * mm_chat_stream_reasoning(const mm_chat_stream * s) noexcept { return s->msg.reasoning_content.c_str(); }
size_t mm_chat_stream_n_tool_calls(const mm_chat_stream * s) noexcept { return s->msg.tool_calls.size(); }
void mm_chat_stream_tool_call(const mm_chat_stream * s, size_t i, const char ** name, const char ** arguments,
                              const char ** id) noexcept {
    const auto & c = s->msg.tool_calls[i];
    *name = c.name.c_str();
    *arguments = c.arguments.c_str();
    *id = c.id.c_str();
}

}  // extern "C"
