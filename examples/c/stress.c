/* stress MODEL MMPROJ IMAGE N [--requests | --batched]
 *
 * Default mode: N cycles of create, ask with two images, destroy.
 * --requests:   one session, N requests with two images each.
 * --batched:    N cycles of create with n_parallel 4, fork 3, ask all four at once from four
 *               threads (they decode together), destroy the parent first, then the forks.
 * Prints VmRSS at 1, 10 and N and ends with
 *   cycles=N rss_kb_10=A rss_kb_last=B growth_kb=C     (or requests=N ...)
 * MM_THREADS sets the thread count (default 1). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_session.h"

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int ask(mm_session *s, const char *image) {
    mm_media media[2];
    memset(media, 0, sizeof media);
    media[0].kind = media[1].kind = MM_MEDIA_FILE;
    media[0].path = media[1].path = image;
    mm_ask_params a = mm_ask_params_default();
    a.prompt = "Compare the two images.";
    a.media = media;
    a.n_media = 2;
    a.max_tokens = 8;
    a.seed = 1;
    char *text = NULL;
    mm_status st = mm_session_ask(s, &a, &text);
    mm_string_free(text);
    if (st != MM_OK) fprintf(stderr, "ask failed: %s\n", mm_last_error());
    return st == MM_OK ? 0 : 1;
}

enum { BATCH = 4 };

/* The batched mode's four askers: threads that live for the whole run (threads made per cycle
 * would each bring a malloc arena whose size wanders, and hide what the library holds). Each
 * cycle, the main thread makes the sessions, the askers ask at once, the main thread destroys. */
static struct {
    pthread_barrier_t start, done;
    mm_session *sessions[BATCH];
    const char *image;
    long cycles;
    int failed[BATCH];
} batch;

static void *asker(void *arg) {
    int i = (int)(size_t)arg;
    for (long c = 0; c < batch.cycles; c++) {
        pthread_barrier_wait(&batch.start);
        batch.failed[i] |= ask(batch.sessions[i], batch.image);
        pthread_barrier_wait(&batch.done);
    }
    return NULL;
}

/* One batched cycle: a session with BATCH slots and BATCH - 1 forks, asked at once, then
 * destroyed, the parent first. */
static int batched_cycle(const mm_session_params *p) {
    mm_session_params bp = *p;
    bp.n_parallel = BATCH;
    if (mm_session_create(&bp, &batch.sessions[0]) != MM_OK) {
        fprintf(stderr, "create failed: %s\n", mm_last_error());
        return 1;
    }
    for (int i = 1; i < BATCH; i++)
        if (mm_session_fork(batch.sessions[0], NULL, &batch.sessions[i]) != MM_OK) {
            fprintf(stderr, "fork failed: %s\n", mm_last_error());
            return 1;
        }
    pthread_barrier_wait(&batch.start);
    pthread_barrier_wait(&batch.done);
    for (int i = 0; i < BATCH; i++)
        if (mm_session_destroy(batch.sessions[i]) != MM_OK) return 1;
    for (int i = 0; i < BATCH; i++)
        if (batch.failed[i]) return 1;
    return 0;
}

/* Starts the askers for `cycles` cycles. */
static int start_askers(long cycles, const char *image, pthread_t *threads) {
    batch.cycles = cycles;
    batch.image = image;
    pthread_barrier_init(&batch.start, NULL, BATCH + 1);
    pthread_barrier_init(&batch.done, NULL, BATCH + 1);
    for (int i = 0; i < BATCH; i++)
        if (pthread_create(&threads[i], NULL, asker, (void *)(size_t)i) != 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL MMPROJ IMAGE N [--requests | --batched]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[4]);
    int requests = argc > 5 && strcmp(argv[5], "--requests") == 0;
    int batched = argc > 5 && strcmp(argv[5], "--batched") == 0;
    if (n < 10) {
        fprintf(stderr, "N must be at least 10\n");
        return 2;
    }
    mm_log_set(MM_LOG_ERROR, NULL, NULL);
    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.mmproj_path = argv[2];
    p.n_ctx = 512;
    p.seed = 1;
    const char *threads = getenv("MM_THREADS");
    p.n_threads = threads ? atoi(threads) : 1;

    mm_session *s = NULL;
    long rss10 = 0, rss_last = 0;
    pthread_t askers[BATCH];
    if (batched && start_askers(n, argv[3], askers) != 0) return 1;
    for (long i = 1; i <= n; i++) {
        if (batched) {
            if (batched_cycle(&p) != 0) return 1;
        } else if (!requests || i == 1) {
            if (mm_session_create(&p, &s) != MM_OK) {
                fprintf(stderr, "create failed at %ld: %s\n", i, mm_last_error());
                return 1;
            }
        }
        if (!batched && ask(s, argv[3]) != 0) return 1;
        if (!requests && !batched && mm_session_destroy(s) != MM_OK) return 1;
        if (i == 1 || i == 10 || i == n) {
            long kb = rss_kb();
            printf("%s %ld: rss_kb=%ld\n", requests ? "request" : "cycle", i, kb);
            if (i == 10) rss10 = kb;
            if (i == n) rss_last = kb;
        }
    }
    if (requests) mm_session_destroy(s);
    if (batched)
        for (int i = 0; i < BATCH; i++) pthread_join(askers[i], NULL);
    printf("live sessions: %zu\n", mm_live_sessions());
    printf("%s=%ld rss_kb_10=%ld rss_kb_last=%ld growth_kb=%ld\n", requests ? "requests" : "cycles", n, rss10,
           rss_last, rss_last - rss10);
    return mm_live_sessions() == 0 ? 0 : 1;
}
