/* bench_levels MODEL RUNS: prefill and generation times of the library this process loaded
 * (scripts/bench-levels.sh runs it against the native build and against make portable-lib's
 * dispatcher, alternately). Each run evaluates a prompt (about 200 tokens of Gemma 3, 900 of the bench pair) from an empty
 * cache and generates 64 tokens greedily, its end-of-generation tokens banned. Prints
 *   library=BUILD_INFO
 *   prefill_ms=MEDIAN gen_ms_per_token=MEDIAN */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_session.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL RUNS\n", argv[0]);
        return 2;
    }
    int runs = atoi(argv[2]);
    if (runs < 1 || runs > 100) return 2;
    mm_log_set(MM_LOG_ERROR, NULL, NULL);
    printf("library=%s\n", mm_build_info());
    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.n_ctx = 4096;
    p.seed = 1;
    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) {
        fprintf(stderr, "create: %s\n", mm_last_error());
        return 1;
    }
    /* End-of-generation tokens, banned so that every run generates 64 tokens. */
    const char *ends[] = {"<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<eos>"};
    mm_logit_bias bans[4];
    size_t n_bans = 0;
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        int32_t token;
        size_t n = 0;
        if (mm_session_tokenize(s, ends[i], true, &token, 1, &n) == MM_OK && n == 1) {
            bans[n_bans].token = token;
            bans[n_bans].bias = -1e30f;
            n_bans++;
        }
    }
    char prompt[8192] = "";
    for (int i = 0; i < 20; i++) strcat(prompt, "The quick brown fox jumps over the lazy dog. ");
    double prefill[100], gen[100];
    for (int r = 0; r <= runs; r++) {
        mm_session_reset(s);
        mm_ask_params a = mm_ask_params_default();
        a.prompt = prompt;
        a.plain_prompt = true;
        a.max_tokens = 64;
        a.temperature = 0;
        a.logit_bias = bans;
        a.n_logit_bias = n_bans;
        char *text = NULL;
        if (mm_session_ask(s, &a, &text) != MM_OK) {
            fprintf(stderr, "ask: %s\n", mm_last_error());
            return 1;
        }
        mm_string_free(text);
        mm_ask_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        mm_session_last_ask(s, &info);
        if (r == 0) continue; /* warm-up */
        prefill[r - 1] = info.prompt_ms;
        gen[r - 1] = info.generate_ms / (info.tokens_generated ? info.tokens_generated : 1);
    }
    printf("prefill_ms=%.3f gen_ms_per_token=%.3f\n", median(prefill, runs), median(gen, runs));
    mm_session_destroy(s);
    return 0;
}
