/*
 * mm_dispatch.c: the libmm_session.so that packages ship. It holds no code of the library: it
 * loads, when the process loads it, the copy of the library built for the best x86-64 level
 * this CPU runs (libmm_session-x86-64-v4-vnni.so, -v4.so, -v3.so or -v2.so, from its own
 * folder; v4-vnni is x86-64-v4 with AVX512-VNNI, VBMI and BF16), and every
 * exported mm_* function jumps to that copy's (the stubs the build generates from the copies'
 * symbols: one indirect jump each, so arguments and results pass untouched).
 *
 * MM_SESSION_CPU=v2|v3|v4|v4-vnni (or x86-64-v2, ...) picks a level; a level this CPU cannot run is
 * refused with a message on stderr, and the best it runs is loaded instead. mm_build_info()
 * of the copy loaded names its level ("target-cpu: x86-64-v3").
 *
 * A package without a copy this CPU runs is a broken install, as a missing shared library is:
 * the process stops at load with a message that names the folder and the files.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mm_dispatch_names.h"

/* Read by the stubs (mm_dispatch_stubs.S): entry i is the loaded copy's MM_DISPATCH_NAMES[i]. */
__attribute__((visibility("hidden"))) void *mm_dispatch_table[MM_DISPATCH_COUNT];

/* The levels, best first. */
static const char *const LEVELS[] = {"x86-64-v4-vnni", "x86-64-v4", "x86-64-v3", "x86-64-v2"};
enum { N_LEVELS = sizeof LEVELS / sizeof LEVELS[0] };

static int runs(int level) {
    __builtin_cpu_init();
    switch (level) {
    case 0:
        return __builtin_cpu_supports("x86-64-v4") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bf16");
    case 1: return __builtin_cpu_supports("x86-64-v4");
    case 2: return __builtin_cpu_supports("x86-64-v3");
    default: return __builtin_cpu_supports("x86-64-v2");
    }
}

/* The level MM_SESSION_CPU names, -1 when unset, -2 when it names none. */
static int forced_level(void) {
    const char *v = getenv("MM_SESSION_CPU");
    if (!v || !*v) return -1;
    if (strncmp(v, "x86-64-", 7) == 0) v += 7;
    for (int i = 0; i < N_LEVELS; i++)
        if (strcmp(v, LEVELS[i] + 7) == 0) return i;
    return -2;
}

/* Loads the copy of `level` from `dir` and fills the table; 0 on success. */
static int load(const char *dir, int level, char *why, size_t why_size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/libmm_session-%s.so", dir, LEVELS[level]);
    void *copy = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!copy) {
        snprintf(why, why_size, "%s", dlerror());
        return -1;
    }
    for (int i = 0; i < MM_DISPATCH_COUNT; i++) {
        mm_dispatch_table[i] = dlsym(copy, MM_DISPATCH_NAMES[i]);
        if (!mm_dispatch_table[i]) {
            snprintf(why, why_size, "libmm_session-%s.so lacks %s", LEVELS[level], MM_DISPATCH_NAMES[i]);
            dlclose(copy);
            return -1;
        }
    }
    return 0;
}

__attribute__((constructor)) static void mm_dispatch_init(void) {
    Dl_info self;
    char dir[4096] = ".";
    if (dladdr((void *)mm_dispatch_init, &self) && self.dli_fname) {
        snprintf(dir, sizeof dir, "%s", self.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    int first = 0;
    int forced = forced_level();
    if (forced == -2)
        fprintf(stderr, "mm-session: MM_SESSION_CPU=%s is not one of v2, v3, v4, v4-vnni; ignored\n",
                getenv("MM_SESSION_CPU"));
    else if (forced >= 0 && !runs(forced))
        fprintf(stderr, "mm-session: MM_SESSION_CPU=%s: this CPU cannot run %s; ignored\n", getenv("MM_SESSION_CPU"),
                LEVELS[forced]);
    else if (forced >= 0)
        first = forced;
    char why[4096] = "this CPU runs none of the levels (x86-64-v2 at least is needed)";
    for (int level = first; level < N_LEVELS; level++)
        if (runs(level) && load(dir, level, why, sizeof why) == 0) return;
    fprintf(stderr, "mm-session: no copy of the library in %s could be loaded (libmm_session-x86-64-LEVEL.so): %s\n",
            dir, why);
    abort();
}
