// Exception barriers: each function calls one llama.cpp, mtmd or llama.cpp `common` function
// that may throw a C++ exception (many of them have no try/catch of their own), and turns an
// exception into an error return plus a message. A C++ exception must never unwind into Rust:
// that aborts.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include "json-schema-to-grammar.h"
// llama.cpp's internal grammar API (its src/ folder): the parse stacks, for the ambiguity probe.
#include "llama-grammar.h"

#ifdef MM_RPC
#include "ggml-rpc.h"
// The relay in src/rpc.rs knows each command of this protocol version by number, with the size
// of its reply: a new version must be checked against ggml-rpc.cpp and the table updated.
static_assert(RPC_PROTO_MAJOR_VERSION == 7 && RPC_PROTO_MINOR_VERSION == 0, "ggml-rpc's protocol changed: update the relay's command table in src/rpc.rs");
#endif

static thread_local std::string g_what;

// The message of the last exception caught on this thread, for the barriers of chat.cpp.
std::string & mm_guard_what_ref() { return g_what; }

template <typename T, typename F>
static T guarded(T on_error, F && f) noexcept {
    try {
        return f();
    } catch (const std::exception & e) {
        try { g_what = e.what(); } catch (...) {}
    } catch (...) {
        try { g_what = "unknown C++ exception"; } catch (...) {}
    }
    return on_error;
}

extern "C" {

// The message of the last exception caught on this thread.
const char * mm_guard_what(void) noexcept { return g_what.c_str(); }

int32_t mm_guard_decode(llama_context * ctx, llama_batch batch, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return llama_decode(ctx, batch); });
}

int32_t mm_guard_tokenize(const llama_vocab * vocab, const char * text, int32_t len, llama_token * tokens, int32_t n_max,
                          bool add_special, bool parse_special, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return llama_tokenize(vocab, text, len, tokens, n_max, add_special, parse_special); });
}

int32_t mm_guard_token_to_piece(const llama_vocab * vocab, llama_token token, char * buf, int32_t len, bool special,
                                int32_t on_error) noexcept {
    return guarded(on_error, [&] { return llama_token_to_piece(vocab, token, buf, len, 0, special); });
}

int32_t mm_guard_chat_apply_template(const char * tmpl, const llama_chat_message * chat, size_t n, char * buf, int32_t len,
                                     int32_t on_error) noexcept {
    return guarded(on_error, [&] { return llama_chat_apply_template(tmpl, chat, n, true, buf, len); });
}

int32_t mm_guard_mtmd_tokenize_parts(mtmd_context * ctx, mtmd_input_chunks * out, const mtmd_input_part * const * parts,
                                     size_t n, bool add_special, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return mtmd_tokenize_from_parts(ctx, out, parts, n, add_special); });
}

int32_t mm_guard_eval_chunk(mtmd_context * ctx, llama_context * lctx, const mtmd_input_chunk * chunk, llama_pos n_past,
                            llama_seq_id seq, int32_t n_batch, bool logits_last, llama_pos * new_n_past, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return mtmd_helper_eval_chunk_single(ctx, lctx, chunk, n_past, seq, n_batch, logits_last, new_n_past); });
}

llama_sampler * mm_guard_sampler_init_grammar(const llama_vocab * vocab, const char * grammar) noexcept {
    return guarded<llama_sampler *>(nullptr, [&] { return llama_sampler_init_grammar(vocab, grammar, "root"); });
}

// A grammar that applies from the first trigger on (a pattern's match, or a token).
llama_sampler * mm_guard_sampler_init_grammar_lazy(const llama_vocab * vocab, const char * grammar, const char ** patterns,
                                                   size_t n_patterns, const llama_token * tokens, size_t n_tokens) noexcept {
    return guarded<llama_sampler *>(nullptr, [&] {
        return llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", patterns, n_patterns, tokens, n_tokens);
    });
}

// Whether `chr` is in the character set at `pos` (a char element and the alternatives and
// ranges after it), as llama-grammar.cpp's llama_grammar_match_char decides.
static bool mm_char_set_matches(const llama_grammar_element * pos, uint32_t chr) {
    const bool positive = pos->type == LLAMA_GRETYPE_CHAR || pos->type == LLAMA_GRETYPE_CHAR_ANY;
    bool found = false;
    do {
        if (pos->type == LLAMA_GRETYPE_CHAR_ANY) {
            found = true;
            pos += 1;
        } else if (pos[1].type == LLAMA_GRETYPE_CHAR_RNG_UPPER) {
            found = found || (pos->value <= chr && chr <= pos[1].value);
            pos += 2;
        } else {
            found = found || pos->value == chr;
            pos += 1;
        }
    } while (pos->type == LLAMA_GRETYPE_CHAR_ALT);
    return found == positive;
}

// The character the probe feeds next: the first that the first stack ending in a character set
// accepts, trying the set's own first character, then a few common ones; 0 when none does.
static uint32_t mm_probe_next_char(const llama_grammar_stacks & stacks) {
    static const uint32_t common[] = {'a', 'e', ' ', '0', '"', '{', '[', ',', ':', '-', '.', '\n', 'x', '}', ']'};
    for (const auto & stack : stacks) {
        if (stack.empty()) {
            continue;
        }
        const llama_grammar_element * top = stack.back();
        if (top->type != LLAMA_GRETYPE_CHAR && top->type != LLAMA_GRETYPE_CHAR_NOT && top->type != LLAMA_GRETYPE_CHAR_ANY) {
            continue;
        }
        if (top->type == LLAMA_GRETYPE_CHAR && top->value != 0 && mm_char_set_matches(top, top->value)) {
            return top->value;
        }
        for (uint32_t c : common) {
            if (mm_char_set_matches(top, c)) {
                return c;
            }
        }
    }
    return 0;
}

// Counts the steps llama.cpp's candidate check takes to read `text` from `stack`: it follows
// every stack each character leads to, one by one, without merging equal ones
// (llama_grammar_reject_candidates_for_stack), so an ambiguous grammar multiplies them with
// each character. Stops once `count` passes `limit`.
static void mm_count_steps(llama_grammar & g, const llama_grammar_stack & stack, const std::vector<uint32_t> & text, size_t k,
                           int64_t & count, int64_t limit) {
    if (++count > limit || k == text.size()) {
        return;
    }
    g.stacks = {stack};
    llama_grammar_accept(&g, text[k]);
    const llama_grammar_stacks next = std::move(g.stacks);
    for (const auto & s : next) {
        mm_count_steps(g, s, text, k + 1, count, limit);
        if (count > limit) {
            return;
        }
    }
}

// llama-grammar.cpp's parse_space (a static function there): spaces, tabs, comments, and line
// breaks where `newline_ok`.
static const char * mm_parse_space(const char * pos, bool newline_ok) {
    while (*pos == ' ' || *pos == '\t' || *pos == '#' || (newline_ok && (*pos == '\r' || *pos == '\n'))) {
        if (*pos == '#') {
            while (*pos && *pos != '\r' && *pos != '\n') {
                pos++;
            }
        } else {
            pos++;
        }
    }
    return pos;
}

// Parses a GBNF grammar with llama.cpp's own parser, as llama_grammar_parser::parse does, but
// without the fprintf(stderr) of the whole grammar that parse() makes on an error. 1 when it
// parses, 0 when not (the parser's message in mm_guard_what). A grammar this accepts parses in
// llama.cpp too: the same parser code reads it, with the same vocabulary for its tokens.
int32_t mm_guard_grammar_parse(const llama_vocab * vocab, const char * grammar) noexcept {
    return guarded<int32_t>(0, [&]() -> int32_t {
        llama_grammar_parser parser(vocab);
        const char * pos = mm_parse_space(grammar, true);
        while (*pos) {
            pos = parser.parse_rule(pos);
        }
        // The check that ends parse(): every rule referred to is defined.
        for (const auto & rule : parser.rules) {
            if (rule.empty()) {
                throw std::runtime_error("Undefined rule");
            }
            for (const auto & elem : rule) {
                if (elem.type == LLAMA_GRETYPE_RULE_REF &&
                    (elem.value >= parser.rules.size() || parser.rules[elem.value].empty())) {
                    for (const auto & kv : parser.symbol_ids) {
                        if (kv.second == elem.value) {
                            throw std::runtime_error("Undefined rule identifier '" + kv.first + "'");
                        }
                    }
                }
            }
        }
        return 1;
    });
}

// What checking one candidate token of `token_chars` characters against a grammar costs
// llama.cpp's sampler, in steps: the most over `positions` places in a text the grammar allows
// (after 0, token_chars, 2 * token_chars, ... characters), stopping once past `limit`. The text
// is made by feeding the grammar, at each step, a character its first stack allows; at each
// place the token (the next token_chars characters) is checked against every stack alive
// there, as the sampler does for every token of the vocabulary at every position. 0 when the
// grammar does not parse, -1 on an exception. Ambiguous grammars multiply the steps with each
// character of the token (`[a-z]{1,5}* {2,5}`, `(("a"+)+)+`) or the stacks alive with each
// character generated (`([a-z]{1,20}){1,20}`), and cost seconds to minutes a token with a real
// vocabulary.
int64_t mm_guard_grammar_steps(const llama_vocab * vocab, const char * grammar, int32_t token_chars, int32_t positions,
                               int64_t limit) noexcept {
    return guarded<int64_t>(-1, [&]() -> int64_t {
        std::unique_ptr<llama_grammar, decltype(&llama_grammar_free_impl)> g(
            llama_grammar_init_impl(vocab, grammar, "root", false, nullptr, 0, nullptr, 0), llama_grammar_free_impl);
        if (!g) {
            return 0;
        }
        std::vector<uint32_t> text;
        std::vector<llama_grammar_stacks> alive;  // the stacks alive at each place
        for (int32_t i = 0; i < token_chars * positions; i++) {
            if (i % token_chars == 0) {
                alive.push_back(g->stacks);
            }
            const uint32_t next = mm_probe_next_char(g->stacks);
            if (next == 0) {
                break;
            }
            text.push_back(next);
            llama_grammar_accept(g.get(), next);
        }
        int64_t most = 0;
        for (size_t place = 0; place < alive.size(); place++) {
            const size_t start = place * token_chars;
            const std::vector<uint32_t> token(text.begin() + std::min(start, text.size()),
                                              text.begin() + std::min(start + token_chars, text.size()));
            int64_t count = 0;
            for (const auto & stack : alive[place]) {
                mm_count_steps(*g, stack, token, 0, count, limit);
                if (count > limit) {
                    break;
                }
            }
            most = std::max(most, count);
            if (most > limit) {
                break;
            }
        }
        return most;
    });
}

// Applies the chain and records the token it selects; -1 on an exception or no selection, -2
// when every token was ruled out (a grammar at a dead end): accepting one then aborts in
// llama-grammar.cpp (GGML_ABORT when the pick is end-of-generation).
llama_token mm_guard_sample(llama_sampler * chain, llama_token_data_array * candidates) noexcept {
    return guarded<llama_token>(-1, [&] {
        llama_sampler_apply(chain, candidates);
        if (candidates->selected < 0 || (size_t) candidates->selected >= candidates->size) {
            return (llama_token) -1;
        }
        if (candidates->data[candidates->selected].logit == -INFINITY) {
            return (llama_token) -2;
        }
        const llama_token token = candidates->data[candidates->selected].id;
        llama_sampler_accept(chain, token);
        return token;
    });
}

// Feeds `n` tokens to a sampler's history (penalties, DRY) without sampling: 0, or on_error.
int32_t mm_guard_sampler_accept(llama_sampler * smpl, const llama_token * tokens, size_t n, int32_t on_error) noexcept {
    return guarded(on_error, [&] {
        for (size_t i = 0; i < n; i++) {
            llama_sampler_accept(smpl, tokens[i]);
        }
        return (int32_t) 0;
    });
}

// Converts a JSON Schema (text) to a GBNF grammar with llama.cpp's converter, which throws on
// text that is not JSON and on schemas outside what it can convert. Returns the grammar in
// malloc'd memory (free it with mm_guard_free), or NULL with the reason in mm_guard_what().
char * mm_guard_json_schema_to_grammar(const char * schema) noexcept {
    return guarded<char *>(nullptr, [&] {
        const std::string grammar = json_schema_to_grammar(common_json::parse(schema), /* force_gbnf */ true);
        char * out = static_cast<char *>(std::malloc(grammar.size() + 1));
        if (!out) {
            throw std::bad_alloc();
        }
        std::memcpy(out, grammar.c_str(), grammar.size() + 1);
        return out;
    });
}

void mm_guard_free(char * p) noexcept { std::free(p); }

size_t mm_guard_state_get(llama_context * ctx, uint8_t * dst, size_t size, llama_seq_id seq) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_get_data(ctx, dst, size, seq); });
}

size_t mm_guard_state_size(llama_context * ctx, llama_seq_id seq) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_get_size(ctx, seq); });
}

size_t mm_guard_state_set(llama_context * ctx, const uint8_t * src, size_t size, llama_seq_id seq) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_set_data(ctx, src, size, seq); });
}

#ifdef MM_RPC
// ggml-rpc's functions, found the way llama.cpp's --rpc option finds them: the "RPC" backend
// of the registry and its proc addresses (NULL when llama.cpp was built without it).
static void * rpc_proc(const char * name) {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("RPC");
    return reg ? ggml_backend_reg_get_proc_address(reg, name) : nullptr;
}

// The backend of the RPC server at `endpoint` ("host:port"), with one device for each of the
// server's devices; NULL on failure. Not added to the global registry, so only the models that
// name its devices use them.
ggml_backend_reg_t mm_guard_rpc_add_server(const char * endpoint) noexcept {
    return guarded<ggml_backend_reg_t>(nullptr, [&] {
        auto add = (decltype(&ggml_backend_rpc_add_server)) rpc_proc("ggml_backend_rpc_add_server");
        return add ? add(endpoint) : nullptr;
    });
}

// Serves `devices` at `endpoint` until the process ends; returns -1 when it could not start
// (no RPC backend, or a port it cannot listen on: ggml-rpc has logged why), THREW (`on_error`)
// on an exception.
int32_t mm_guard_rpc_start_server(const char * endpoint, const char * cache_dir, size_t n_threads, size_t n_devices,
                                  ggml_backend_dev_t * devices, int32_t on_error) noexcept {
    return guarded(on_error, [&] {
        auto start = (decltype(&ggml_backend_rpc_start_server)) rpc_proc("ggml_backend_rpc_start_server");
        if (start) {
            start(endpoint, cache_dir, n_threads, n_devices, devices);
        }
        return (int32_t) -1;
    });
}
#endif

}
