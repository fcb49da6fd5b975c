/*
 * fuzz_gguf: model and projector files.
 *
 * The input is a GGUF file (seeds: the generated tiny-llama.gguf, tiny-mmproj.gguf and
 * tiny-audio-mmproj.gguf, whole and cut short). Or, so that mutations land on the metadata
 * rather than on half a megabyte of weights, a header-only input: "GGHD", one byte that picks
 * a fixture, then a GGUF header (metadata and tensor infos); the harness pads it to 32 bytes
 * and appends that fixture's tensor data, so the tensor offsets of an unchanged header still
 * point at the right weights. The file is written to /dev/shm (or $TMPDIR when /dev/shm is
 * missing), then:
 *   1. mm_session_create with it as the text model and the real vision projector: the
 *      library's own GGUF checks (src/gguf.rs, src/gguf_check.rs), llama.cpp's gguf reader and
 *      model loader, context creation (graph reservation) and the projector/model size check;
 *   2. mm_session_create with the real text model and it as the projector: mtmd's clip loader
 *      (vision or audio, by what the file says).
 * A session that loads is asked one short question (text, plus a 32x32 raw image when it has
 * vision), since a file that loads but breaks evaluation is as much a finding as one that
 * breaks loading; then it is destroyed. Failure statuses are the expected outcome; what is
 * checked is that nothing crashes or aborts, that every status and message follows the
 * contract (fuzz_common.h), and that mm_live_sessions() comes back to 0.
 */
#include <fcntl.h>

#include "fuzz_common.h"

static char g_model[4096], g_proj[4096], g_tmp[4096];
static uint8_t g_pixels[32 * 32 * 3];
static fuzz_text g_text;
/* Tensor data of the fixtures, for header-only inputs. */
static const uint8_t *g_blob[3];
static size_t g_blob_size[3];

static void load_blob(int i, const char *name) {
    char path[4096];
    if (!fuzz_file_exists(fuzz_fixture(path, sizeof path, name))) return;
    size_t n;
    uint8_t *buf = fuzz_read_file(path, &n);
    /* `make -C fuzz fixtures` wrote where its tensor data starts (mm-fixtures --data-start). */
    char start_path[4096 + 16];
    snprintf(start_path, sizeof start_path, "%s.data-start", path);
    size_t start_len;
    char *start_text = (char *)fuzz_read_file(start_path, &start_len);
    size_t h = (size_t)strtoull(start_text, NULL, 10);
    free(start_text);
    if (!h || h > n) {
        fprintf(stderr, "fuzz setup: %s: cannot find its tensor data\n", path);
        exit(2);
    }
    g_blob[i] = buf + h;
    g_blob_size[i] = n - h;
}

static void fuzz_init(void) {
    fuzz_fixture(g_model, sizeof g_model, "tiny-llama.gguf");
    fuzz_fixture(g_proj, sizeof g_proj, "tiny-mmproj.gguf");
    if (!fuzz_file_exists(g_model) || !fuzz_file_exists(g_proj)) {
        fprintf(stderr, "fuzz setup: fixtures missing in %s (run `make -C fuzz corpus`)\n", fuzz_fixture_dir());
        exit(2);
    }
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(g_tmp, sizeof g_tmp, "%s/mm-fuzz-gguf-%d.gguf", dir, (int)getpid());
    for (size_t i = 0; i < sizeof g_pixels; i++) g_pixels[i] = (uint8_t)(i * 7);
    load_blob(0, "tiny-llama.gguf");
    load_blob(1, "tiny-mmproj.gguf");
    load_blob(2, "tiny-audio-mmproj.gguf");
}

static void write_all(int fd, const uint8_t *data, size_t size) {
    while (size) {
        ssize_t w = write(fd, data, size);
        if (w <= 0) {
            perror(g_tmp);
            exit(2);
        }
        data += w;
        size -= (size_t)w;
    }
}

/* The file as written: the input, or header + padding + tensor data for "GGHD" inputs. */
static uint8_t *g_file;
static size_t g_file_size, g_file_cap;

static void put(const uint8_t *data, size_t size) {
    if (g_file_size + size > g_file_cap) {
        g_file_cap = (g_file_size + size) * 2;
        g_file = realloc(g_file, g_file_cap);
        if (!g_file) exit(2);
    }
    memcpy(g_file + g_file_size, data, size);
    g_file_size += size;
}

static void write_input(const uint8_t *data, size_t size) {
    int fd = open(g_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(g_tmp);
        exit(2);
    }
    g_file_size = 0;
    if (size >= 5 && memcmp(data, "GGHD", 4) == 0) {
        int b = data[4] % 3;
        if (!g_blob[b]) b = 0;
        static const uint8_t zeros[32];
        put(data + 5, size - 5);
        put(zeros, (32 - (size - 5) % 32) % 32);
        put(g_blob[b], g_blob_size[b]);
    } else {
        put(data, size);
    }
    write_all(fd, g_file, g_file_size);
    close(fd);
}

static void try_create(const char *model, const char *proj) {
    mm_session_params p = mm_session_params_default();
    p.model_path = model;
    p.mmproj_path = proj;
    p.n_ctx = 256;
    p.n_batch = 256;
    p.n_threads = 1;
    p.seed = 1;
    mm_session *s = NULL;
    int st = mm_session_create(&p, &s);
    fuzz_check_status("mm_session_create", st);
    if (st != MM_OK) {
        if (s) FUZZ_DIE("mm_session_create failed (%d) but *out is not NULL", st);
        if (mm_live_sessions() != 0) FUZZ_DIE("mm_session_create failed but %zu sessions live", mm_live_sessions());
        return;
    }
    mm_session_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    fuzz_check_status("mm_session_get_info", mm_session_get_info(s, &info));
    mm_media img = {.kind = MM_MEDIA_RGB, .width = 32, .height = 32, .data = g_pixels, .size = sizeof g_pixels};
    mm_ask_params a = mm_ask_params_default();
    a.prompt = "Hi";
    a.media = info.supports_vision ? &img : NULL;
    a.n_media = info.supports_vision ? 1 : 0;
    a.max_tokens = 2;
    a.temperature = 0.0f;
    fuzz_ask(s, &a, &g_text);
    mm_memory_stats mem;
    memset(&mem, 0, sizeof mem);
    mem.struct_size = sizeof mem;
    fuzz_check_status("mm_session_memory", mm_session_memory(s, &mem));
    int d = mm_session_destroy(s);
    fuzz_check_status("mm_session_destroy", d);
    if (d != MM_OK) FUZZ_DIE("mm_session_destroy failed: %d", d);
    if (mm_live_sessions() != 0) FUZZ_DIE("after destroy, %zu sessions live", mm_live_sessions());
}

static int fuzz_one(const uint8_t *data, size_t size) {
    write_input(data, size);
    try_create(g_tmp, g_proj);  /* the input as text model */
    try_create(g_model, g_tmp); /* the input as projector */
    unlink(g_tmp);
    return 0;
}
