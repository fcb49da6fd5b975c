/* demo MODEL MMPROJ RED_IMAGE BLUE_IMAGE: the main job of mm-session, on the generated pair that
 * sees (mm-fixtures --seeing): one conversation, two turns, each with a picture. The second
 * turn keeps the first in the KV cache, so only the new picture is encoded. Then the memory
 * report, the one destroy, and how many sessions are left. */
#include <stdio.h>

#include "mm_session.h"

static bool print_piece(void *user_data, const char *text, size_t len) {
    (void)user_data;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* Asks the chat so far and prints the answer as it streams; returns it (free it). */
static char *turn(mm_session *s, const mm_message *chat, size_t n) {
    mm_ask_params a = mm_ask_params_default();
    a.messages = chat;
    a.n_messages = n;
    a.temperature = 0.0f;
    a.max_tokens = 16;
    a.on_text = print_piece;
    printf("user: %s\nassistant: ", chat[n - 1].text);
    char *answer = NULL;
    if (mm_session_ask(s, &a, &answer) != MM_OK) {
        fprintf(stderr, "\nask failed: %s\n", mm_last_error());
        return NULL;
    }
    mm_ask_info info = {.struct_size = sizeof info};
    mm_session_last_ask(s, &info);
    printf("\n  (%u positions, %u reused from the cache, %u picture encoded, %.1f ms)\n\n", info.prompt_positions, info.positions_reused,
           info.media_encoded, info.prompt_ms + info.generate_ms);
    return answer;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL MMPROJ RED_IMAGE BLUE_IMAGE\n", argv[0]);
        return 2;
    }
    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.mmproj_path = argv[2];
    p.n_ctx = 1024;
    p.n_threads = 1;
    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) {
        fprintf(stderr, "create failed: %s\n", mm_last_error());
        return 1;
    }

    mm_media red = {.kind = MM_MEDIA_FILE, .path = argv[3]};
    mm_media blue = {.kind = MM_MEDIA_FILE, .path = argv[4]};
    mm_message chat[3] = {{.role = "user", .text = "What colour is this picture?", .media = &red, .n_media = 1}};
    char *first = turn(s, chat, 1);
    int ok = first != NULL;
    if (ok) {
        chat[1] = (mm_message){.role = "assistant", .text = first};
        chat[2] = (mm_message){.role = "user", .text = "And this one?", .media = &blue, .n_media = 1};
        char *second = turn(s, chat, 3);
        ok = second != NULL;
        mm_string_free(second);
    }
    mm_string_free(first);

    mm_memory_stats m = {.struct_size = sizeof m};
    if (mm_session_memory(s, &m) == MM_OK) {
        printf("memory (MiB)     host      gpu\n");
        printf("  model      %8.3f %8.3f\n", mib(m.model_host), mib(m.model_gpu));
        printf("  kv cache   %8.3f %8.3f\n", mib(m.kv_host), mib(m.kv_gpu));
        printf("  compute    %8.3f %8.3f\n", mib(m.compute_host), mib(m.compute_gpu));
        printf("  projector  %8.3f %8.3f\n", mib(m.projector_host), mib(m.projector_gpu));
    }
    mm_session_destroy(s); /* projector, context, model: everything */
    printf("live sessions: %zu\n", mm_live_sessions());
    return ok ? 0 : 1;
}
