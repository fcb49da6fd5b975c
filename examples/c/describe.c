/* describe MODEL MMPROJ IMAGE... [-p PROMPT]: streams an answer about the images, prints the
 * session's memory report, destroys the session and prints how many sessions are left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_session.h"

static bool print_piece(void *user_data, const char *text, size_t len) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL MMPROJ IMAGE... [-p PROMPT]\n", argv[0]);
        return 2;
    }
    const char *prompt = "Describe the image.";
    mm_media *media = calloc((size_t)argc, sizeof *media);
    size_t n_media = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            prompt = argv[++i];
        } else {
            media[n_media].kind = MM_MEDIA_FILE;
            media[n_media].path = argv[i];
            n_media++;
        }
    }

    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.mmproj_path = argv[2];
    p.n_ctx = 2048;
    const char *threads = getenv("MM_THREADS");
    if (threads) p.n_threads = atoi(threads);

    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) {
        fprintf(stderr, "create failed: %s\n", mm_last_error());
        free(media);
        return 1;
    }

    mm_ask_params a = mm_ask_params_default();
    a.prompt = prompt;
    a.media = media;
    a.n_media = n_media;
    a.max_tokens = 48;
    a.seed = 7;
    a.on_text = print_piece;
    mm_status st = mm_session_ask(s, &a, NULL);
    printf("\n");
    if (st != MM_OK) fprintf(stderr, "ask failed: %s\n", mm_last_error());

    mm_ask_info info = {.struct_size = sizeof info};
    if (mm_session_last_ask(s, &info) == MM_OK)
        printf("prompt: %u positions, %u media encoded, %u tokens generated (%.1f ms + %.1f ms)\n",
               info.prompt_positions, info.media_encoded, info.tokens_generated, info.prompt_ms,
               info.generate_ms);

    mm_memory_stats m = {.struct_size = sizeof m};
    if (mm_session_memory(s, &m) == MM_OK) {
        printf("memory (MiB)     host      gpu\n");
        printf("  model      %8.3f %8.3f  (exact)\n", mib(m.model_host), mib(m.model_gpu));
        printf("  kv cache   %8.3f %8.3f  (exact)\n", mib(m.kv_host), mib(m.kv_gpu));
        printf("  compute    %8.3f %8.3f  (exact)\n", mib(m.compute_host), mib(m.compute_gpu));
        printf("  projector  %8.3f %8.3f  (exact)\n", mib(m.projector_host), mib(m.projector_gpu));
    } else {
        fprintf(stderr, "memory report failed: %s\n", mm_last_error());
    }

    mm_session_destroy(s);
    free(media);
    printf("live sessions: %zu\n", mm_live_sessions());
    return st == MM_OK ? 0 : 1;
}
