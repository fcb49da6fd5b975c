/*
 * fuzz_state: restoring a saved conversation (mm_session_load_state), where llama.cpp parses a
 * file in C++ (llama_state_seq_set_data) on a request path that is not model loading.
 *
 * The input is a state file without its last 32 bytes (layout: crates/core/src/state.rs). The
 * harness appends the input's SHA-256, which is the file's checksum, so that mutations get past
 * the checksum to the record and to llama.cpp's KV cache reader. The file is written to a
 * private temporary file and loaded into a session of the fixtures (tiny-llama + tiny-mmproj,
 * n_ctx 1024, 1 thread). Then:
 *   - a failed load must leave the session as it was (the same n_past after a short request);
 *   - a load that succeeds is followed by a one-token question that extends the restored
 *     conversation (the library compares its cache record with the request), and by a save of
 *     the result and a reload, which must succeed.
 * The session is reset after each input.
 *
 * Seeds: with MM_FUZZ_WRITE_SEEDS=DIR set, the harness saves a few real conversations (empty,
 * a prompt, a prompt with an image, a two-turn chat) to DIR without their checksums, then
 * exits; `make -C fuzz corpus` runs it so.
 */
#include "fuzz_common.h"

/* ---- SHA-256 (FIPS 180-4), for the checksum ------------------------------------------- */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = SHA_ROR(w[i - 15], 7) ^ SHA_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = SHA_ROR(w[i - 2], 17) ^ SHA_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (SHA_ROR(e, 6) ^ SHA_ROR(e, 11) ^ SHA_ROR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (SHA_ROR(a, 2) ^ SHA_ROR(a, 13) ^ SHA_ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

static void sha256(const uint8_t *data, size_t n, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha256_block(h, data + i);
    uint8_t tail[128] = {0};
    size_t rest = n - i;
    memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    size_t len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++) tail[len - 1 - j] = (uint8_t)(bits >> (8 * j));
    for (size_t j = 0; j < len; j += 64) sha256_block(h, tail + j);
    for (int j = 0; j < 8; j++)
        for (int b = 0; b < 4; b++) out[4 * j + b] = (uint8_t)(h[j] >> (24 - 8 * b));
}

/* ---- The harness ------------------------------------------------------------------------ */

static mm_session *g_session;
static fuzz_text g_text;
static char g_path[4096];

static uint32_t n_past(void) {
    mm_session_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    int st = mm_session_get_info(g_session, &info);
    fuzz_check_status("mm_session_get_info", st);
    return info.n_past;
}

/* Writes `n` bytes to g_path, replacing what was there. */
static void write_state(const uint8_t *data, size_t n, const uint8_t *sum) {
    FILE *f = fopen(g_path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || (sum && fwrite(sum, 1, 32, f) != 32) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_state: cannot write %s\n", g_path);
        exit(2);
    }
}

/* One short greedy request: a raw prompt, with the fixture image when `image`. */
static int ask(const char *prompt, bool image) {
    char path[4096];
    mm_media m;
    memset(&m, 0, sizeof m);
    m.kind = MM_MEDIA_FILE;
    m.path = fuzz_fixture(path, sizeof path, "tiny-image.png");
    mm_ask_params a = mm_ask_params_default();
    a.prompt = prompt;
    a.media = image ? &m : NULL;
    a.n_media = image ? 1 : 0;
    a.max_tokens = 1;
    a.temperature = 0.0f;
    return fuzz_ask(g_session, &a, &g_text);
}

/* Saves the conversations of the seed corpus into `dir` (each without its checksum). */
static void write_seeds(const char *dir) {
    static const struct { const char *name, *first, *second; bool image; } seeds[] = {
        {"empty", NULL, NULL, false},
        {"prompt", "The capital of France is", NULL, false},
        {"image", "Look: <__media__> What is it?", NULL, true},
        {"two-turns", "Look: <__media__> What is it?", "And now?", true},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        fuzz_reset(g_session);
        if (seeds[i].first && ask(seeds[i].first, seeds[i].image) != MM_OK) FUZZ_DIE("seed %s: %s", seeds[i].name, mm_last_error());
        if (seeds[i].second && ask(seeds[i].second, false) != MM_OK) FUZZ_DIE("seed %s: %s", seeds[i].name, mm_last_error());
        int st = mm_session_save_state(g_session, g_path);
        fuzz_check_status("mm_session_save_state", st);
        if (st != MM_OK) FUZZ_DIE("seed %s: %s", seeds[i].name, mm_last_error());
        size_t n;
        uint8_t *bytes = fuzz_read_file(g_path, &n);
        char out[4096];
        snprintf(out, sizeof out, "%s/%s.state", dir, seeds[i].name);
        FILE *f = fopen(out, "wb");
        if (!f || n < 32 || fwrite(bytes, 1, n - 32, f) != n - 32 || fclose(f) != 0) {
            fprintf(stderr, "fuzz_state: cannot write the seed %s\n", out);
            exit(2);
        }
        free(bytes);
    }
    fprintf(stderr, "fuzz_state: %zu seeds written to %s\n", sizeof seeds / sizeof seeds[0], dir);
    exit(0);
}

static void fuzz_init(void) {
    g_session = fuzz_open("tiny-llama.gguf", "tiny-mmproj.gguf", 1024);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/mm-fuzz-state-%d.mmstate", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    const char *seeds = getenv("MM_FUZZ_WRITE_SEEDS");
    if (seeds && *seeds) write_seeds(seeds);
}

static int fuzz_one(const uint8_t *data, size_t size) {
    uint8_t sum[32];
    sha256(data, size, sum);
    write_state(data, size, sum);
    fuzz_reset(g_session);
    ask("Hi.", false); /* something for a failed load to leave in place */
    uint32_t before = n_past();
    int st = mm_session_load_state(g_session, g_path);
    fuzz_check_status("mm_session_load_state", st);
    if (st != MM_OK) {
        if (n_past() != before) FUZZ_DIE("a failed load (%d) changed n_past from %u to %u", st, before, n_past());
        return 0;
    }
    ask("Go on.", false);
    st = mm_session_save_state(g_session, g_path);
    fuzz_check_status("mm_session_save_state", st);
    if (st != MM_OK) FUZZ_DIE("saving a restored conversation failed: %s", mm_last_error());
    st = mm_session_load_state(g_session, g_path);
    fuzz_check_status("mm_session_load_state", st);
    if (st != MM_OK) FUZZ_DIE("reloading a state the library just saved failed: %s", mm_last_error());
    return 0;
}
