/* test_dispatch MODEL MMPROJ IMAGE: run against the dispatcher (scripts/dispatch.sh), prints the
 * copy of the library the process mapped (from /proc/self/maps) and its build info, then asks
 * the tiny pair about an image through the dispatched functions (arguments, results, strings
 * and callbacks pass through the stubs). scripts/check-dispatch.sh reads the first line. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "mm_session.h"

/* The libmm_session-LEVEL.so file this process mapped, or "none". */
static void print_copy(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096], found[4096] = "none";
    while (maps && fgets(line, sizeof line, maps)) {
        char *name = strstr(line, "libmm_session-");
        if (name) {
            name[strcspn(name, "\n")] = '\0';
            snprintf(found, sizeof found, "%s", name);
        }
    }
    if (maps) fclose(maps);
    printf("copy=%s\n", found);
}

static bool count_pieces(void *user_data, const char *text, size_t len) {
    (void)text;
    (void)len;
    ++*(int *)user_data;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    print_copy();
    printf("build_info=%s\n", mm_build_info());
    mm_log_set(MM_LOG_ERROR, NULL, NULL);
    mm_session_params p = mm_session_params_default();
    p.model_path = argv[1];
    p.mmproj_path = argv[2];
    p.n_ctx = 512;
    p.n_threads = 1;
    mm_session *s = NULL;
    if (mm_session_create(&p, &s) != MM_OK) {
        fprintf(stderr, "create: %s\n", mm_last_error());
        return 1;
    }
    mm_media image;
    memset(&image, 0, sizeof image);
    image.kind = MM_MEDIA_FILE;
    image.path = argv[3];
    mm_ask_params a = mm_ask_params_default();
    a.prompt = "Describe <__media__>.";
    a.media = &image;
    a.n_media = 1;
    a.max_tokens = 4;
    int pieces = 0;
    a.on_text = count_pieces;
    a.user_data = &pieces;
    char *answer = NULL;
    mm_status st = mm_session_ask(s, &a, &answer);
    printf("ask=%d pieces=%d answer_bytes=%zu\n", (int)st, pieces, answer ? strlen(answer) : 0);
    mm_string_free(answer);
    mm_session_destroy(s);
    /* An error message crosses the stubs too. */
    mm_status again = mm_session_destroy(s);
    printf("destroyed_again=%d error=%s\n", (int)again, mm_last_error());
    return st == MM_OK && pieces > 0 ? 0 : 1;
}
