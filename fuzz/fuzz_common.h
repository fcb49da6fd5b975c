/*
 * fuzz_common.h: helpers shared by the libFuzzer harnesses in this directory.
 *
 * - where the generated fixtures are (env MM_FUZZ_FIXTURES, else the directory the Makefile
 *   compiled in as MM_FUZZ_FIXTURES_DEFAULT);
 * - opening a fixed, deterministic session (1 thread, fixed seed);
 * - checks of the C API's contract after every call. A violated contract is a finding: the
 *   harness prints "FUZZ INVARIANT: ..." and calls abort(), which libFuzzer reports as a crash
 *   and saves the input. The checked rules come from include/mm_session.h and docs/c-api.md:
 *     * MM_ERR_INTERNAL (a caught Rust panic) is a bug, never a correct answer;
 *     * a status is one of the documented codes;
 *     * mm_last_error() is "" after success and a non-empty message after a failure;
 *     * on failure *out_text is NULL; on success it is the whole answer, which equals the
 *       concatenation of the streamed pieces; each piece is whole UTF-8, NUL-terminated,
 *       `len` bytes (no interior NUL);
 *     * mm_session_last_ask: tokens_generated <= max_tokens, stop_reason a known reason;
 *     * mm_live_sessions() comes back to its old value after create fails or destroy.
 * - a watchdog for hangs (see fuzz_watchdog below);
 * - the LLVMFuzzerInitialize / LLVMFuzzerTestOneInput entry points, which call the harness's
 *   fuzz_init() and fuzz_one().
 */
#ifndef MM_FUZZ_COMMON_H
#define MM_FUZZ_COMMON_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mm_session.h"

#ifndef MM_FUZZ_FIXTURES_DEFAULT
#define MM_FUZZ_FIXTURES_DEFAULT "target/fuzz-asan/harness/fixtures"
#endif

#define FUZZ_DIE(...)                                   \
    do {                                                \
        fprintf(stderr, "FUZZ INVARIANT: " __VA_ARGS__); \
        fputc('\n', stderr);                            \
        fflush(stderr);                                 \
        abort();                                        \
    } while (0)

static inline const char *fuzz_fixture_dir(void) {
    const char *d = getenv("MM_FUZZ_FIXTURES");
    return (d && *d) ? d : MM_FUZZ_FIXTURES_DEFAULT;
}

/* Writes DIR/name into out; returns out. */
static inline const char *fuzz_fixture(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", fuzz_fixture_dir(), name);
    return out;
}

static inline bool fuzz_file_exists(const char *path) { return access(path, R_OK) == 0; }

/* Reads a whole file (setup only); exits on failure: a missing fixture is not a finding. */
static inline uint8_t *fuzz_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz setup: cannot open %s (run `make -C fuzz corpus` first, or set MM_FUZZ_FIXTURES)\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "fuzz setup: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/*
 * Known findings. Once a finding is recorded (fuzz/regressions/, README.md), a harness can let
 * long runs go past it instead of stopping at it again every few seconds: an MM_ERR_INTERNAL
 * whose message contains one of these texts is counted, not fatal, and a harness may skip
 * inputs of a known kind (returning -1, so libFuzzer does not keep them). MM_FUZZ_STRICT=1 (as
 * `make regress` and triage.sh set it) makes every one of them fatal again. Remove an entry
 * once the library is fixed; at 04ab7f5 every finding so far was fixed or is left to stop the
 * run, so the list is empty.
 */
static const char *const fuzz_known_internal[] = {
    NULL, /* e.g. "mm_session_create: internal error: attempt to multiply with overflow" */
};

static inline bool fuzz_strict(void) {
    static int strict = -1;
    if (strict < 0) {
        const char *e = getenv("MM_FUZZ_STRICT");
        strict = e && *e && strcmp(e, "0") != 0;
    }
    return strict;
}

static size_t fuzz_known_hits;


/* Checks a status and mm_last_error() right after the call that returned it. */
static inline void fuzz_check_status(const char *call, int st) {
    const char *err = mm_last_error();
    if (st == MM_ERR_INTERNAL && err && !fuzz_strict()) {
        for (size_t i = 0; i < sizeof fuzz_known_internal / sizeof fuzz_known_internal[0]; i++)
            if (fuzz_known_internal[i] && strstr(err, fuzz_known_internal[i])) {
                fuzz_known_hits++;
                return;
            }
    }
    if (st == MM_ERR_INTERNAL) FUZZ_DIE("%s returned MM_ERR_INTERNAL (caught panic): %s", call, err ? err : "(null)");
    if (st < MM_OK || st > MM_ERR_FORKED) FUZZ_DIE("%s returned undocumented status %d: %s", call, st, err ? err : "(null)");
    if (!err) FUZZ_DIE("%s: mm_last_error() returned NULL", call);
    if (st == MM_OK && err[0]) FUZZ_DIE("%s returned MM_OK but mm_last_error() is \"%s\"", call, err);
    if (st != MM_OK && !err[0]) FUZZ_DIE("%s returned %d (%s) but mm_last_error() is empty", call, st, mm_status_str(st));
}

/* Strict UTF-8 check (no overlongs, no surrogates, at most U+10FFFF). */
static inline bool fuzz_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += k + 1;
    }
    return true;
}

/* Calls the text callback can make on the session that is answering (re-entrant calls). */
enum fuzz_reenter { REENTER_NONE, REENTER_ASK, REENTER_COUNT, REENTER_INFO, REENTER_RESET, REENTER_DESTROY, REENTER_SAVE, REENTER_CANCEL };

/* Streamed pieces of one answer. */
typedef struct {
    char buf[1 << 16];
    size_t len;
    size_t pieces;
    bool stop_after_first; /* the callback returns false after the first piece */
    mm_session *session;   /* the session answering, for re-entrant calls */
    int reenter;           /* a fuzz_reenter: what the first callback calls on `session` */
} fuzz_text;

/* A call on the answering session from inside its own text callback: every call that needs the
 * session must be refused at once with MM_ERR_BUSY (a deadlock here is a hang the watchdog
 * reports); cancel works. */
static inline void fuzz_reenter_call(fuzz_text *t) {
    mm_session *s = t->session;
    int st = MM_OK;
    uint32_t n = 0;
    char *out = NULL;
    mm_session_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    mm_ask_params a = mm_ask_params_default();
    a.prompt = "again";
    switch (t->reenter) {
    case REENTER_ASK: st = mm_session_ask(s, &a, &out); break;
    case REENTER_COUNT: st = mm_session_count_tokens(s, &a, &n); break;
    case REENTER_INFO: st = mm_session_get_info(s, &info); break;
    case REENTER_RESET: st = mm_session_reset(s); break;
    case REENTER_DESTROY: st = mm_session_destroy(s); break;
    case REENTER_SAVE: st = mm_session_save_state(s, "/nonexistent-dir/reenter.mmstate"); break;
    case REENTER_CANCEL:
        if (mm_session_cancel(s) != MM_OK) FUZZ_DIE("mm_session_cancel from inside on_text failed: %s", mm_last_error());
        return;
    default: return;
    }
    if (st != MM_ERR_BUSY) FUZZ_DIE("re-entrant call %d from inside on_text returned %d, not MM_ERR_BUSY: %s", t->reenter, st, mm_last_error());
    if (out) FUZZ_DIE("a refused re-entrant ask returned a string");
}

static inline bool fuzz_on_text(void *user_data, const char *text, size_t len) {
    fuzz_text *t = (fuzz_text *)user_data;
    if (!t) FUZZ_DIE("on_text got user_data NULL");
    if (!text) FUZZ_DIE("on_text got text NULL");
    if (strlen(text) != len) FUZZ_DIE("on_text piece: len %zu but strlen %zu", len, strlen(text));
    if (!fuzz_utf8_valid((const unsigned char *)text, len)) FUZZ_DIE("on_text piece of %zu bytes is not whole UTF-8", len);
    if (t->pieces == 0 && t->reenter != REENTER_NONE && t->session) fuzz_reenter_call(t);
    if (t->len + len < sizeof t->buf) memcpy(t->buf + t->len, text, len);
    t->len += len;
    t->pieces++;
    return !t->stop_after_first;
}

static char fuzz_sentinel;

/* Runs mm_session_ask and checks the answer's contract. Returns the status. */
static inline int fuzz_ask(mm_session *s, mm_ask_params *a, fuzz_text *t) {
    if (t) {
        t->len = 0;
        t->pieces = 0;
        t->session = s;
        a->on_text = fuzz_on_text;
        a->user_data = t;
    }
    char *out = &fuzz_sentinel;
    int st = mm_session_ask(s, a, &out);
    fuzz_check_status("mm_session_ask", st);
    if (st != MM_OK) {
        if (out != NULL) FUZZ_DIE("mm_session_ask failed (%d) but *out_text is not NULL", st);
        return st;
    }
    if (!out || out == &fuzz_sentinel) FUZZ_DIE("mm_session_ask returned MM_OK without an answer string");
    size_t n = strlen(out);
    if (!fuzz_utf8_valid((const unsigned char *)out, n)) FUZZ_DIE("answer of %zu bytes is not valid UTF-8", n);
    if (t && (n != t->len || (n < sizeof t->buf && memcmp(out, t->buf, n) != 0)))
        FUZZ_DIE("answer (%zu bytes) differs from the streamed pieces (%zu bytes in %zu pieces)", n, t->len, t->pieces);
    mm_string_free(out);
    mm_ask_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    int st2 = mm_session_last_ask(s, &info);
    fuzz_check_status("mm_session_last_ask", st2);
    /* max_tokens as the library sees it: a struct_size that leaves it out means the default. */
    if (a->struct_size >= offsetof(mm_ask_params, max_tokens) + sizeof(int32_t) && a->max_tokens > 0 &&
        info.tokens_generated > (uint32_t)a->max_tokens)
        FUZZ_DIE("tokens_generated %u > max_tokens %d", info.tokens_generated, a->max_tokens);
    if (info.stop_reason < MM_STOP_EOG || info.stop_reason > MM_STOP_CONTEXT_FULL)
        FUZZ_DIE("stop_reason %d after a successful ask", info.stop_reason);
    return st;
}

/* Opens a session of the fixtures; exits (setup failure, not a finding) when it cannot. */
static inline mm_session *fuzz_open(const char *model, const char *mmproj, uint32_t n_ctx) {
    char mp[4096], pp[4096];
    mm_session_params p = mm_session_params_default();
    p.model_path = fuzz_fixture(mp, sizeof mp, model);
    p.mmproj_path = mmproj ? fuzz_fixture(pp, sizeof pp, mmproj) : NULL;
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.seed = 1234;
    mm_session *s = NULL;
    int st = mm_session_create(&p, &s);
    if (st != MM_OK) {
        fprintf(stderr, "fuzz setup: mm_session_create(%s, %s): %s\n", p.model_path, p.mmproj_path ? p.mmproj_path : "-", mm_last_error());
        exit(2);
    }
    return s;
}

static inline void fuzz_reset(mm_session *s) {
    int st = mm_session_reset(s);
    fuzz_check_status("mm_session_reset", st);
    if (st != MM_OK) FUZZ_DIE("mm_session_reset failed: %s", mm_last_error());
}

/* A little reader over the fuzz input. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fuzz_u32(fuzz_in *in) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fuzz_u8(in) << (8 * i);
    return v;
}

static inline float fuzz_f32(fuzz_in *in) {
    uint32_t v = fuzz_u32(in);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

/* Next NUL-separated segment as a NUL-terminated copy in `out` (cap bytes), or NULL at the end. */
static inline const char *fuzz_segment(fuzz_in *in, char *out, size_t cap) {
    if (!in->n) return NULL;
    size_t i = 0;
    while (in->n && *in->p) {
        if (i + 1 < cap) out[i++] = (char)*in->p;
        in->p++;
        in->n--;
    }
    if (in->n) { in->p++; in->n--; } /* the NUL */
    out[i] = 0;
    return out;
}

/*
 * Watchdog for hangs. libFuzzer's own -timeout runs its report (which allocates) in a SIGALRM
 * handler; without a sanitizer's allocator that deadlocks when the alarm lands inside malloc,
 * and one long run hung that way for minutes. So run.sh passes -timeout=0 and this thread does
 * the job instead: when one input has run for more than MM_FUZZ_TIMEOUT seconds (default 10;
 * 0: off) it writes the input to <artifact_prefix>timeout-<hash>, prints a libFuzzer-style
 * report and exits with libFuzzer's timeout exit code (70), which fork mode counts as a
 * timeout. It allocates nothing while it reports, and it is a thread, not a signal handler.
 */
static char fuzz_wd_prefix[2048] = "./";
static int fuzz_wd_timeout = 10;
static uint8_t *fuzz_wd_buf;
static size_t fuzz_wd_cap, fuzz_wd_size;
static _Atomic long long fuzz_wd_start_ms; /* 0: no input running */

static inline long long fuzz_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *fuzz_watchdog(void *arg) {
    (void)arg;
    for (;;) {
        sleep(1);
        long long st = atomic_load(&fuzz_wd_start_ms);
        if (!st || fuzz_now_ms() - st <= (long long)fuzz_wd_timeout * 1000) continue;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < fuzz_wd_size; i++) h = (h ^ fuzz_wd_buf[i]) * 0x100000001b3ULL;
        char path[2100];
        snprintf(path, sizeof path, "%stimeout-%016llx", fuzz_wd_prefix, (unsigned long long)h);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            size_t off = 0;
            while (off < fuzz_wd_size) {
                ssize_t w = write(fd, fuzz_wd_buf + off, fuzz_wd_size - off);
                if (w <= 0) break;
                off += (size_t)w;
            }
            close(fd);
        }
        char msg[2400];
        int n = snprintf(msg, sizeof msg,
                         "==%d== ERROR: libFuzzer: timeout after %d seconds (mm-session fuzz watchdog)\n"
                         "artifact_prefix='%s'; Test unit written to %s\n",
                         (int)getpid(), fuzz_wd_timeout, fuzz_wd_prefix, path);
        if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        _exit(70);
    }
    return NULL;
}

static void fuzz_init(void);
static int fuzz_one(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++) {
        const char *a = (*argv)[i];
        if (strncmp(a, "-artifact_prefix=", 17) == 0) snprintf(fuzz_wd_prefix, sizeof fuzz_wd_prefix, "%s", a + 17);
    }
    const char *t = getenv("MM_FUZZ_TIMEOUT");
    if (t && *t) fuzz_wd_timeout = atoi(t);
    mm_log_set(MM_LOG_OFF, NULL, NULL);
    fuzz_init();
    if (fuzz_wd_timeout > 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, fuzz_watchdog, NULL) == 0) pthread_detach(th);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_wd_timeout > 0) {
        if (size > fuzz_wd_cap) {
            fuzz_wd_cap = size * 2;
            fuzz_wd_buf = realloc(fuzz_wd_buf, fuzz_wd_cap);
            if (!fuzz_wd_buf) abort();
        }
        if (size) memcpy(fuzz_wd_buf, data, size);
        fuzz_wd_size = size;
        atomic_store(&fuzz_wd_start_ms, fuzz_now_ms());
    }
    int r = fuzz_one(data, size);
    atomic_store(&fuzz_wd_start_ms, 0);
    return r;
}

#endif
