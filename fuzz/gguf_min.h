/*
 * gguf_min.h: the length of a well-formed GGUF file's header (metadata and tensor infos,
 * padded to general.alignment), i.e. where its tensor data starts. Used on the generated
 * fixtures only (trusted input): by gguf-header-len for the seed corpus, and by fuzz_gguf to
 * find the tensor data it appends to header-only inputs. Returns 0 if the file is not a GGUF
 * it understands.
 */
#ifndef MM_FUZZ_GGUF_MIN_H
#define MM_FUZZ_GGUF_MIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t n, o;
    int bad;
} gguf_rd;

static inline uint64_t gguf_take(gguf_rd *r, size_t k) {
    uint64_t v = 0;
    if (r->o + k > r->n) {
        r->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < k; i++) v |= (uint64_t)r->p[r->o + i] << (8 * i);
    r->o += k;
    return v;
}

static inline void gguf_skip(gguf_rd *r, uint64_t k) {
    if (k > r->n - r->o) r->bad = 1;
    else r->o += (size_t)k;
}

/* Size of a scalar of GGUF type t; 0 for string (8) and array (9), -1 unknown. */
static inline int gguf_scalar_size(uint32_t t) {
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : -1;
}

static inline void gguf_skip_value(gguf_rd *r, uint32_t t, uint64_t *u32_out) {
    if (t == 8) {
        gguf_skip(r, gguf_take(r, 8));
    } else if (t == 9) {
        uint32_t at = (uint32_t)gguf_take(r, 4);
        uint64_t n = gguf_take(r, 8);
        for (uint64_t i = 0; i < n && !r->bad; i++) gguf_skip_value(r, at, NULL);
    } else {
        int s = gguf_scalar_size(t);
        if (s <= 0) {
            r->bad = 1;
            return;
        }
        uint64_t v = gguf_take(r, (size_t)s);
        if (u32_out) *u32_out = v;
    }
}

static inline size_t gguf_header_len(const uint8_t *p, size_t n) {
    gguf_rd r = {p, n, 0, 0};
    if (n < 4 || memcmp(p, "GGUF", 4) != 0) return 0;
    r.o = 4;
    uint32_t version = (uint32_t)gguf_take(&r, 4);
    if (version < 2) return 0;
    uint64_t n_tensors = gguf_take(&r, 8), n_kv = gguf_take(&r, 8);
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
        uint64_t klen = gguf_take(&r, 8);
        if (klen > n) return 0;
        int is_align = klen == 17 && r.o + 17 <= n && memcmp(p + r.o, "general.alignment", 17) == 0;
        gguf_skip(&r, klen);
        uint32_t t = (uint32_t)gguf_take(&r, 4);
        uint64_t v = 0;
        gguf_skip_value(&r, t, is_align ? &v : NULL);
        if (is_align && v) alignment = v;
    }
    for (uint64_t i = 0; i < n_tensors && !r.bad; i++) {
        gguf_skip(&r, gguf_take(&r, 8));
        uint32_t nd = (uint32_t)gguf_take(&r, 4);
        gguf_skip(&r, (uint64_t)nd * 8 + 4 + 8);
    }
    if (r.bad) return 0;
    size_t end = (r.o + alignment - 1) / alignment * alignment;
    return end <= n ? end : 0;
}

#endif
