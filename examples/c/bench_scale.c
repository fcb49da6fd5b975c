/* bench_scale MODEL MMPROJ [TEXT_MODEL]
 *
 * Many conversations on one loaded model: forks against separate creates.
 *   1. Resident memory of 8 sessions made by forking one (one model, 8 contexts) against 8
 *      sessions each created from the files, each measured in a child process of its own from
 *      the same starting point; and the figure forks should not exceed: one model's weights
 *      plus 8 contexts (KV cache and compute buffers, from mm_session_memory) plus 5%.
 *   2. The time of a fork against a create (medians of 5), on MODEL+MMPROJ and, when given,
 *      on TEXT_MODEL alone (for example Gemma 3 270M).
 *   3. A 4-image prefix evaluated once and forked 8 times with its conversation: the images
 *      the 8 forks' first follow-ups encode together (0: the prefix was not evaluated again).
 *   4. Throughput: 8 forks of the prefix on 8 threads, each asking its own question about the
 *      pictures, against the parent asking the same 8 questions in turn (the prefix cached in
 *      both; 1 thread per session).
 * Prints one line per figure; the last line is
 *   forks=8 rss_forks_kb=A rss_creates_kb=B fork_ms=C create_ms=D prefix_media_encoded=E */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mm_session.h"

#define N 8
#define SIDE 224
#define RUNS 5

static const char *model, *mmproj;

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) exit(1);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static mm_session *open_session(const char *text_model, const char *projector) {
    mm_session_params p = mm_session_params_default();
    p.model_path = text_model;
    p.mmproj_path = projector;
    p.n_ctx = 2048;
    p.n_threads = 1;
    p.seed = 5;
    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) die("create");
    return s;
}

static mm_session *fork_of(mm_session *s, bool copy) {
    mm_fork_params fp = mm_fork_params_default();
    fp.copy_conversation = copy;
    mm_session *out = NULL;
    if (mm_session_fork(s, &fp, &out) != MM_OK) die("fork");
    return out;
}

static unsigned char pixels[4][SIDE * SIDE * 3];
static mm_media images[4];

static void make_images(void) {
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < SIDE * SIDE * 3; i++) pixels[k][i] = (unsigned char)(i * (k + 3) + k * 41);
        memset(&images[k], 0, sizeof images[k]);
        images[k].kind = MM_MEDIA_RGB;
        images[k].width = images[k].height = SIDE;
        images[k].data = pixels[k];
        images[k].size = sizeof pixels[k];
    }
}

static void ask(mm_session *s, const char *prompt, const mm_media *media, size_t n, int max_tokens) {
    mm_ask_params a = mm_ask_params_default();
    a.prompt = prompt;
    a.media = media;
    a.n_media = n;
    a.max_tokens = max_tokens;
    a.temperature = 0.0f;
    char *text = NULL;
    if (mm_session_ask(s, &a, &text) != MM_OK) die("ask");
    mm_string_free(text);
}

/* In a child process: RSS added by N sessions made by forking (forks = 1) or by creating, each
 * asked once; the child also writes the ceiling (model + N contexts + 5%) for forks. */
static void measure_rss(int forks, long *added_kb, long *ceiling_kb) {
    int fds[2];
    if (pipe(fds)) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        long before = rss_kb();
        mm_session *s[N];
        s[0] = open_session(model, mmproj);
        for (int i = 1; i < N; i++) s[i] = forks ? fork_of(s[0], false) : open_session(model, mmproj);
        for (int i = 0; i < N; i++) ask(s[i], "Hello <__media__>", images, 1, 4);
        long out[2] = {rss_kb() - before, 0};
        mm_memory_stats m = {.struct_size = sizeof m};
        if (mm_session_memory(s[0], &m) != MM_OK) die("memory");
        double weights = (double)(m.model_host + m.projector_host);
        double context = (double)(m.kv_host + m.compute_host);
        out[1] = (long)((weights + N * context) * 1.05 / 1024);
        for (int i = 0; i < N; i++) mm_session_destroy(s[i]);
        if (write(fds[1], out, sizeof out) != sizeof out) exit(1);
        _exit(0);
    }
    long in[2];
    if (read(fds[0], in, sizeof in) != sizeof in) exit(1);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    *added_kb = in[0];
    *ceiling_kb = in[1];
}

/* Medians of a fork and of a create of `text_model` (+ `projector`), in a child process. */
static void measure_times(const char *text_model, const char *projector, double *fork_ms, double *create_ms) {
    int fds[2];
    if (pipe(fds)) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        double f[RUNS], c[RUNS];
        mm_session *parent = open_session(text_model, projector);
        for (int r = 0; r < RUNS; r++) {
            double t = now_ms();
            mm_session *s = open_session(text_model, projector);
            c[r] = now_ms() - t;
            mm_session_destroy(s);
            t = now_ms();
            s = fork_of(parent, false);
            f[r] = now_ms() - t;
            mm_session_destroy(s);
        }
        mm_session_destroy(parent);
        double out[2] = {median(f, RUNS), median(c, RUNS)};
        if (write(fds[1], out, sizeof out) != sizeof out) exit(1);
        _exit(0);
    }
    double in[2];
    if (read(fds[0], in, sizeof in) != sizeof in) exit(1);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    *fork_ms = in[0];
    *create_ms = in[1];
}

static const char *follow = "Pictures: <__media__> <__media__> <__media__> <__media__>. Which one is darkest?";

/* Question i about the shared pictures. */
struct job {
    mm_session *s;
    char prompt[160];
};

static void *ask_thread(void *arg) {
    struct job *j = arg;
    ask(j->s, j->prompt, images, 4, 16);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL MMPROJ [TEXT_MODEL]\n", argv[0]);
        return 2;
    }
    model = argv[1];
    mmproj = argv[2];
    mm_log_set(MM_LOG_ERROR, NULL, NULL);
    make_images();

    long rss_forks, rss_creates, ceiling, unused;
    measure_rss(1, &rss_forks, &ceiling);
    measure_rss(0, &rss_creates, &unused);
    printf("stage=memory sessions=%d rss_forks_kb=%ld rss_creates_kb=%ld ratio=%.2f forks_ceiling_kb=%ld within_ceiling=%s\n", N, rss_forks, rss_creates,
           (double)rss_creates / (double)rss_forks, ceiling, rss_forks <= ceiling ? "yes" : "no");

    double fork_ms, create_ms;
    measure_times(model, mmproj, &fork_ms, &create_ms);
    printf("stage=fork_time model=bench_pair fork_ms=%.2f create_ms=%.2f speedup=%.1f\n", fork_ms, create_ms, create_ms / fork_ms);
    if (argc > 3) {
        double gf, gc;
        measure_times(argv[3], NULL, &gf, &gc);
        printf("stage=fork_time model=%s fork_ms=%.2f create_ms=%.2f speedup=%.1f\n", argv[3], gf, gc, gc / gf);
    }

    /* A shared 4-image prefix, forked 8 times with its conversation. */
    mm_session *parent = open_session(model, mmproj);
    ask(parent, "Pictures: <__media__> <__media__> <__media__> <__media__>.", images, 4, 1);
    mm_session *forks[N];
    unsigned encoded = 0;
    for (int i = 0; i < N; i++) {
        forks[i] = fork_of(parent, true);
        ask(forks[i], follow, images, 4, 4);
        mm_ask_info info = {.struct_size = sizeof info};
        mm_session_last_ask(forks[i], &info);
        encoded += info.media_encoded;
    }
    printf("stage=shared_prefix forks=%d images=4 media_encoded_by_first_follow_ups=%u\n", N, encoded);

    /* Throughput: 8 questions on 8 forks and threads, against the parent asking them in turn. */
    struct job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].s = forks[i];
        snprintf(jobs[i].prompt, sizeof jobs[i].prompt, "Pictures: <__media__> <__media__> <__media__> <__media__>. Question %d: which is brightest?", i);
    }
    double t = now_ms();
    for (int i = 0; i < N; i++) ask(parent, jobs[i].prompt, images, 4, 16);
    double one = now_ms() - t;
    pthread_t th[N];
    t = now_ms();
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, ask_thread, &jobs[i]);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    double parallel = now_ms() - t;
    printf("stage=throughput requests=%d one_session_ms=%.1f forks_on_%d_threads_ms=%.1f speedup=%.2f cores=%ld\n", N, one, N, parallel, one / parallel,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < N; i++) mm_session_destroy(forks[i]);
    mm_session_destroy(parent);
    if (mm_live_sessions() != 0 || mm_loaded_models() != 0) die("sessions or models left");
    printf("forks=%d rss_forks_kb=%ld rss_creates_kb=%ld fork_ms=%.2f create_ms=%.2f prefix_media_encoded=%u\n", N, rss_forks, rss_creates, fork_ms, create_ms,
           encoded);
    return 0;
}
