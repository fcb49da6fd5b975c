/* bench_followup MODEL MMPROJ [RUNS]
 *
 * For K = 1, 4 and 16 images: the time of a one-line follow-up question in a session that
 * keeps the conversation (reuse) and in one that re-evaluates everything (fresh: the cache is
 * emptied first). Medians of RUNS runs (default 3), one thread. Prints
 *   images=K reuse_ms=A fresh_ms=B ratio=B/A
 * Then how long a cancel from another thread takes to stop a call (during prompt evaluation and
 * during generation):
 *   cancel_during=prompt cancel_ms=X
 *   cancel_during=generation cancel_ms=X */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "mm_session.h"

#define SIDE 224
#define MAX_IMAGES 16

static unsigned char *pixels[MAX_IMAGES];
static mm_media images[MAX_IMAGES];

/* Distinct images: gradients with a per-image twist. */
static void make_images(void) {
    for (int k = 0; k < MAX_IMAGES; k++) {
        pixels[k] = malloc(SIDE * SIDE * 3);
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                unsigned char *p = pixels[k] + (y * SIDE + x) * 3;
                p[0] = (unsigned char)(x + 13 * k);
                p[1] = (unsigned char)(y * (k + 1));
                p[2] = (unsigned char)((x ^ y) + 29 * k);
            }
        memset(&images[k], 0, sizeof images[k]);
        images[k].kind = MM_MEDIA_RGB;
        images[k].width = images[k].height = SIDE;
        images[k].data = pixels[k];
        images[k].size = SIDE * SIDE * 3;
    }
}

/* A chat: the first user turn with k images, and optionally the answer and a follow-up. */
static mm_ask_params chat(mm_message *m, int k, const char *answer, const char *question) {
    m[0] = (mm_message){"user", "Describe these pictures.", images, (size_t)k};
    m[1] = (mm_message){"assistant", answer, NULL, 0};
    m[2] = (mm_message){"user", question, NULL, 0};
    mm_ask_params a = mm_ask_params_default();
    a.messages = m;
    a.n_messages = answer ? 3 : 1;
    a.max_tokens = 16;
    a.seed = 1;
    return a;
}

static double timed_ask(mm_session *s, const mm_ask_params *a) {
    double t0 = now_ms();
    if (mm_session_ask(s, a, NULL) != MM_OK) die("ask");
    return now_ms() - t0;
}

struct cancel_job {
    mm_session *s;
    int delay_ms;
    double asked_at;
};

static void *cancel_later(void *arg) {
    struct cancel_job *job = arg;
    struct timespec delay = {job->delay_ms / 1000, (long)(job->delay_ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
    job->asked_at = now_ms();
    mm_session_cancel(job->s);
    return NULL;
}

static void measure_cancel(mm_session *s, mm_ask_params *a, const char *during, int delay_ms) {
    struct cancel_job job = {s, delay_ms, 0};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &job);
    mm_status st = mm_session_ask(s, a, NULL);
    double returned = now_ms();
    pthread_join(t, NULL);
    if (st != MM_ERR_CANCELLED) {
        fprintf(stderr, "cancel during %s: the call ended with %s before the cancel\n", during, mm_status_str(st));
        return;
    }
    printf("cancel_during=%s cancel_ms=%.2f\n", during, returned - job.asked_at);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL MMPROJ [RUNS]\n", argv[0]);
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (runs < 1 || runs > 50) runs = 3;
    mm_log_set(MM_LOG_OFF, NULL, NULL);
    make_images();

    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.mmproj_path = argv[2];
    p.n_ctx = 5120;
    p.n_threads = 1;
    p.seed = 1;
    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) die("create");

    int ks[] = {1, 4, 16};
    for (int i = 0; i < 3; i++) {
        int k = ks[i];
        mm_message m[3];
        mm_session_reset(s);
        char *answer = NULL;
        mm_ask_params first = chat(m, k, NULL, NULL);
        if (mm_session_ask(s, &first, &answer) != MM_OK) die("first turn");
        double reuse[50], fresh[50];
        for (int r = 0; r < runs; r++) {
            char question[64];
            snprintf(question, sizeof question, "In one line: which is brightest (%d)?", r);
            mm_ask_params a = chat(m, k, answer, question);
            reuse[r] = timed_ask(s, &a);
            mm_ask_info info = {.struct_size = sizeof info};
            mm_session_last_ask(s, &info);
            if (info.media_encoded != 0) fprintf(stderr, "warning: reuse run encoded %u images\n", info.media_encoded);
            mm_session_reset(s);
            fresh[r] = timed_ask(s, &a);
        }
        double ru = median(reuse, runs), fr = median(fresh, runs);
        printf("images=%d reuse_ms=%.1f fresh_ms=%.1f ratio=%.1f\n", k, ru, fr, fr / ru);
        fflush(stdout);
        mm_string_free(answer);
    }

    mm_message m[3];
    mm_session_reset(s);
    mm_ask_params a = chat(m, 16, NULL, NULL);
    measure_cancel(s, &a, "prompt", 100);
    mm_session_reset(s);
    mm_ask_params g = chat(m, 1, NULL, NULL);
    g.max_tokens = 4000;
    g.temperature = 1.0f;
    g.grammar = "root ::= [a-z ] root"; /* never ends by itself */
    measure_cancel(s, &g, "generation", 300);

    mm_session_destroy(s);
    for (int k = 0; k < MAX_IMAGES; k++) free(pixels[k]);
    printf("live sessions: %zu\n", mm_live_sessions());
    return 0;
}
