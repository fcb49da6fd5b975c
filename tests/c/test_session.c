/* C tests of mm-session, built against include/mm_session.h and libmm_session.so only.
 * Usage: test_session MODEL MMPROJ IMAGE MISMATCHED_MMPROJ
 * Ends with the line "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mm_session.h"

static int passed, failed;
static const char *model, *mmproj, *image, *mismatched;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, " (last error: %s)\n", mm_last_error());       \
            return 0;                                                      \
        }                                                                  \
    } while (0)

static mm_session_params params(void) {
    mm_session_params p = mm_session_params_default();
    p.model_path = model;
    p.mmproj_path = mmproj;
    p.n_ctx = 1024;
    p.n_threads = 1;
    p.seed = 77;
    return p;
}

static mm_ask_params ask_params(const char *prompt, const mm_media *media, size_t n) {
    mm_ask_params a = mm_ask_params_default();
    a.prompt = prompt;
    a.media = media;
    a.n_media = n;
    a.max_tokens = 24;
    return a;
}

static mm_media file_media(const char *path) {
    mm_media m;
    memset(&m, 0, sizeof m);
    m.kind = MM_MEDIA_FILE;
    m.path = path;
    return m;
}

static int test_create_ask_destroy(void) {
    mm_session_params p = params();
    mm_session *s = NULL;
    CHECK(mm_session_create(&p, &s) == MM_OK && s != NULL, "create");
    CHECK(mm_live_sessions() == 1, "one live session");
    mm_media media[2] = {file_media(image), file_media(image)};
    mm_ask_params a = ask_params("What do you see?", media, 2);
    char *text = NULL;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask");
    CHECK(text != NULL, "text returned");
    mm_string_free(text);
    mm_ask_info info = {.struct_size = sizeof info};
    CHECK(mm_session_last_ask(s, &info) == MM_OK && info.media_encoded == 2, "2 images encoded");
    mm_memory_stats m = {.struct_size = sizeof m};
    CHECK(mm_session_memory(s, &m) == MM_OK && m.model_host + m.model_gpu > 0, "memory");
    CHECK(mm_session_destroy(s) == MM_OK, "destroy");
    CHECK(mm_live_sessions() == 0, "no live session");
    return 1;
}

static int expect_create_failure(mm_session_params *p, mm_status want, const char *names) {
    mm_session *s = (mm_session *)1;
    mm_status st = mm_session_create(p, &s);
    CHECK(st == want, "status %d (%s), wanted %d", st, mm_status_str(st), want);
    CHECK(s == NULL, "*out is NULL after a failure");
    CHECK(strstr(mm_last_error(), names) != NULL, "message names '%s'", names);
    CHECK(mm_live_sessions() == 0, "nothing left alive");
    return 1;
}

static int test_create_failures(void) {
    mm_session_params p = params();
    p.model_path = "/nonexistent/model.gguf";
    if (!expect_create_failure(&p, MM_ERR_FILE_NOT_FOUND, "/nonexistent/model.gguf")) return 0;
    p = params();
    p.model_path = "/tmp";
    if (!expect_create_failure(&p, MM_ERR_NOT_A_FILE, "directory")) return 0;
    p = params();
    p.mmproj_path = model;
    if (!expect_create_failure(&p, MM_ERR_WRONG_FILE_KIND, "not a projector")) return 0;
    p = params();
    p.mmproj_path = mismatched;
    if (!expect_create_failure(&p, MM_ERR_PROJECTOR_MISMATCH, mismatched)) return 0;
    CHECK(mm_session_create(NULL, NULL) == MM_ERR_NULL_ARGUMENT, "NULL args");
    return 1;
}

static int test_double_destroy_and_use_after_destroy(void) {
    mm_session_params p = params();
    mm_session *s = NULL;
    CHECK(mm_session_create(&p, &s) == MM_OK, "create");
    CHECK(mm_session_destroy(s) == MM_OK, "first destroy");
    CHECK(mm_session_destroy(s) == MM_ERR_INVALID_HANDLE, "second destroy");
    mm_ask_params a = ask_params("hello", NULL, 0);
    char *text = (char *)1;
    CHECK(mm_session_ask(s, &a, &text) == MM_ERR_INVALID_HANDLE, "ask after destroy");
    CHECK(text == NULL, "no text after a failure");
    mm_memory_stats m = {.struct_size = sizeof m};
    CHECK(mm_session_memory(s, &m) == MM_ERR_INVALID_HANDLE, "memory after destroy");
    CHECK(mm_session_destroy(NULL) == MM_OK, "destroy(NULL) is a no-op");
    CHECK(mm_live_sessions() == 0, "no live session");
    return 1;
}

struct stop_state {
    int calls;
    char first[256];
};

static bool stop_at_once(void *user_data, const char *text, size_t len) {
    struct stop_state *st = user_data;
    st->calls++;
    snprintf(st->first, sizeof st->first, "%.*s", (int)len, text);
    return false;
}

static int test_callback_stops(void) {
    mm_session_params p = params();
    mm_session *s = NULL;
    CHECK(mm_session_create(&p, &s) == MM_OK, "create");
    struct stop_state st = {0, ""};
    mm_ask_params a = ask_params("Tell me everything.", NULL, 0);
    a.max_tokens = 64;
    a.temperature = 0.0f;
    a.on_text = stop_at_once;
    a.user_data = &st;
    char *text = NULL;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask");
    CHECK(st.calls == 1, "callback called once, got %d", st.calls);
    CHECK(strcmp(text, st.first) == 0, "whole text equals what was streamed");
    mm_string_free(text);
    mm_ask_info info = {.struct_size = sizeof info};
    CHECK(mm_session_last_ask(s, &info) == MM_OK && info.stop_reason == MM_STOP_CALLBACK, "stop reason");
    mm_session_destroy(s);
    return 1;
}

static char *answer(mm_session *s, unsigned seed) {
    mm_media media[1] = {file_media(image)};
    mm_ask_params a = ask_params("Describe.", media, 1);
    a.seed = seed;
    a.max_tokens = 32;
    char *text = NULL;
    if (mm_session_ask(s, &a, &text) != MM_OK) return NULL;
    return text;
}

static int test_determinism(void) {
    mm_session_params p = params();
    mm_session *s1 = NULL, *s2 = NULL;
    CHECK(mm_session_create(&p, &s1) == MM_OK && mm_session_create(&p, &s2) == MM_OK, "create");
    char *a = answer(s1, 5), *b = answer(s2, 5), *c = answer(s1, 5);
    CHECK(a && b && c, "asks");
    CHECK(strcmp(a, b) == 0 && strcmp(a, c) == 0, "same seed, same text");
    mm_string_free(a);
    mm_string_free(b);
    mm_string_free(c);
    mm_session_destroy(s1);
    mm_session_destroy(s2);
    return 1;
}

struct token_log {
    int n;
    int32_t tokens[64];
    int chosen_is_top; /* every chosen token was the most likely one */
    int sorted;        /* every top list was most likely first, log-probabilities <= 0 */
};

static void log_token(void *user_data, const mm_token_logprob *chosen, const mm_token_logprob *top, size_t n_top) {
    struct token_log *log = user_data;
    if (log->n < 64) log->tokens[log->n] = chosen->token;
    log->n++;
    if (n_top == 0 || top[0].token != chosen->token || top[0].logprob != chosen->logprob) log->chosen_is_top = 0;
    for (size_t i = 0; i < n_top; i++) {
        if (top[i].logprob > 0.0f || (i > 0 && top[i].logprob > top[i - 1].logprob) || strlen(top[i].text) > top[i].len)
            log->sorted = 0;
    }
}

/* Penalties, logit bias and tokenizing, JSON Schema, token log-probabilities, usage. */
static int test_request_options(void) {
    mm_session_params p = params();
    mm_session *s = NULL;
    CHECK(mm_session_create(&p, &s) == MM_OK, "create");

    /* A logit bias built from mm_session_tokenize forces a token, even greedily. */
    int32_t q[4];
    size_t n = 0;
    CHECK(mm_session_tokenize(s, "Q", false, NULL, 0, &n) == MM_OK && n == 1, "count the tokens of Q: %zu", n);
    CHECK(mm_session_tokenize(s, "Q", false, q, 4, &n) == MM_OK && n == 1, "tokenize Q");
    mm_logit_bias force[1] = {{.token = q[0], .bias = 100.0f}};
    mm_ask_params a = ask_params("The answer is", NULL, 0);
    a.temperature = 0.0f;
    a.max_tokens = 4;
    a.logit_bias = force;
    a.n_logit_bias = 1;
    char *text = NULL;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK && strcmp(text, "QQQQ") == 0, "forced: %s", text ? text : "(null)");
    mm_string_free(text);

    /* Log-probabilities of a greedy answer: the chosen token is the most likely one. */
    struct token_log log = {.chosen_is_top = 1, .sorted = 1};
    a = ask_params("The answer is", NULL, 0);
    a.temperature = 0.0f;
    a.max_tokens = 30;
    a.n_probs = 3;
    a.on_token = log_token;
    a.user_data = &log;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask with log-probabilities");
    mm_string_free(text);
    mm_ask_info info = {.struct_size = sizeof info};
    CHECK(mm_session_last_ask(s, &info) == MM_OK && (int)info.tokens_generated == log.n, "one report per token");
    CHECK(log.chosen_is_top && log.sorted, "greedy picks the most likely; lists are sorted");

    /* A presence penalty over the whole context: no token of the answer comes twice. */
    struct token_log penalised = {.chosen_is_top = 1, .sorted = 1};
    a.n_probs = 0;
    a.presence_penalty = 100.0f;
    a.penalty_last_n = -1;
    a.user_data = &penalised;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask with a penalty");
    mm_string_free(text);
    for (int i = 0; i < penalised.n && i < 64; i++)
        for (int j = 0; j < i; j++) CHECK(penalised.tokens[i] != penalised.tokens[j], "token %d came twice", penalised.tokens[i]);

    /* A JSON Schema: random weights answer {"ok": true} or {"ok": false}, ended by the grammar. */
    const char *schema = "{\"type\": \"object\", \"properties\": {\"ok\": {\"type\": \"boolean\"}}, "
                         "\"required\": [\"ok\"], \"additionalProperties\": false}";
    a = ask_params("Is it fine?", NULL, 0);
    a.temperature = 1.0f;
    a.max_tokens = 200;
    a.json_schema = schema;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask with a JSON Schema");
    char packed[256];
    size_t k = 0;
    for (const char *c = text; *c && k + 1 < sizeof packed; c++)
        if (!strchr(" \t\n", *c)) packed[k++] = *c;
    packed[k] = 0;
    mm_string_free(text);
    CHECK(strcmp(packed, "{\"ok\":true}") == 0 || strcmp(packed, "{\"ok\":false}") == 0, "schema answer: %s", packed);
    CHECK(mm_session_last_ask(s, &info) == MM_OK && info.stop_reason == MM_STOP_EOG, "the grammar ended it");
    a.json_schema = "{\"type\": \"text\"}";
    CHECK(mm_session_ask(s, &a, &text) == MM_ERR_INVALID_ARGUMENT && strstr(mm_last_error(), "unrecognized type"), "bad schema");

    /* Usage: what the prompt is made of. */
    mm_media media[1] = {file_media(image)};
    a = ask_params("Describe.", media, 1);
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask with an image");
    mm_string_free(text);
    CHECK(mm_session_last_ask(s, &info) == MM_OK, "last ask");
    CHECK(info.media_items == 1 && info.media_tokens > 0 && info.prompt_tokens > 0, "usage: %u %u %u", info.media_items, info.media_tokens, info.prompt_tokens);
    CHECK(info.prompt_positions == info.prompt_tokens + info.media_positions, "positions add up");
    mm_session_destroy(s);
    return 1;
}

/* Tool calls: a required call is streamed as deltas whose arguments, joined, are the call's
 * arguments in mm_session_last_message; a follow-up turn carries the call and its result. */
struct tool_deltas {
    char arguments[4096];
    size_t len;
    unsigned calls;
};

static bool collect_tool_call(void *user_data, const mm_tool_call_delta *d) {
    struct tool_deltas *t = user_data;
    if (d->name[0] != '\0') t->calls++;
    size_t n = strlen(d->arguments);
    if (t->len + n < sizeof t->arguments) {
        memcpy(t->arguments + t->len, d->arguments, n + 1);
        t->len += n;
    }
    return true;
}

static const char *TOOLS =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"city\": {\"type\": \"string\", \"enum\": [\"Paris\", \"Oslo\"]}}, \"required\": [\"city\"], "
    "\"additionalProperties\": false}}}]";

static int test_tool_calls(void) {
    mm_session_params p = params();
    p.n_ctx = 4096;
    mm_session *s = NULL;
    CHECK(mm_session_create(&p, &s) == MM_OK, "create");
    mm_media img = file_media(image);
    mm_message question = {.role = "user", .text = "Weather here?", .media = &img, .n_media = 1};
    mm_ask_params a = mm_ask_params_default();
    a.messages = &question;
    a.n_messages = 1;
    a.tools = TOOLS;
    a.tool_choice = "required";
    a.max_tokens = 128;
    struct tool_deltas t = {.len = 0, .calls = 0};
    a.on_tool_call = collect_tool_call;
    a.user_data = &t;
    char *text = NULL;
    CHECK(mm_session_ask(s, &a, &text) == MM_OK, "ask with tools");
    mm_string_free(text);
    mm_ask_info info = {.struct_size = sizeof info};
    CHECK(mm_session_last_ask(s, &info) == MM_OK, "last ask");
    CHECK(info.stop_reason == MM_STOP_TOOL_CALLS && info.tool_calls == 1, "stop %d, calls %u", info.stop_reason, info.tool_calls);
    CHECK(t.calls == 1 && strstr(t.arguments, "\"city\"") != NULL, "streamed: %u calls, %s", t.calls, t.arguments);
    char *json = NULL;
    CHECK(mm_session_last_message(s, &json) == MM_OK, "last message");
    CHECK(strstr(json, "\"tool_calls\"") && strstr(json, "\"name\":\"get_weather\""), "%s", json);
    mm_string_free(json);

    mm_message turns[4] = {
        question,
        {.role = "assistant", .text = ""},
        {.role = "tool", .text = "{\"sky\": \"clear\"}"},
        {.role = "user", .text = "Thanks!"},
    };
    mm_message_ext ext[4];
    memset(ext, 0, sizeof ext);
    ext[1].tool_calls = "[{\"id\": \"call_0123456789\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
                        "\"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}}]";
    ext[2].tool_call_id = "call_0123456789";
    mm_ask_params b = mm_ask_params_default();
    b.messages = turns;
    b.n_messages = 4;
    b.message_ext = ext;
    b.tools = TOOLS;
    b.max_tokens = 8;
    text = NULL;
    CHECK(mm_session_ask(s, &b, &text) == MM_OK, "the follow-up turn");
    mm_string_free(text);
    CHECK(mm_session_last_ask(s, &info) == MM_OK && info.positions_reused > 0 && info.media_encoded == 0, "reused %u, encoded %u", info.positions_reused, info.media_encoded);
    ext[2].tool_call_id = "call_unknown0000";
    CHECK(mm_session_ask(s, &b, &text) == MM_ERR_INVALID_ARGUMENT && text == NULL, "a result for no call");
    mm_session_destroy(s);
    return 1;
}

/* MM_CYCLES sets the count (default 500; fewer under valgrind). */
static int test_500_cycles(void) {
    mm_session_params p = params();
    const char *env = getenv("MM_CYCLES");
    int cycles = env ? atoi(env) : 500;
    for (int i = 0; i < cycles; i++) {
        mm_session *s = NULL;
        CHECK(mm_session_create(&p, &s) == MM_OK, "create %d", i);
        CHECK(mm_session_destroy(s) == MM_OK, "destroy %d", i);
    }
    CHECK(mm_live_sessions() == 0, "no live session");
    return 1;
}

#define RUN(test)                                      \
    do {                                               \
        if (test()) {                                  \
            passed++;                                  \
            printf("ok   %s\n", #test);                \
        } else {                                       \
            failed++;                                  \
            printf("FAIL %s\n", #test);                \
        }                                              \
    } while (0)

/* A session and three forks destroyed in every order of a few: parent first, children first,
 * interleaved. The weights go with the last session (under valgrind and ASan, nothing leaks). */
static int test_fork_destroy_orders(void) {
    static const int orders[4][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 0, 1, 3}};
    mm_media img = file_media(image);
    for (int o = 0; o < 4; o++) {
        mm_session_params p = params();
        mm_session *all[4] = {NULL, NULL, NULL, NULL};
        CHECK(mm_session_create(&p, &all[0]) == MM_OK, "create");
        mm_fork_params fp = mm_fork_params_default();
        fp.copy_conversation = true;
        mm_ask_params a = ask_params("What is <__media__>?", &img, 1);
        char *text = NULL;
        CHECK(mm_session_ask(all[0], &a, &text) == MM_OK, "ask before forking");
        mm_string_free(text);
        for (int i = 1; i < 4; i++) CHECK(mm_session_fork(all[i - 1], &fp, &all[i]) == MM_OK, "fork %d", i);
        CHECK(mm_loaded_models() == 1 && mm_live_sessions() == 4, "one model, four sessions");
        mm_memory_stats m = {.struct_size = sizeof m};
        CHECK(mm_session_memory(all[3], &m) == MM_OK && m.shared_by == 4, "shared by four");
        for (int k = 0; k < 4; k++) {
            CHECK(mm_session_destroy(all[orders[o][k]]) == MM_OK, "destroy %d", orders[o][k]);
            if (k < 3) {
                text = NULL;
                CHECK(mm_session_ask(all[orders[o][k + 1]], &a, &text) == MM_OK, "the next one still answers");
                mm_string_free(text);
            }
        }
        CHECK(mm_loaded_models() == 0 && mm_live_sessions() == 0, "everything freed");
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL MMPROJ IMAGE MISMATCHED_MMPROJ\n", argv[0]);
        return 2;
    }
    model = argv[1];
    mmproj = argv[2];
    image = argv[3];
    mismatched = argv[4];
    mm_log_set(MM_LOG_OFF, NULL, NULL);
    RUN(test_create_ask_destroy);
    RUN(test_create_failures);
    RUN(test_double_destroy_and_use_after_destroy);
    RUN(test_callback_stops);
    RUN(test_determinism);
    RUN(test_fork_destroy_orders);
    RUN(test_request_options);
    RUN(test_tool_calls);
    RUN(test_500_cycles);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
