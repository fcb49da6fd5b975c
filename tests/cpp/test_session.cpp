// C++ tests of include/mm_session.hpp: create failure as an exception, streaming, an exception
// thrown from the callable, cancel from another thread, move semantics, forks, info, sessions
// that decode together (n_parallel), tool calls.
// usage: test_session_cpp MODEL MMPROJ IMAGE
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mm_session.hpp"

static int failures = 0;

#define EXPECT(cond)                                                             \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static std::string model, mmproj, image;

static mm::SessionParams params() {
    mm::SessionParams p;
    p.model = model;
    p.mmproj = mmproj;
    p.n_ctx = 1024;
    p.n_threads = 1;
    p.seed = 3;
    return p;
}

static void create_failure_is_an_exception() {
    mm::SessionParams p = params();
    p.model = "/no/such/model.gguf";
    try {
        mm::Session s = mm::Session::create(p);
        EXPECT(false);
    } catch (const mm::Error &e) {
        EXPECT(e.status() == MM_ERR_FILE_NOT_FOUND);
        EXPECT(std::string(e.what()).find("/no/such/model.gguf") != std::string::npos);
    }
    EXPECT(mm::live_sessions() == 0);
}

/* The speed and memory options reach the library: a quantized V cache without flash attention
   is refused; flash attention on with a smaller n_ubatch loads (the tiny model's head size takes
   no quantized cache). */
static void speed_options_reach_the_library() {
    mm::SessionParams p = params();
    p.kv_type_v = MM_KV_Q8_0;
    p.flash_attn = MM_FLASH_ATTN_OFF;
    try {
        mm::Session s = mm::Session::create(p);
        EXPECT(false);
    } catch (const mm::Error &e) {
        EXPECT(e.status() == MM_ERR_INVALID_ARGUMENT);
        EXPECT(std::string(e.what()).find("kv_type_v") != std::string::npos);
    }
    p.kv_type_v = MM_KV_F16;
    p.flash_attn = MM_FLASH_ATTN_ON;
    p.n_ubatch = 64;
    mm::Session s = mm::Session::create(p);
    EXPECT(mm::build_info().find("mm-session ") == 0);
}

static void streaming_adds_up_to_the_answer() {
    mm::Session s = mm::Session::create(params());
    std::string streamed;
    int pieces = 0;
    mm::AskOptions o;
    o.max_tokens = 12;
    std::string answer = s.ask("Describe <__media__>.", {mm::Media::file(image)}, o, [&](std::string_view piece) {
        streamed += piece;
        pieces++;
        return true;
    });
    EXPECT(pieces > 0);
    EXPECT(answer == streamed);
    EXPECT(s.last_ask().media_encoded == 1);
    EXPECT(s.info().supports_vision);
    EXPECT(s.memory().model_host > 0);
    std::vector<mm::Message> chat = {{"user", "What is in it?", {mm::Media::file(image)}}};
    EXPECT(!s.chat(chat, o).empty() || s.last_ask().stop_reason == MM_STOP_EOG);
}

struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom from the callable") {}
};

static void an_exception_from_the_callable_is_rethrown() {
    mm::Session s = mm::Session::create(params());
    mm::AskOptions o;
    o.max_tokens = 20;
    bool caught = false;
    try {
        s.ask("Tell a story.", {}, o, [](std::string_view) -> bool { throw Boom(); });
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught);
    EXPECT(s.last_ask().stop_reason == MM_STOP_CALLBACK);
    EXPECT(!s.ask("Still there?", {}, o).empty() || s.last_ask().stop_reason == MM_STOP_EOG);
}

static void cancel_from_another_thread() {
    mm::Session s = mm::Session::create(params());
    std::atomic<bool> started{false}, cancelled{false};
    std::thread canceller([&] {
        while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        s.cancel();
        cancelled = true;
    });
    mm::AskOptions o;
    o.max_tokens = 2000;
    o.stop = {};
    mm_status status = MM_OK;
    try {
        // The first piece waits (60 s at most) until the cancel is sent: the request cannot end
        // by itself first, however busy the machine.
        s.ask("Go on forever.", {}, o, [&](std::string_view) {
            started = true;
            for (int ms = 0; !cancelled && ms < 60000; ++ms) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return true;
        });
    } catch (const mm::Error &e) {
        status = e.status();
    }
    canceller.join();
    EXPECT(status == MM_ERR_CANCELLED);
    s.ask("Usable again?", {}, mm::AskOptions{});  // throws mm::Error if the session is not usable
}

static void request_options_reach_the_library() {
    mm::Session s = mm::Session::create(params());
    std::vector<std::int32_t> q = s.tokenize("Q");
    EXPECT(q.size() == 1);
    mm::AskOptions o;
    o.max_tokens = 4;
    o.temperature = 0.0f;
    o.logit_bias = {{q[0], 100.0f}};
    o.n_probs = 3;
    int tokens = 0;
    bool sorted = true;
    std::string answer = s.ask("Say something.", {}, o, {}, [&](const mm::TokenLogprob &chosen, const std::vector<mm::TokenLogprob> &top) {
        tokens++;
        sorted = sorted && top.size() == 3 && top[0].logprob >= top[1].logprob && chosen.token == q[0];
    });
    EXPECT(answer == "QQQQ");
    EXPECT(tokens == 4 && sorted);
    mm::AskOptions j;
    j.max_tokens = 64;
    j.json_schema = R"({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]})";
    std::string json = s.ask("JSON please.", {}, j);
    EXPECT(json.rfind("{", 0) == 0 && json.find("\"n\"") != std::string::npos);
}

static const char *const weather_tools =
    R"([{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}, "days": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["city", "days"], "additionalProperties": false}}}, {"type": "function", "function": {"name": "get_time", "description": "The time in a time zone.", "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}}}])";

/* The JSON string value that follows `key` in `json` from `from` on, unescaped (the escapes a
   JSON writer uses for arguments text: \" \\ \n \t \/; others are kept as written). */
static std::string json_string_after(const std::string &json, const std::string &key, std::size_t from = 0) {
    std::size_t at = json.find("\"" + key + "\":", from);
    if (at == std::string::npos) return "<no " + key + ">";
    at = json.find('"', at + key.size() + 3);
    std::string out;
    for (std::size_t i = at + 1; i < json.size() && json[i] != '"'; i++) {
        if (json[i] != '\\') {
            out += json[i];
            continue;
        }
        char e = json[++i];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    }
    return out;
}

/* A required tool call from random weights: MM_STOP_TOOL_CALLS, a call to one of the tools in
   last_message(), whose arguments the streamed deltas add up to; the call and its result go
   back into the chat; bad tools throw mm::Error. */
static void tool_calls_come_apart_from_the_text() {
    mm::SessionParams p = params();
    p.n_ctx = 4096;  // the tools' description is long for the fixture's byte-level tokenizer
    mm::Session s = mm::Session::create(p);
    std::vector<mm::Message> chat = {{"user", "What is the weather in Oslo for the next 3 days?", {mm::Media::file(image)}}};
    for (const char *choice : {"required", "get_time"}) {
        mm::AskOptions o;
        o.max_tokens = 256;
        o.tools = weather_tools;
        o.tool_choice = choice;
        std::string streamed_name, streamed_arguments, streamed_id;
        int deltas = 0;
        bool indices_ok = true;
        o.on_tool_call = [&](const mm::ToolCallDelta &d) {
            deltas++;
            indices_ok = indices_ok && d.index == 0;
            streamed_id += d.id;
            streamed_name += d.name;
            streamed_arguments += d.arguments;
            return true;
        };
        std::string text = s.chat(chat, o);
        mm_ask_info info = s.last_ask();
        std::string message = s.last_message();
        EXPECT(text.empty());
        EXPECT(info.stop_reason == MM_STOP_TOOL_CALLS);
        EXPECT(info.tool_calls == 1);
        EXPECT(message.find("\"role\":\"assistant\"") != std::string::npos || message.find("\"role\": \"assistant\"") != std::string::npos);
        EXPECT(message.find("\"tool_calls\"") != std::string::npos);
        std::string name = json_string_after(message, "name");
        EXPECT(name == "get_weather" || name == "get_time");
        if (std::string(choice) == "get_time") EXPECT(name == "get_time");
        EXPECT(deltas > 0 && indices_ok);
        EXPECT(streamed_name == name);
        EXPECT(streamed_id == json_string_after(message, "id"));
        EXPECT(streamed_arguments == json_string_after(message, "arguments"));
        EXPECT(streamed_arguments.rfind("{", 0) == 0 && streamed_arguments.find(name == "get_time" ? "\"zone\"" : "\"city\"") != std::string::npos);
        if (failures) std::fprintf(stderr, "%s: %s\nstreamed %s\n", choice, message.c_str(), streamed_arguments.c_str());
    }

    // The call and its result back in the chat: the prompt grows, the image stays in the cache.
    std::string message = s.last_message();
    std::size_t calls_at = message.find("\"tool_calls\":");
    std::size_t calls_end = message.rfind(']');
    mm::Message call{"assistant", ""};
    call.tool_calls = message.substr(calls_at + 13, calls_end + 1 - (calls_at + 13));
    mm::Message result{"tool", R"({"time": "12:00"})"};
    result.tool_call_id = json_string_after(message, "id");
    result.name = "get_time";
    chat.push_back(call);
    chat.push_back(result);
    chat.push_back({"user", "And in CET?"});
    mm::AskOptions o;
    o.max_tokens = 4;
    o.tools = weather_tools;
    std::string prompt = s.apply_template(chat, o);
    EXPECT(prompt.find(result.tool_call_id) != std::string::npos && prompt.find("12:00") != std::string::npos);
    s.chat(chat, o);
    EXPECT(s.last_ask().positions_reused > 0 && s.last_ask().media_encoded == 0);

    // An exception from on_tool_call is rethrown after the call.
    mm::AskOptions t;
    t.max_tokens = 256;
    t.tools = weather_tools;
    t.tool_choice = "required";
    t.on_tool_call = [](const mm::ToolCallDelta &) -> bool { throw Boom(); };
    bool caught = false;
    try {
        s.chat({{"user", "Hello?"}}, t);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught);

    // Bad tools, a choice that is no tool, an unknown call id: mm::Error, MM_ERR_INVALID_ARGUMENT.
    auto refused = [&](const std::vector<mm::Message> &msgs, const char *tools, const char *choice, const char *why) {
        mm::AskOptions b;
        b.max_tokens = 4;
        if (tools) b.tools = tools;
        if (choice) b.tool_choice = choice;
        try {
            s.chat(msgs, b);
            EXPECT(false);
        } catch (const mm::Error &e) {
            EXPECT(e.status() == MM_ERR_INVALID_ARGUMENT);
            EXPECT(std::string(e.what()).find(why) != std::string::npos);
            if (std::string(e.what()).find(why) == std::string::npos) std::fprintf(stderr, "%s\n", e.what());
        }
    };
    refused({{"user", "Hello?"}}, "get_weather", "required", "tools is not a JSON array");
    refused({{"user", "Hello?"}}, R"([{"type": "retrieval"}])", nullptr, "Unsupported tool type");
    refused({{"user", "Hello?"}}, weather_tools, "get_news", "not among the tools");
    chat[chat.size() - 2].tool_call_id = "call_nobodymadethis";
    refused(chat, weather_tools, nullptr, "call_nobodymadethis");
    try {
        mm::AskOptions r;
        r.reasoning = static_cast<mm_reasoning>(7);
        s.apply_template({{"user", "Hello?"}}, r);
        EXPECT(false);
    } catch (const mm::Error &e) {
        EXPECT(e.status() == MM_ERR_INVALID_ARGUMENT);
    }
}

static void moves_leave_an_empty_session() {
    mm::Session a = mm::Session::create(params());
    EXPECT(a && mm::live_sessions() == 1);
    mm::Session b = std::move(a);
    EXPECT(!a && b);
    EXPECT(mm::live_sessions() == 1);
    try {
        a.info();
        EXPECT(false);
    } catch (const mm::Error &e) {
        EXPECT(e.status() == MM_ERR_NULL_ARGUMENT);
    }
    mm::Session c;
    c = std::move(b);
    EXPECT(c && !b && mm::live_sessions() == 1);
    {
        mm::Session fork = c.fork();
        EXPECT(mm::live_sessions() == 2 && mm::loaded_models() == 1);
        EXPECT(fork.memory().shared_by == 2);
    }
    EXPECT(mm::live_sessions() == 1);
}  // a and b are empty: destroying them is a no-op; c is destroyed once.

/* n_parallel = 4: a session and 3 forks share one context; asked at once from 4 threads, every
   answer completes. Each request waits at its first piece until all four have one, so that
   their next tokens are queued together and evaluated in shared steps. */
static void four_sessions_asked_at_once_decode_together() {
    mm::SessionParams p = params();
    p.n_ctx = 512;
    p.n_parallel = 4;
    mm::Session parent = mm::Session::create(p);
    EXPECT(parent.info().n_parallel == 4 && parent.info().n_batch > 0);
    std::vector<mm::Session> sessions;
    sessions.push_back(std::move(parent));
    for (int i = 0; i < 3; i++) sessions.push_back(sessions[0].fork());
    EXPECT(mm::live_sessions() == 4 && mm::loaded_models() == 1);
    EXPECT(sessions[3].info().n_parallel == 4);
    EXPECT(sessions[3].memory().context_shared_by == 4);
    try {
        mm::ForkParams other;
        other.n_ctx = 1024;
        sessions[0].fork(other);
        EXPECT(false);
    } catch (const mm::Error &e) {
        EXPECT(e.status() == MM_ERR_INVALID_ARGUMENT);
    }
    std::mutex m;
    std::condition_variable cv;
    int arrived = 0;
    auto meet = [&] {
        std::unique_lock<std::mutex> lock(m);
        if (++arrived == 4) cv.notify_all();
        cv.wait_for(lock, std::chrono::seconds(60), [&] { return arrived >= 4; });
    };
    std::vector<std::string> answers(4);
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; i++) {
        threads.emplace_back([&, i] {
            mm::AskOptions o;
            o.max_tokens = 12;
            o.temperature = 0.0f;
            o.stop = {};
            bool met = false;
            try {
                answers[i] = sessions[i].ask("Session " + std::to_string(i) + " says" + std::string(i + 1, '!'), {}, o,
                                             [&](std::string_view) {
                                                 if (!met) {
                                                     met = true;
                                                     meet();
                                                 }
                                                 return true;
                                             });
            } catch (const mm::Error &e) {
                errors[i] = e.what();
            }
        });
    }
    for (std::thread &t : threads) t.join();
    std::uint32_t together = 0;
    for (int i = 0; i < 4; i++) {
        EXPECT(errors[i].empty());
        if (!errors[i].empty()) std::fprintf(stderr, "session %d: %s\n", i, errors[i].c_str());
        mm_ask_info info = sessions[i].last_ask();
        EXPECT(info.tokens_generated > 0);
        EXPECT(info.stop_reason == MM_STOP_MAX_TOKENS || info.stop_reason == MM_STOP_EOG);
        EXPECT(info.slot_wait_ms == 0.0);
        together = std::max(together, info.most_together);
    }
    EXPECT(together > 1);
    sessions.clear();
    EXPECT(mm::live_sessions() == 0 && mm::loaded_models() == 0);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s MODEL MMPROJ IMAGE\n", argv[0]);
        return 2;
    }
    model = argv[1];
    mmproj = argv[2];
    image = argv[3];
    mm_log_set(MM_LOG_OFF, nullptr, nullptr);
    EXPECT(mm::library_matches_header());
    create_failure_is_an_exception();
    speed_options_reach_the_library();
    streaming_adds_up_to_the_answer();
    an_exception_from_the_callable_is_rethrown();
    cancel_from_another_thread();
    request_options_reach_the_library();
    tool_calls_come_apart_from_the_text();
    moves_leave_an_empty_session();
    four_sessions_asked_at_once_decode_together();
    EXPECT(mm::live_sessions() == 0 && mm::loaded_models() == 0);
    std::printf("C++ tests: %s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
