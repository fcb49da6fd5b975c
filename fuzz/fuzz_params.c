/*
 * fuzz_params: the numeric and string fields of mm_ask_params and mm_session_params.
 *
 * Byte 0 bit 0 picks the part:
 *   0 (ask): one text-only request on a fixed session (tiny fixtures, n_ctx 32 so that even
 *     max_tokens = INT32_MAX ends quickly) with max_tokens, temperature (NaN, +-inf, -0,
 *     denormals, ...), top_k, top_p, min_p, seed, overflow, stop strings (including empty
 *     ones, a NULL entry, a NULL array with a count), a grammar text, n_media with a NULL
 *     array, and struct_size values around sizeof(mm_ask_params) with zero or non-zero bytes
 *     past the real struct. Each field is either a value from a table of edge cases or raw
 *     input bytes.
 *   1 (create): mm_session_create with n_ctx (bounded to 8192: a huge context is a huge
 *     allocation, not a bug), n_batch, n_threads (-1, 0, 1; see do_create), n_gpu_layers, seed, the two
 *     bools, projector (none, vision, audio), media_marker and chat_template texts (a built-in
 *     name or input text), a progress callback that cancels after k calls, and struct_size
 *     values as above. On success: mm_session_marker must be the marker asked for, one chat
 *     request (with an image in the marker's place when there is a vision projector), then
 *     destroy; a second destroy must give MM_ERR_INVALID_HANDLE. mm_live_sessions() must come
 *     back to its old value; on failure *out must be NULL.
 * After the fixed-size fields come NUL-separated strings (stop strings, grammar, marker,
 * template).
 *
 * struct_size values that cut a pointer field in two are used only with that field NULL: no
 * compiled header gives such a size, and the library cannot tell a torn pointer from a real
 * one (the bytes it reads of a NULL pointer are zero, so the torn value is NULL again).
 */
#include <float.h>
#include <math.h>

#include "fuzz_common.h"

#define SEG 2048

static mm_session *g_session;
static uint8_t *g_png;
static size_t g_png_size;
static bool g_have_audio;
static fuzz_text g_text;

static void fuzz_init(void) {
    char path[4096];
    g_session = fuzz_open("tiny-llama.gguf", NULL, 32);
    g_png = fuzz_read_file(fuzz_fixture(path, sizeof path, "tiny-image.png"), &g_png_size);
    g_have_audio = fuzz_file_exists(fuzz_fixture(path, sizeof path, "tiny-audio-mmproj.gguf"));
}

static float pick_f32(fuzz_in *in) {
    static const float table[] = {0.0f, -0.0f, 0.8f, 1.0f, 0.5f, 1e-30f, 1e-45f, -1.0f, 1.0000001f, 0.9999999f, 2.0f,
                                  FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN, 100.0f, 1e-3f};
    uint8_t sel = fuzz_u8(in);
    if (sel < 0xC0) return table[sel % (sizeof table / sizeof table[0])];
    return fuzz_f32(in);
}

static int32_t pick_i32(fuzz_in *in, const int32_t *table, size_t n) {
    uint8_t sel = fuzz_u8(in);
    if (sel < 0xC0) return table[sel % n];
    return (int32_t)fuzz_u32(in);
}

/* A struct_size around `real`: real itself, other multiples of 8, odd values, tiny values. */
static uint32_t pick_struct_size(fuzz_in *in, uint32_t real) {
    uint8_t sel = fuzz_u8(in);
    if (sel < 0x80) return real;
    static const int32_t delta[] = {-8, -16, -24, -32, 8, 16, 64, -1, -3, -4, -5, 1, 3, 4};
    if (sel < 0xF0) {
        int64_t v = (int64_t)real + delta[sel % (sizeof delta / sizeof delta[0])];
        return v < 0 ? 0 : (uint32_t)v;
    }
    static const uint32_t small[] = {0, 1, 4, 8, 15, 16, 17, 23, 24, 25, 31, 32, 40, 48, 56, 0xFFFFFFFFu};
    return small[sel % 16];
}

/* Copies `st` (sizeof real) into `buf` (cap bytes), sets struct_size, fills the bytes past the
 * real struct (up to struct_size) with zeros or with `fill`, and NULLs a pointer field that
 * struct_size cuts in two. Returns false when struct_size does not fit in buf (then it is not
 * used: the library would read past the caller's memory, which is the caller's bug). */
static bool make_versioned(uint8_t *buf, size_t cap, const void *st, size_t real, uint32_t size, uint8_t fill,
                           const size_t *ptr_offsets, size_t n_ptrs) {
    if (size > cap) return false;
    memset(buf, 0, cap);
    memcpy(buf, st, real);
    memcpy(buf, &size, sizeof size);
    for (size_t i = real; i < size; i++) buf[i] = fill;
    for (size_t i = 0; i < n_ptrs; i++) {
        size_t o = ptr_offsets[i];
        if (size > o && size < o + sizeof(void *)) memset(buf + o, 0, sizeof(void *));
    }
    return true;
}

static int do_ask(fuzz_in *in) {
    static char stops[3][SEG], grammar[SEG];
    static _Alignas(16) uint8_t buf[sizeof(mm_ask_params) + 128];
    static const int32_t max_tokens_table[] = {1, 2, 3, 4, 0, -1, INT32_MIN, INT32_MAX, 8, 63, 64, 65};
    static const int32_t top_k_table[] = {0, 1, 2, 40, -1, INT32_MIN, INT32_MAX, 264, 265, 266, 1000};
    static const int32_t overflow_table[] = {0, 1, 2, -1};
    mm_ask_params a = mm_ask_params_default();
    a.prompt = "The answer is";
    uint8_t flags = fuzz_u8(in);
    a.max_tokens = pick_i32(in, max_tokens_table, sizeof max_tokens_table / sizeof max_tokens_table[0]);
    a.temperature = pick_f32(in);
    a.top_k = pick_i32(in, top_k_table, sizeof top_k_table / sizeof top_k_table[0]);
    a.top_p = pick_f32(in);
    a.min_p = pick_f32(in);
    a.seed = (flags & 1) ? fuzz_u32(in) : MM_SEED_DEFAULT;
    a.overflow = pick_i32(in, overflow_table, 4);
    uint32_t size = pick_struct_size(in, sizeof a);
    uint8_t fill = fuzz_u8(in);
    size_t n_stop = (flags >> 1) & 3;
    const char *stop_ptrs[3];
    for (size_t k = 0; k < n_stop; k++) {
        if (!fuzz_segment(in, stops[k], sizeof stops[k])) stops[k][0] = 0;
        stop_ptrs[k] = stops[k];
    }
    if (n_stop) {
        a.stop = stop_ptrs;
        a.n_stop = n_stop;
        if (flags & 0x40) stop_ptrs[n_stop - 1] = NULL; /* a NULL stop string */
    } else if (flags & 0x40) {
        a.n_stop = 2; /* a count with a NULL array */
    }
    if (flags & 8) {
        if (!fuzz_segment(in, grammar, sizeof grammar)) grammar[0] = 0;
        a.grammar = grammar;
    }
    if (flags & 0x10) a.n_media = 5; /* with media NULL: ignored */
    g_text.stop_after_first = flags & 0x20;
    if (flags & 0x80) a.prompt = NULL; /* no prompt and no messages */

    /* fuzz_ask sets on_text/user_data; set them here too so the copy in buf has them. */
    a.on_text = fuzz_on_text;
    a.user_data = &g_text;
    g_text.len = g_text.pieces = 0;
    static const size_t ptrs[] = {offsetof(mm_ask_params, prompt), offsetof(mm_ask_params, media),
                                  offsetof(mm_ask_params, stop), offsetof(mm_ask_params, on_text),
                                  offsetof(mm_ask_params, user_data), offsetof(mm_ask_params, messages),
                                  offsetof(mm_ask_params, grammar)};
    if (!make_versioned(buf, sizeof buf, &a, sizeof a, size, fill, ptrs, sizeof ptrs / sizeof ptrs[0])) return 0;
    mm_ask_params *p = (mm_ask_params *)buf;
    /* fuzz_ask would overwrite on_text/user_data: call the library directly and check here. */
    char *out = &fuzz_sentinel;
    int st = mm_session_ask(g_session, p, &out);
    fuzz_check_status("mm_session_ask", st);
    if (st != MM_OK) {
        if (out) FUZZ_DIE("mm_session_ask failed (%d) but *out_text is not NULL", st);
    } else {
        if (!out || out == &fuzz_sentinel) FUZZ_DIE("MM_OK without an answer");
        if (!fuzz_utf8_valid((const unsigned char *)out, strlen(out))) FUZZ_DIE("answer is not UTF-8");
        /* The callback was used only if struct_size covers on_text and user_data. */
        if (size >= offsetof(mm_ask_params, user_data) + sizeof(void *) && strlen(out) != g_text.len)
            FUZZ_DIE("answer (%zu bytes) differs from the streamed pieces (%zu bytes)", strlen(out), g_text.len);
        mm_string_free(out);
        /* What the library must have refused (when the field is within struct_size). */
        size_t have = size;
#define HAS(f) (have >= offsetof(mm_ask_params, f) + sizeof(((mm_ask_params *)0)->f))
        if (HAS(max_tokens) && p->max_tokens < 1) FUZZ_DIE("max_tokens %d accepted", p->max_tokens);
        if (HAS(temperature) && !(p->temperature >= 0.0f && isfinite(p->temperature)))
            FUZZ_DIE("temperature %g accepted", (double)p->temperature);
        if (HAS(top_p) && !(p->top_p >= 0.0f && p->top_p <= 1.0f)) FUZZ_DIE("top_p %g accepted", (double)p->top_p);
        if (HAS(min_p) && !(p->min_p >= 0.0f && p->min_p <= 1.0f)) FUZZ_DIE("min_p %g accepted", (double)p->min_p);
        if (HAS(top_k) && p->top_k < 0) FUZZ_DIE("top_k %d accepted", p->top_k);
        if (HAS(overflow) && p->overflow != 0 && p->overflow != 1) FUZZ_DIE("overflow %d accepted", p->overflow);
#undef HAS
    }
    fuzz_reset(g_session);
    return 0;
}

static int g_progress_calls, g_progress_cancel_at;
static void *g_progress_expected; /* NULL when struct_size leaves progress_user_data out */
static bool progress_cb(void *user_data, float progress) {
    if (user_data != g_progress_expected) FUZZ_DIE("progress callback got user_data %p, not %p", user_data, g_progress_expected);
    if (!(progress >= 0.0f && progress <= 1.0f)) FUZZ_DIE("progress %g outside [0, 1]", (double)progress);
    return ++g_progress_calls != g_progress_cancel_at;
}

static void do_create(fuzz_in *in) {
    static char marker[SEG], tmpl[SEG];
    static _Alignas(16) uint8_t buf[sizeof(mm_session_params) + 128];
    static const int32_t n_ctx_table[] = {64, 16, 15, 0, 1, 17, 32, 100, 256, 1000, 1024, 2048, 4096, 8192};
    static const int32_t n_batch_table[] = {512, 0, 1, 2, 3, 7, 8, 16, 31, 64, 2048, 65536, -1, INT32_MIN};
    /* No 2: with two threads on this 2-core machine, busy with other work, every graph step
     * waits for a core (a 94-token prompt in 2-token batches took 5.7 s, against 5 ms with one
     * thread), and the watchdog reported that as a hang. docs/c-api.md documents that more
     * threads than free cores is slow; it is not a bug. 0 is the default (1 here). */
    static const int32_t n_threads_table[] = {1, 0, -1, 1};
    static const int32_t gpu_table[] = {-1, 0, 1, 99, INT32_MIN, INT32_MAX};
    static const char *const templates[] = {"chatml", "llama3", "gemma", "mistral-v7", "zephyr", "deepseek3",
                                            "phi4", "llama2", "vicuna", "command-r", "granite", "exaone3"};
    char model_path[4096], proj_path[4096];
    mm_session_params p = mm_session_params_default();
    uint8_t flags = fuzz_u8(in);
    uint8_t flags2 = fuzz_u8(in);
    p.model_path = fuzz_fixture(model_path, sizeof model_path, "tiny-llama.gguf");
    switch (flags & 3) {
    case 1: p.mmproj_path = fuzz_fixture(proj_path, sizeof proj_path, "tiny-mmproj.gguf"); break;
    case 2:
        p.mmproj_path = fuzz_fixture(proj_path, sizeof proj_path, g_have_audio ? "tiny-audio-mmproj.gguf" : "tiny-mmproj.gguf");
        break;
    default: p.mmproj_path = NULL;
    }
    uint32_t n_ctx = (uint32_t)pick_i32(in, n_ctx_table, sizeof n_ctx_table / sizeof n_ctx_table[0]);
    p.n_ctx = n_ctx % 8193;
    p.n_batch = (uint32_t)pick_i32(in, n_batch_table, sizeof n_batch_table / sizeof n_batch_table[0]);
    p.n_threads = n_threads_table[fuzz_u8(in) & 3];
    p.n_gpu_layers = pick_i32(in, gpu_table, sizeof gpu_table / sizeof gpu_table[0]);
    p.seed = fuzz_u32(in);
    p.mmproj_use_gpu = flags & 4;
    p.use_mmap = flags & 8;
    if (flags & 0x10) {
        g_progress_calls = 0;
        g_progress_cancel_at = fuzz_u8(in) % 8; /* 0: never cancel */
        p.progress_callback = progress_cb;
        p.progress_user_data = &g_progress_calls;
    }
    uint32_t size = pick_struct_size(in, sizeof p);
    uint8_t fill = fuzz_u8(in);
    if (flags & 0x20) {
        if (!fuzz_segment(in, marker, sizeof marker)) marker[0] = 0;
        p.media_marker = marker;
    }
    if (flags & 0x40) {
        if (flags2 & 1) {
            if (!fuzz_segment(in, tmpl, sizeof tmpl)) tmpl[0] = 0;
            p.chat_template = tmpl;
        } else {
            p.chat_template = templates[(flags2 >> 1) % (sizeof templates / sizeof templates[0])];
        }
    }
    if (flags & 0x80) p.model_path = NULL;

    static const size_t ptrs[] = {offsetof(mm_session_params, model_path), offsetof(mm_session_params, mmproj_path),
                                  offsetof(mm_session_params, media_marker), offsetof(mm_session_params, progress_callback),
                                  offsetof(mm_session_params, progress_user_data), offsetof(mm_session_params, chat_template),
                                  offsetof(mm_session_params, rpc_servers), offsetof(mm_session_params, tensor_split)};
    if (!make_versioned(buf, sizeof buf, &p, sizeof p, size, fill, ptrs, sizeof ptrs / sizeof ptrs[0])) return;
    const mm_session_params *pp = (const mm_session_params *)buf;
    g_progress_expected = size >= offsetof(mm_session_params, progress_user_data) + sizeof(void *) ? pp->progress_user_data : NULL;

    size_t live = mm_live_sessions();
    mm_session *s = (mm_session *)&fuzz_sentinel;
    int st = mm_session_create(pp, &s);
    fuzz_check_status("mm_session_create", st);
    if (st != MM_OK) {
        if (s != NULL) FUZZ_DIE("mm_session_create failed (%d) but *out is not NULL", st);
        if (mm_live_sessions() != live) FUZZ_DIE("mm_session_create failed but mm_live_sessions() went %zu -> %zu", live, mm_live_sessions());
        return;
    }
    if (!s || s == (mm_session *)&fuzz_sentinel) FUZZ_DIE("mm_session_create: MM_OK without a session");
    if (mm_live_sessions() != live + 1) FUZZ_DIE("after create, mm_live_sessions() went %zu -> %zu", live, mm_live_sessions());
    size_t have = size;
    bool has_marker = have >= offsetof(mm_session_params, media_marker) + sizeof(void *) && pp->media_marker;
    bool has_proj = pp->mmproj_path != NULL;
    const char *m = mm_session_marker(s);
    if (!m) FUZZ_DIE("mm_session_marker returned NULL for a live session: %s", mm_last_error());
    if (has_marker && strcmp(m, pp->media_marker) != 0) FUZZ_DIE("marker \"%s\" asked for, session says \"%s\"", pp->media_marker, m);
    char marker_copy[SEG + 16];
    snprintf(marker_copy, sizeof marker_copy, "%s", m);

    mm_session_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    fuzz_check_status("mm_session_get_info", mm_session_get_info(s, &info));

    /* One chat request: the template, and the marker with an image when there is vision. */
    char text[SEG + 64];
    mm_media img;
    memset(&img, 0, sizeof img);
    img.kind = MM_MEDIA_ENCODED;
    img.data = g_png;
    img.size = g_png_size;
    bool with_image = has_proj && info.supports_vision && (flags2 & 0x80);
    snprintf(text, sizeof text, "%s%s", with_image ? marker_copy : "", " Hi");
    mm_message msg = {.role = "user", .text = text, .media = with_image ? &img : NULL, .n_media = with_image ? 1 : 0};
    mm_ask_params a = mm_ask_params_default();
    a.messages = &msg;
    a.n_messages = 1;
    a.max_tokens = 1;
    a.temperature = 0.0f;
    fuzz_ask(s, &a, &g_text);

    int d = mm_session_destroy(s);
    fuzz_check_status("mm_session_destroy", d);
    if (d != MM_OK) FUZZ_DIE("mm_session_destroy failed: %d", d);
    if (mm_live_sessions() != live) FUZZ_DIE("after destroy, mm_live_sessions() went %zu -> %zu", live, mm_live_sessions());
    d = mm_session_destroy(s);
    if (d != MM_ERR_INVALID_HANDLE) FUZZ_DIE("second destroy gave %d, not MM_ERR_INVALID_HANDLE", d);
}

static int fuzz_one(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    if (fuzz_u8(&in) & 1) {
        do_create(&in);
        return 0;
    }
    return do_ask(&in);
}
