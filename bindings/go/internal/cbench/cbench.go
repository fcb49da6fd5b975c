// Package cbench asks mm-session's C API directly, with no Go binding in between: the baseline
// of the binding's overhead benchmark (bench_test.go in the package above). A test file cannot
// use cgo, so the C half lives here.
package cbench

/*
#cgo pkg-config: mm-session
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mm_session.h"

// CPU time of the whole process, in nanoseconds.
static int64_t cpu_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// The request of the benchmark, as a C program writes it: one image from a file, a greedy
// answer of max_tokens tokens, as a whole string or streamed to a callback that keeps the
// pieces' total length, which *length receives.
static bool count_piece(void *user_data, const char *text, size_t len) {
	(void)text;
	*(size_t *)user_data += len;
	return true;
}

static mm_status ask_once(mm_session *s, const char *prompt, const char *image, int32_t max_tokens, bool stream, size_t *length) {
	mm_media media = {.kind = MM_MEDIA_FILE, .path = image};
	mm_ask_params a = mm_ask_params_default();
	a.prompt = prompt;
	a.media = &media;
	a.n_media = 1;
	a.max_tokens = max_tokens;
	a.temperature = 0.0f;
	size_t total = 0;
	char *text = NULL;
	if (stream) {
		a.on_text = count_piece;
		a.user_data = &total;
	}
	mm_status st = mm_session_ask(s, &a, stream ? NULL : &text);
	*length = text ? strlen(text) : total;
	mm_string_free(text);
	return st;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// CPUTime is the CPU time the process has used, all threads together: unlike wall time, it
// does not count the time other processes hold the cores.
func CPUTime() time.Duration { return time.Duration(C.cpu_ns()) }

// Asker asks the benchmark's request on a session through the C API, with its C strings made
// once.
type Asker struct {
	s         *C.mm_session
	prompt    *C.char
	images    []*C.char
	maxTokens C.int32_t
}

// NewAsker asks prompt about one of images, answered in maxTokens tokens, on session, an
// mm_session handle that the caller owns (and keeps alive while the Asker is used).
func NewAsker(session unsafe.Pointer, prompt string, images []string, maxTokens int) *Asker {
	a := &Asker{s: (*C.mm_session)(session), prompt: C.CString(prompt), maxTokens: C.int32_t(maxTokens)}
	for _, image := range images {
		a.images = append(a.images, C.CString(image))
	}
	return a
}

// Ask asks the request about images[image], streamed or not; it returns the answer's length in
// bytes.
func (a *Asker) Ask(image int, stream bool) (int, error) {
	var length C.size_t
	if st := C.ask_once(a.s, a.prompt, a.images[image], a.maxTokens, C.bool(stream), &length); st != C.MM_OK {
		return 0, fmt.Errorf("mm_session_ask: %d", st)
	}
	return int(length), nil
}

// Free frees the C strings.
func (a *Asker) Free() {
	C.free(unsafe.Pointer(a.prompt))
	for _, image := range a.images {
		C.free(unsafe.Pointer(image))
	}
}
