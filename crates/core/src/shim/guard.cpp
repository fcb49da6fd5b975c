// Exception barriers: each function calls one llama.cpp, mtmd or llama.cpp `common` function
// that may throw a C++ exception (many of them have no try/catch of their own), and turns an
// exception into an error return plus a message. A C++ exception must never unwind into Rust:
// that aborts.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include "json-schema-to-grammar.h"

#ifdef MM_RPC
#include "ggml-rpc.h"
// The relay in src/rpc.rs knows each command of this protocol version by number, with the size
// of its reply: a new version must be checked against ggml-rpc.cpp and the table updated.
static_assert(RPC_PROTO_MAJOR_VERSION == 7 && RPC_PROTO_MINOR_VERSION == 0, "ggml-rpc's protocol changed: update the relay's command table in src/rpc.rs");
#endif

static thread_local std::string g_what;

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

int32_t mm_guard_token_to_piece(const llama_vocab * vocab, llama_token token, char * buf, int32_t len, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return llama_token_to_piece(vocab, token, buf, len, 0, false); });
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
                            int32_t n_batch, bool logits_last, llama_pos * new_n_past, int32_t on_error) noexcept {
    return guarded(on_error, [&] { return mtmd_helper_eval_chunk_single(ctx, lctx, chunk, n_past, 0, n_batch, logits_last, new_n_past); });
}

llama_sampler * mm_guard_sampler_init_grammar(const llama_vocab * vocab, const char * grammar) noexcept {
    return guarded<llama_sampler *>(nullptr, [&] { return llama_sampler_init_grammar(vocab, grammar, "root"); });
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

size_t mm_guard_state_get(llama_context * ctx, uint8_t * dst, size_t size) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_get_data(ctx, dst, size, 0); });
}

size_t mm_guard_state_size(llama_context * ctx) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_get_size(ctx, 0); });
}

size_t mm_guard_state_set(llama_context * ctx, const uint8_t * src, size_t size) noexcept {
    return guarded<size_t>(0, [&] { return llama_state_seq_set_data(ctx, src, size, 0); });
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
