// Package cbench asks mm-session's C API directly, with no Go binding in between: the baseline
// of the binding's overhead benchmark (bench_test.go in the package above). A test file cannot
// use cgo, so the C half lives here.
package cbench

/*
#cgo pkg-config: mm-session
#include <stdlib.h>
#include <string.h>
#include <time.h>

// CPU time of the whole process, in nanoseconds.
static int64_t cpu_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
#include "mm_session.h"

// The request of the benchmark, as a C program writes it: one image from a file, a greedy
// answer of max_tokens tokens, from an empty cache (reset first), as a whole string or
// streamed to a callback that keeps the pieces' total length.
static bool count_piece(void *user_data, const char *text, size_t len) {
	(void)text;
	*(size_t *)user_data += len;
	return true;
}

static mm_status ask_once(mm_session *s, const char *prompt, const char *image, int32_t max_tokens, bool stream, size_t *length) {
	mm_status st = mm_session_reset(s);
	if (st != MM_OK) return st;
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
	st = mm_session_ask(s, &a, stream ? NULL : &text);
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

// Session is a C session with the C strings of the benchmark's request.
type Session struct {
	s             *C.mm_session
	prompt, image *C.char
	maxTokens     C.int32_t
}

// Open creates a session of model and mmproj (n_ctx, one thread) for the request prompt about
// image, answered in maxTokens tokens.
func Open(model, mmproj string, nCtx int, prompt, image string, maxTokens int) (*Session, error) {
	cModel, cMmproj := C.CString(model), C.CString(mmproj)
	defer C.free(unsafe.Pointer(cModel))
	defer C.free(unsafe.Pointer(cMmproj))
	p := C.mm_session_params_default()
	p.model_path, p.mmproj_path, p.n_ctx, p.n_threads = cModel, cMmproj, C.uint32_t(nCtx), 1
	var s *C.mm_session
	if st := C.mm_session_create(&p, &s); st != C.MM_OK {
		return nil, fmt.Errorf("mm_session_create: %d", st)
	}
	return &Session{s: s, prompt: C.CString(prompt), image: C.CString(image), maxTokens: C.int32_t(maxTokens)}, nil
}

// Ask resets the session and asks the request, streamed or not; it returns the answer's
// length in bytes.
func (s *Session) Ask(stream bool) (int, error) {
	var length C.size_t
	if st := C.ask_once(s.s, s.prompt, s.image, s.maxTokens, C.bool(stream), &length); st != C.MM_OK {
		return 0, fmt.Errorf("mm_session_ask: %d", st)
	}
	return int(length), nil
}

// Close destroys the session and frees the strings.
func (s *Session) Close() {
	C.mm_session_destroy(s.s)
	C.free(unsafe.Pointer(s.prompt))
	C.free(unsafe.Pointer(s.image))
}
