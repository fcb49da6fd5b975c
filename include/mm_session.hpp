// mm_session.hpp: a header-only C++17 wrapper over the C API of mm-session (mm_session.h).
//
// mm::Session owns one session: move-only, and its destructor is the one mm_session_destroy.
// Failures throw mm::Error (the status and mm_last_error()'s message). Callables given to ask
// and chat may throw: the exception is caught at the C boundary, generation stops, and it is
// rethrown to the caller after the C call returns, never through C frames.
//
// Tool calls are JSON text in and out (the header needs no JSON library): AskOptions::tools
// is OpenAI's tools array, Message::tool_calls an earlier answer's calls, and last_message()
// the answer as OpenAI's assistant message.
//
// Thread safety: a Session may be used from several threads (calls on one session are
// serialized by the library); cancel() may be called from any thread at any time.
#ifndef MM_SESSION_HPP
#define MM_SESSION_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mm_session.h"

namespace mm {

/// A failed call: the library's status and its message for this thread.
class Error : public std::runtime_error {
  public:
    Error(mm_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    /// The mm_status of the failure.
    mm_status status() const noexcept { return status_; }
    /// The status's short static description.
    const char *status_name() const noexcept { return mm_status_str(status_); }

  private:
    mm_status status_;
};

namespace detail {
/// Throws Error unless `status` is MM_OK.
inline void check(mm_status status) {
    if (status != MM_OK) throw Error(status, mm_last_error());
}

/// A string the library returned, freed with mm_string_free.
struct owned_text {
    char *text = nullptr;
    ~owned_text() { mm_string_free(text); }
    std::string take() const { return text ? std::string(text) : std::string(); }
};
}  // namespace detail

/// A view of bytes (C++17 has no std::span): a pointer and a length, borrowed.
struct bytes_view {
    const std::uint8_t *data = nullptr;
    std::size_t size = 0;
    bytes_view() = default;
    bytes_view(const std::uint8_t *d, std::size_t n) : data(d), size(n) {}
    template <class Container, class = decltype(std::declval<const Container &>().data())>
    bytes_view(const Container &c) : data(reinterpret_cast<const std::uint8_t *>(c.data())), size(c.size() * sizeof(*c.data())) {}
};

/// One image or audio clip of a request. Files keep their path; bytes, pixels and samples are
/// borrowed and must stay alive until the call that uses them returns.
class Media {
  public:
    /// An image or audio file (PNG, JPEG, GIF, BMP, PNM, WebP; WAV, FLAC, MP3).
    static Media file(std::string path) {
        Media m(MM_MEDIA_FILE);
        m.path_ = std::move(path);
        return m;
    }
    /// The bytes of such a file.
    static Media bytes(bytes_view data) {
        Media m(MM_MEDIA_ENCODED);
        m.set(data);
        return m;
    }
    /// Raw pixels, 3 bytes (R, G, B) each, row after row.
    static Media rgb(std::uint32_t width, std::uint32_t height, bytes_view pixels) {
        Media m(MM_MEDIA_RGB);
        m.media_.width = width;
        m.media_.height = height;
        m.set(pixels);
        return m;
    }
    /// Mono f32 samples at the projector's sample rate (Session::info().audio_sample_rate).
    static Media pcm(const float *samples, std::size_t count) {
        Media m(MM_MEDIA_PCM_F32);
        m.set(bytes_view(reinterpret_cast<const std::uint8_t *>(samples), count * sizeof(float)));
        return m;
    }
    static Media pcm(const std::vector<float> &samples) { return pcm(samples.data(), samples.size()); }

    /// The C item (its path points into this object).
    mm_media raw() const {
        mm_media m = media_;
        if (media_.kind == MM_MEDIA_FILE) m.path = path_.c_str();
        return m;
    }

  private:
    explicit Media(mm_media_kind kind) : media_{} { media_.kind = kind; }
    void set(bytes_view data) {
        media_.data = data.data;
        media_.size = data.size;
    }
    mm_media media_;
    std::string path_;
};

/// One chat message. The tool call fields (empty: none) are those of mm_message_ext.
struct Message {
    /// "system", "user", "assistant", "tool" (or another role the chat template knows).
    std::string role;
    std::string text;
    std::vector<Media> media = {};
    /// An assistant message's tool calls: OpenAI's tool_calls array as JSON text, such as an
    /// earlier answer's (the "tool_calls" of Session::last_message()).
    std::string tool_calls = {};
    /// A "tool" message's call id: this message is the result of the earlier call with it.
    std::string tool_call_id = {};
    /// A "tool" message's function name (some templates print it).
    std::string name = {};
    /// An assistant message's reasoning (an earlier answer's "reasoning_content").
    std::string reasoning_content = {};
};

/// One change of one tool call of an answer being generated (mm_tool_call_delta): the call's
/// index among the answer's calls, its id and name when it first appears (empty after), and a
/// piece of its arguments (JSON text; empty when none is new). The pieces of one call, joined
/// in order, are its arguments. The views are valid only during the callback.
struct ToolCallDelta {
    std::size_t index;
    std::string_view id;
    std::string_view name;
    std::string_view arguments;
};

/// Receives the answer's reasoning piece by piece; return false to stop.
using ReasoningCallback = std::function<bool(std::string_view)>;

/// Receives the answer's tool calls as they are generated; return false to stop.
using ToolCallCallback = std::function<bool(const ToolCallDelta &)>;

/// How to answer one request; the defaults are the library's.
struct AskOptions {
    int max_tokens = 256;
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    /// MM_SEED_DEFAULT: the session's seed.
    std::uint32_t seed = MM_SEED_DEFAULT;
    std::vector<std::string> stop;
    /// A GBNF grammar (start rule root) the answer must follow.
    std::optional<std::string> grammar;
    mm_overflow overflow = MM_OVERFLOW_FAIL;
    /// Tokenize a raw prompt as plain text (control-token text stays text).
    bool plain_prompt = false;
    /// Penalties over the last `penalty_last_n` tokens (1 / 0: off; -1: the whole context).
    float repeat_penalty = 1.0f;
    std::int32_t penalty_last_n = 64;
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    /// Locally typical sampling (1: off).
    float typical_p = 1.0f;
    /// DRY repetition penalty (multiplier 0: off).
    float dry_multiplier = 0.0f;
    float dry_base = 1.75f;
    std::int32_t dry_allowed_length = 2;
    std::int32_t dry_penalty_last_n = -1;
    /// Biases added to tokens' logits (token ids from Session::tokenize).
    std::vector<mm_logit_bias> logit_bias;
    /// A JSON Schema the answer must validate against (excludes `grammar`).
    std::optional<std::string> json_schema;
    /// Alternatives reported with each token to `on_token` (0: none).
    std::int32_t n_probs = 0;
    /// Functions the model may call (chats only): OpenAI's tools array as JSON text. The
    /// answer's calls come apart from its text: Session::last_message(), `on_tool_call`,
    /// mm_ask_info.tool_calls and MM_STOP_TOOL_CALLS.
    std::optional<std::string> tools;
    /// "auto" (or none: the model decides), "none", "required" (one or more calls, held to the
    /// tools' schemas by a grammar), or the name of one of the tools.
    std::optional<std::string> tool_choice;
    /// Whether one answer may make several tool calls.
    bool parallel_tool_calls = false;
    /// What becomes of a model's reasoning (its <think> block and the like).
    mm_reasoning reasoning = MM_REASONING_SEPARATE;
    /// Receives the reasoning as it is generated (MM_REASONING_SEPARATE). May throw: the
    /// exception stops the call and is rethrown after it, as from `on_text`.
    ReasoningCallback on_reasoning;
    /// Receives the tool calls as they are generated. May throw, as `on_reasoning`.
    ToolCallCallback on_tool_call;
};

/// One generated token with its log-probability, as `on_token` receives it.
struct TokenLogprob {
    std::int32_t token;
    float logprob;
    /// The token's bytes (possibly part of a UTF-8 character).
    std::string_view text;
};

/// Receives each generated token and the `n_probs` likeliest alternatives at its place.
using TokenCallback = std::function<void(const TokenLogprob &chosen, const std::vector<TokenLogprob> &top)>;

/// Receives the answer piece by piece (whole UTF-8 characters); return false to stop.
using TextCallback = std::function<bool(std::string_view)>;

/// What mm_session_create loads, and how.
struct SessionParams {
    std::string model;
    /// Empty: a text-only session.
    std::string mmproj;
    std::uint32_t n_ctx = 4096;
    std::uint32_t n_batch = 512;
    /// 0: half the hardware threads (1 to 8).
    std::int32_t n_threads = 0;
    /// -1: all layers on the GPU (when the build has one).
    std::int32_t n_gpu_layers = -1;
    /// 0xFFFFFFFF: random.
    std::uint32_t seed = 0xFFFFFFFFu;
    bool mmproj_use_gpu = true;
    bool use_mmap = true;
    /// Empty: the projector's (or mtmd's) default marker.
    std::string media_marker;
    /// Empty: the model's own chat template.
    std::string chat_template;
    /// Load progress in [0, 1]; return false to cancel (create then throws MM_ERR_CANCELLED).
    std::function<bool(float)> on_progress;
    /// RPC servers that take layers ("host:port,host:port"); empty: none.
    std::string rpc_servers;
    /// Each device's share of the layers (servers first), empty: llama.cpp's split.
    std::vector<float> tensor_split;
    /// Flash attention in the context and the projector's encoder.
    mm_flash_attn flash_attn = MM_FLASH_ATTN_AUTO;
    /// KV cache element types; a quantized V cache needs flash attention.
    mm_kv_type kv_type_k = MM_KV_F16;
    mm_kv_type kv_type_v = MM_KV_F16;
    /// Tokens computed in one graph step; 0: n_batch.
    std::uint32_t n_ubatch = 0;
    /// Lock the model's memory in RAM.
    bool use_mlock = false;
    /// Sessions that decode together: this one and its forks share one context with
    /// `n_parallel` slots, and requests running at the same time on different threads are
    /// evaluated in shared steps (see mm_session_params.n_parallel). 1: each fork has a context
    /// of its own. At most MM_MAX_PARALLEL.
    std::uint32_t n_parallel = 1;
};

/// A fork's own settings (see mm_fork_params). A fork of a session created with n_parallel > 1
/// joins its context: n_ctx, n_batch and n_threads must stay 0 or the parent's.
struct ForkParams {
    std::uint32_t n_ctx = 0;
    std::uint32_t n_batch = 0;
    std::int32_t n_threads = 0;
    std::uint32_t seed = MM_SEED_DEFAULT;
    bool copy_conversation = false;
};

/// A loaded multimodal model (text model, context, projector) behind one handle.
class Session {
  public:
    /// Loads the model and projector; throws Error (the file and the cause) on failure.
    static Session create(const SessionParams &params) {
        mm_session_params p = mm_session_params_default();
        p.model_path = params.model.c_str();
        p.mmproj_path = params.mmproj.empty() ? nullptr : params.mmproj.c_str();
        p.n_ctx = params.n_ctx;
        p.n_batch = params.n_batch;
        p.n_threads = params.n_threads;
        p.n_gpu_layers = params.n_gpu_layers;
        p.seed = params.seed;
        p.mmproj_use_gpu = params.mmproj_use_gpu;
        p.use_mmap = params.use_mmap;
        p.media_marker = params.media_marker.empty() ? nullptr : params.media_marker.c_str();
        p.chat_template = params.chat_template.empty() ? nullptr : params.chat_template.c_str();
        p.rpc_servers = params.rpc_servers.empty() ? nullptr : params.rpc_servers.c_str();
        p.tensor_split = params.tensor_split.empty() ? nullptr : params.tensor_split.data();
        p.n_tensor_split = params.tensor_split.size();
        p.flash_attn = params.flash_attn;
        p.kv_type_k = params.kv_type_k;
        p.kv_type_v = params.kv_type_v;
        p.n_ubatch = params.n_ubatch;
        p.use_mlock = params.use_mlock;
        p.n_parallel = params.n_parallel;
        Relay<std::function<bool(float)>> relay{&params.on_progress, nullptr};
        if (params.on_progress) {
            p.progress_callback = &progress_trampoline;
            p.progress_user_data = &relay;
        }
        mm_session *s = nullptr;
        mm_status status = mm_session_create(&p, &s);
        relay.rethrow();
        detail::check(status);
        return Session(s);
    }

    /// An empty session (as after a move): every call on it throws MM_ERR_NULL_ARGUMENT.
    Session() noexcept = default;
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    Session(Session &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    Session &operator=(Session &&other) noexcept {
        if (this != &other) {
            reset_handle();
            s_ = std::exchange(other.s_, nullptr);
        }
        return *this;
    }
    /// The one destroy: projector, context and model (or the context alone while forks share
    /// the weights).
    ~Session() { reset_handle(); }

    /// Whether this object holds a session.
    explicit operator bool() const noexcept { return s_ != nullptr; }
    /// The C handle, still owned by this object.
    mm_session *get() const noexcept { return s_; }

    /// Asks one question about `media` (at the prompt's markers, or before its text) and
    /// returns the whole answer; `on_text` receives it as it is generated, `on_token` each
    /// token with its log-probability.
    std::string ask(const std::string &prompt, const std::vector<Media> &media = {}, const AskOptions &options = {}, const TextCallback &on_text = {},
                    const TokenCallback &on_token = {}) {
        std::vector<mm_media> items = raw_items(media);
        Request r(options);
        r.params.prompt = prompt.c_str();
        r.params.media = items.empty() ? nullptr : items.data();
        r.params.n_media = items.size();
        return run(r, on_text, on_token);
    }

    /// Asks with chat messages, rendered with the session's chat template, and returns the
    /// answer's text (with `options.tools`, its tool calls are in last_message()).
    std::string chat(const std::vector<Message> &messages, const AskOptions &options = {}, const TextCallback &on_text = {},
                     const TokenCallback &on_token = {}) {
        Chat c(messages);
        Request r(options);
        c.set(r.params);
        return run(r, on_text, on_token);
    }

    /// The last finished answer as OpenAI's assistant message, JSON text:
    /// {"role": "assistant", "content": text or null, "reasoning_content"?: ...,
    /// "tool_calls"?: [{"id", "type": "function", "function": {"name", "arguments"}}]}.
    std::string last_message() const {
        detail::owned_text text;
        detail::check(mm_session_last_message(s_, &text.text));
        return text.take();
    }

    /// The prompt text a chat renders to with the session's chat template (with the tools,
    /// tool choice and reasoning of `options`), the marker where each media item goes; nothing
    /// is evaluated.
    std::string apply_template(const std::vector<Message> &messages, const AskOptions &options = {}) const {
        Chat c(messages);
        Request r(options);
        c.set(r.params);
        detail::owned_text text;
        detail::check(mm_session_apply_template(s_, &r.params, &text.text));
        return text.take();
    }

    /// The token ids of `text` (no BOS); with `parse_special`, control-token text becomes
    /// those tokens.
    std::vector<std::int32_t> tokenize(const std::string &text, bool parse_special = false) const {
        std::size_t n = 0;
        detail::check(mm_session_tokenize(s_, text.c_str(), parse_special, nullptr, 0, &n));
        std::vector<std::int32_t> tokens(n);
        if (n > 0) detail::check(mm_session_tokenize(s_, text.c_str(), parse_special, tokens.data(), tokens.size(), &n));
        return tokens;
    }

    /// The positions a prompt would take, without evaluating it.
    std::uint32_t count_tokens(const std::string &prompt, const std::vector<Media> &media = {}) const {
        std::vector<mm_media> items = raw_items(media);
        mm_ask_params a = mm_ask_params_default();
        a.prompt = prompt.c_str();
        a.media = items.empty() ? nullptr : items.data();
        a.n_media = items.size();
        std::uint32_t n = 0;
        detail::check(mm_session_count_tokens(s_, &a, &n));
        return n;
    }

    /// Stops the call running on this session, from any thread; it throws MM_ERR_CANCELLED.
    void cancel() const noexcept { mm_session_cancel(s_); }
    /// Empties the conversation.
    void reset() { detail::check(mm_session_reset(s_)); }

    mm_memory_stats memory() const {
        mm_memory_stats m{};
        m.struct_size = sizeof m;
        detail::check(mm_session_memory(s_, &m));
        return m;
    }
    mm_session_info info() const {
        mm_session_info i{};
        i.struct_size = sizeof i;
        detail::check(mm_session_get_info(s_, &i));
        return i;
    }
    mm_ask_info last_ask() const {
        mm_ask_info i{};
        i.struct_size = sizeof i;
        detail::check(mm_session_last_ask(s_, &i));
        return i;
    }
    void save_state(const std::string &path) const { detail::check(mm_session_save_state(s_, path.c_str())); }
    void load_state(const std::string &path) { detail::check(mm_session_load_state(s_, path.c_str())); }

    /// A new session over the same weights with a context of its own (see mm_session_fork).
    Session fork(const ForkParams &params = {}) const {
        mm_fork_params p = mm_fork_params_default();
        p.n_ctx = params.n_ctx;
        p.n_batch = params.n_batch;
        p.n_threads = params.n_threads;
        p.seed = params.seed;
        p.copy_conversation = params.copy_conversation;
        mm_session *out = nullptr;
        detail::check(mm_session_fork(s_, &p, &out));
        return Session(out);
    }

  private:
    explicit Session(mm_session *s) noexcept : s_(s) {}

    void reset_handle() noexcept {
        if (s_) mm_session_destroy(std::exchange(s_, nullptr));
    }

    static std::vector<mm_media> raw_items(const std::vector<Media> &media) {
        std::vector<mm_media> items;
        items.reserve(media.size());
        for (const Media &m : media) items.push_back(m.raw());
        return items;
    }

    /// A C++ callable behind a C callback: its exception is kept here, not thrown through C.
    template <class F>
    struct Relay {
        const F *callable;
        std::exception_ptr error;
        void rethrow() const {
            if (error) std::rethrow_exception(error);
        }
    };

    static bool progress_trampoline(void *user_data, float progress) noexcept {
        auto *relay = static_cast<Relay<std::function<bool(float)>> *>(user_data);
        try {
            return (*relay->callable)(progress);
        } catch (...) {
            relay->error = std::current_exception();
            return false;
        }
    }

    /// The callables of one request and the first exception one of them threw.
    struct Callbacks {
        const TextCallback *on_text;
        const TokenCallback *on_token;
        const ReasoningCallback *on_reasoning;
        const ToolCallCallback *on_tool_call;
        std::exception_ptr error;
        void rethrow() const {
            if (error) std::rethrow_exception(error);
        }
    };

    static bool text_trampoline(void *user_data, const char *text, std::size_t len) noexcept {
        auto *c = static_cast<Callbacks *>(user_data);
        if (c->error || !*c->on_text) return !c->error;
        try {
            return (*c->on_text)(std::string_view(text, len));
        } catch (...) {
            c->error = std::current_exception();
            return false;
        }
    }

    static bool reasoning_trampoline(void *user_data, const char *text, std::size_t len) noexcept {
        auto *c = static_cast<Callbacks *>(user_data);
        if (c->error) return false;
        try {
            return (*c->on_reasoning)(std::string_view(text, len));
        } catch (...) {
            c->error = std::current_exception();
            return false;
        }
    }

    static bool tool_call_trampoline(void *user_data, const mm_tool_call_delta *delta) noexcept {
        auto *c = static_cast<Callbacks *>(user_data);
        if (c->error) return false;
        try {
            return (*c->on_tool_call)(ToolCallDelta{delta->index, delta->id, delta->name, delta->arguments});
        } catch (...) {
            c->error = std::current_exception();
            return false;
        }
    }

    static void token_trampoline(void *user_data, const mm_token_logprob *chosen, const mm_token_logprob *top, std::size_t n_top) noexcept {
        auto *c = static_cast<Callbacks *>(user_data);
        if (c->error) return;
        auto view = [](const mm_token_logprob &t) { return TokenLogprob{t.token, t.logprob, std::string_view(t.text, t.len)}; };
        try {
            std::vector<TokenLogprob> alternatives;
            alternatives.reserve(n_top);
            for (std::size_t i = 0; i < n_top; i++) alternatives.push_back(view(top[i]));
            (*c->on_token)(view(*chosen), alternatives);
        } catch (...) {
            c->error = std::current_exception();
        }
    }

    /// The C params of a request and the strings they point into.
    struct Request {
        mm_ask_params params = mm_ask_params_default();
        std::vector<const char *> stops;
        const AskOptions *options;
        explicit Request(const AskOptions &o) : options(&o) {
            params.max_tokens = o.max_tokens;
            params.temperature = o.temperature;
            params.top_k = o.top_k;
            params.top_p = o.top_p;
            params.min_p = o.min_p;
            params.seed = o.seed;
            for (const std::string &s : o.stop) stops.push_back(s.c_str());
            params.stop = stops.empty() ? nullptr : stops.data();
            params.n_stop = stops.size();
            params.grammar = o.grammar ? o.grammar->c_str() : nullptr;
            params.overflow = o.overflow;
            params.plain_prompt = o.plain_prompt;
            params.repeat_penalty = o.repeat_penalty;
            params.penalty_last_n = o.penalty_last_n;
            params.frequency_penalty = o.frequency_penalty;
            params.presence_penalty = o.presence_penalty;
            params.typical_p = o.typical_p;
            params.dry_multiplier = o.dry_multiplier;
            params.dry_base = o.dry_base;
            params.dry_allowed_length = o.dry_allowed_length;
            params.dry_penalty_last_n = o.dry_penalty_last_n;
            params.logit_bias = o.logit_bias.empty() ? nullptr : o.logit_bias.data();
            params.n_logit_bias = o.logit_bias.size();
            params.json_schema = o.json_schema ? o.json_schema->c_str() : nullptr;
            params.n_probs = o.n_probs;
            params.tools = o.tools ? o.tools->c_str() : nullptr;
            params.tool_choice = o.tool_choice ? o.tool_choice->c_str() : nullptr;
            params.parallel_tool_calls = o.parallel_tool_calls;
            params.reasoning = o.reasoning;
        }
    };

    /// The C messages of a chat, their media and tool call fields (pointing into `messages`).
    struct Chat {
        std::vector<std::vector<mm_media>> items;
        std::vector<mm_message> msgs;
        std::vector<mm_message_ext> ext;
        explicit Chat(const std::vector<Message> &messages) {
            auto opt = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
            bool any_ext = false;
            items.reserve(messages.size());
            for (const Message &m : messages) {
                items.push_back(raw_items(m.media));
                mm_message c{};
                c.role = m.role.c_str();
                c.text = m.text.c_str();
                c.media = items.back().empty() ? nullptr : items.back().data();
                c.n_media = items.back().size();
                msgs.push_back(c);
                mm_message_ext e{};
                e.tool_calls = opt(m.tool_calls);
                e.tool_call_id = opt(m.tool_call_id);
                e.name = opt(m.name);
                e.reasoning_content = opt(m.reasoning_content);
                any_ext = any_ext || e.tool_calls || e.tool_call_id || e.name || e.reasoning_content;
                ext.push_back(e);
            }
            if (!any_ext) ext.clear();
        }
        void set(mm_ask_params &p) const {
            p.messages = msgs.data();
            p.n_messages = msgs.size();
            p.message_ext = ext.empty() ? nullptr : ext.data();
        }
    };

    std::string run(Request &r, const TextCallback &on_text, const TokenCallback &on_token) {
        const AskOptions &o = *r.options;
        Callbacks callbacks{&on_text, &on_token, &o.on_reasoning, &o.on_tool_call, nullptr};
        if (on_text || on_token || o.on_reasoning || o.on_tool_call) r.params.user_data = &callbacks;
        if (on_text || on_token) r.params.on_text = &text_trampoline;
        if (on_token) r.params.on_token = &token_trampoline;
        if (o.on_reasoning) r.params.on_reasoning = &reasoning_trampoline;
        if (o.on_tool_call) r.params.on_tool_call = &tool_call_trampoline;
        detail::owned_text text;
        mm_status status = mm_session_ask(s_, &r.params, &text.text);
        callbacks.rethrow();
        detail::check(status);
        return text.take();
    }

    mm_session *s_ = nullptr;
};

/// Sessions that exist now in this process, and models loaded.
inline std::size_t live_sessions() noexcept { return mm_live_sessions(); }

/// What the library was built for: its version, target CPU and each backend's features.
inline std::string_view build_info() noexcept { return mm_build_info(); }
inline std::size_t loaded_models() noexcept { return mm_loaded_models(); }

/// Whether the library loaded at run time is compatible with this header.
inline bool library_matches_header() noexcept {
    const std::uint32_t lib = mm_version_number();
    return lib / 10000 == MM_VERSION_MAJOR && (MM_VERSION_MAJOR > 0 || lib / 100 % 100 == MM_VERSION_MINOR) && lib >= MM_VERSION_NUMBER;
}

}  // namespace mm

#endif  // MM_SESSION_HPP
