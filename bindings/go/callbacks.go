package mmsession

// The Go functions the library calls back. C holds no Go pointer: its user data is a
// runtime/cgo.Handle (an integer) naming the call's relay, deleted when the call returns.

/*
#cgo pkg-config: mm-session
#include <stddef.h>
#include <stdint.h>
#include "mm_session.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// relay carries the Go callbacks of one call across the library. A panic in them must not
// unwind through the library's C frames (its locks would stay held): it is caught, the call is
// stopped (the callback returns false, or stop cancels the call), and rethrow raises it again
// once the call has returned.
type relay struct {
	onText      func(piece string) bool
	onToken     func(chosen TokenLogprob, top []TokenLogprob)
	onProgress  func(progress float64) bool
	onReasoning func(piece string) bool
	onToolCall  func(delta ToolCallDelta) bool
	stop        func()
	panicked    bool
	panicValue  any
}

// text hands one piece to onText; a panic stops the call (false).
func (r *relay) text(piece string) (more bool) {
	defer r.catch()
	return r.onText(piece)
}

// reasoning hands one piece of reasoning to onReasoning; a panic stops the call (false).
func (r *relay) reasoning(piece string) (more bool) {
	defer r.catch()
	return r.onReasoning(piece)
}

// toolCall hands one change of a tool call to onToolCall; a panic stops the call (false).
func (r *relay) toolCall(delta ToolCallDelta) (more bool) {
	defer r.catch()
	return r.onToolCall(delta)
}

// token hands one generated token and its alternatives to onToken.
func (r *relay) token(chosen TokenLogprob, top []TokenLogprob) {
	defer r.catch()
	r.onToken(chosen, top)
}

// progress hands the load's progress to onProgress; a panic cancels the load (false).
func (r *relay) progress(p float64) (more bool) {
	defer r.catch()
	return r.onProgress(p)
}

// catch keeps the panic of the callback it is deferred in; the callback then returns false.
// (Before Go 1.21, recover cannot tell panic(nil) from no panic: that one only stops the call.)
func (r *relay) catch() {
	if v := recover(); v != nil {
		r.panicked, r.panicValue = true, v
		if r.stop != nil {
			r.stop()
		}
	}
}

// rethrow raises the panic a callback raised, if any (a nil relay: none).
func (r *relay) rethrow() {
	if r != nil && r.panicked {
		panic(r.panicValue)
	}
}

func relayOf(userData C.uintptr_t) *relay {
	return cgo.Handle(userData).Value().(*relay)
}

//export mmgoText
func mmgoText(userData C.uintptr_t, text *C.char, n C.size_t) C._Bool {
	return C._Bool(relayOf(userData).text(C.GoStringN(text, C.int(n))))
}

//export mmgoReasoning
func mmgoReasoning(userData C.uintptr_t, text *C.char, n C.size_t) C._Bool {
	return C._Bool(relayOf(userData).reasoning(C.GoStringN(text, C.int(n))))
}

//export mmgoToolCall
func mmgoToolCall(userData C.uintptr_t, d *C.mm_tool_call_delta) C._Bool {
	delta := ToolCallDelta{Index: int(d.index), ID: C.GoString(d.id), Name: C.GoString(d.name), Arguments: C.GoString(d.arguments)}
	return C._Bool(relayOf(userData).toolCall(delta))
}

//export mmgoToken
func mmgoToken(userData C.uintptr_t, chosen *C.mm_token_logprob, top *C.mm_token_logprob, n C.size_t) {
	alternatives := make([]TokenLogprob, int(n))
	if n > 0 {
		for i, t := range unsafe.Slice(top, int(n)) {
			alternatives[i] = goToken(&t)
		}
	}
	relayOf(userData).token(goToken(chosen), alternatives)
}

func goToken(t *C.mm_token_logprob) TokenLogprob {
	return TokenLogprob{Token: int(t.token), Logprob: float64(t.logprob), Text: C.GoStringN(t.text, C.int(t.len))}
}

//export mmgoProgress
func mmgoProgress(userData C.uintptr_t, progress C.float) C._Bool {
	return C._Bool(relayOf(userData).progress(float64(progress)))
}

//export mmgoLog
func mmgoLog(_ unsafe.Pointer, level C.int32_t, message *C.char) {
	logMessage(Level(level), C.GoString(message))
}
