/* gguf-header-len FILE: prints where FILE's tensor data starts (its header length, padded to
 * general.alignment); used by gen_corpus.sh to cut header-only seeds for fuzz_gguf. */
#include <stdio.h>
#include <stdlib.h>

#include "gguf_min.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gguf-header-len FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return 1;
    size_t len = gguf_header_len(buf, (size_t)n);
    if (!len) {
        fprintf(stderr, "%s: not a GGUF file this tool understands\n", argv[1]);
        return 1;
    }
    printf("%zu\n", len);
    return 0;
}
