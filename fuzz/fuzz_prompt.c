/*
 * fuzz_prompt: prompts, chats, markers, stop strings and grammars.
 *
 * Input layout:
 *   byte 0: bits 0-1 mode (0 ask with a prompt, 1 ask with chat messages, 2 count_tokens then
 *           ask with a prompt, 3 the same with a chat); bits 2-3 number of media items of a
 *           prompt (0-3); bit 4 a grammar follows; bits 5-6 number of stop strings (0-3);
 *           bit 7 overflow = MM_OVERFLOW_DROP_OLDEST.
 *   byte 1: bits 0-1 max_tokens - 1 (1-4); bit 2 temperature 0.8 (fixed seed) instead of
 *           greedy; bit 3 media as MM_MEDIA_FILE instead of MM_MEDIA_ENCODED; bit 4 the text
 *           callback stops after the first piece; bit 5 use the small session (n_ctx 64, so
 *           context-full and drop-oldest paths); bits 6-7 chat messages - 1 (1-4).
 *   then NUL-separated segments (each passed as a C string: what follows a NUL is the next
 *   segment, so a prompt ends at its first NUL; segments may hold "<__media__>", special
 *   tokens and non-UTF-8 bytes):
 *     prompt mode: the prompt;
 *     chat mode: per message, one segment whose first byte picks the role (bits 0-1: system,
 *       user, assistant, or "the next segment is the role") and its media count (bits 2-3),
 *       the rest of the segment being the text;
 *     then the stop strings, then the grammar.
 * The last byte's bits 5-7 pick a call the text callback makes on the answering session from
 * inside its first piece (a fuzz_reenter: ask, count, info, reset, destroy, save, cancel; 0
 * none): each must be refused at once with MM_ERR_BUSY (cancel: the ask is cancelled).
 * Media items are the generated tiny PNG. Every status and answer is checked (fuzz_common.h);
 * when count_tokens and ask both succeed, ask's prompt_positions must equal the count.
 */
#include "fuzz_common.h"

#define SEG 4096

static mm_session *g_big;   /* n_ctx 1024 */
static mm_session *g_small; /* n_ctx 64 */
static uint8_t *g_png;
static size_t g_png_size;
static char g_png_path[4096];
static fuzz_text g_text;

static void fuzz_init(void) {
    g_big = fuzz_open("tiny-llama.gguf", "tiny-mmproj.gguf", 1024);
    g_small = fuzz_open("tiny-llama.gguf", "tiny-mmproj.gguf", 64);
    fuzz_fixture(g_png_path, sizeof g_png_path, "tiny-image.png");
    g_png = fuzz_read_file(g_png_path, &g_png_size);
}

static void set_media(mm_media *m, size_t n, bool as_file) {
    for (size_t i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof m[i]);
        if (as_file) {
            m[i].kind = MM_MEDIA_FILE;
            m[i].path = g_png_path;
        } else {
            m[i].kind = MM_MEDIA_ENCODED;
            m[i].data = g_png;
            m[i].size = g_png_size;
        }
    }
}

static int fuzz_one(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t b0 = fuzz_u8(&in), b1 = fuzz_u8(&in);
    int mode = b0 & 3;
    bool chat = mode & 1, count_first = mode & 2;
    size_t n_media = (b0 >> 2) & 3;
    bool has_grammar = b0 & 0x10;
    size_t n_stop = (b0 >> 5) & 3;
    bool as_file = b1 & 8;
    mm_session *s = (b1 & 0x20) ? g_small : g_big;
    g_text.reenter = size >= 3 ? data[size - 1] >> 5 : REENTER_NONE;

    static char prompt[SEG], roles[4][SEG], texts[4][SEG], stops[3][SEG], grammar[SEG];
    static mm_media media[3], msg_media[4][3];
    mm_message msgs[4];
    const char *stop_ptrs[3];

    mm_ask_params a = mm_ask_params_default();
    a.max_tokens = 1 + (b1 & 3);
    a.temperature = (b1 & 4) ? 0.8f : 0.0f;
    a.seed = 7;
    a.overflow = (b0 & 0x80) ? 1 /* MM_OVERFLOW_DROP_OLDEST */ : 0;
    g_text.stop_after_first = b1 & 0x10;

    if (!chat) {
        if (!fuzz_segment(&in, prompt, sizeof prompt)) prompt[0] = 0;
        a.prompt = prompt;
        set_media(media, n_media, as_file);
        a.media = n_media ? media : NULL;
        a.n_media = n_media;
    } else {
        size_t n_msgs = 1 + (b1 >> 6);
        static const char *const fixed_roles[3] = {"system", "user", "assistant"};
        for (size_t i = 0; i < n_msgs; i++) {
            char seg[SEG];
            if (!fuzz_segment(&in, seg, sizeof seg)) seg[0] = 0;
            uint8_t sel = (uint8_t)seg[0];
            size_t nm = (sel >> 2) & 3;
            strcpy(texts[i], seg[0] ? seg + 1 : seg);
            if ((sel & 3) == 3) {
                if (!fuzz_segment(&in, roles[i], sizeof roles[i])) roles[i][0] = 0;
                msgs[i].role = roles[i];
            } else {
                msgs[i].role = fixed_roles[sel & 3];
            }
            msgs[i].text = texts[i];
            set_media(msg_media[i], nm, as_file);
            msgs[i].media = nm ? msg_media[i] : NULL;
            msgs[i].n_media = nm;
        }
        a.messages = msgs;
        a.n_messages = n_msgs;
    }
    size_t k = 0;
    for (; k < n_stop; k++) {
        if (!fuzz_segment(&in, stops[k], sizeof stops[k])) break;
        stop_ptrs[k] = stops[k];
    }
    a.stop = k ? stop_ptrs : NULL;
    a.n_stop = k;
    if (has_grammar && fuzz_segment(&in, grammar, sizeof grammar)) a.grammar = grammar;

    uint32_t counted = 0;
    int count_st = -1;
    if (count_first) {
        count_st = mm_session_count_tokens(s, &a, &counted);
        fuzz_check_status("mm_session_count_tokens", count_st);
    }
    int st = fuzz_ask(s, &a, &g_text);
    if (count_st == MM_OK && st == MM_OK) {
        mm_ask_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        fuzz_check_status("mm_session_last_ask", mm_session_last_ask(s, &info));
        if (info.prompt_positions != counted)
            FUZZ_DIE("count_tokens said %u positions, ask's prompt_positions is %u", counted, info.prompt_positions);
    }
    fuzz_reset(s);
    return 0;
}
