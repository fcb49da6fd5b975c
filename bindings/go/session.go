package mmsession

/*
#include <stdint.h>
#include "mm_session.h"

// The Go functions of callbacks.go that the library calls back. They take the user data (a
// cgo handle, a small integer) as an integer: held in a Go pointer, it is an invalid pointer
// that the runtime throws on when it copies the callback's stack.
extern _Bool mmgoText(uintptr_t user_data, char *text, size_t len);
extern void mmgoToken(uintptr_t user_data, mm_token_logprob *chosen, mm_token_logprob *top, size_t n_top);
extern _Bool mmgoProgress(uintptr_t user_data, float progress);
extern _Bool mmgoReasoning(uintptr_t user_data, char *text, size_t len);
extern _Bool mmgoToolCall(uintptr_t user_data, mm_tool_call_delta *delta);

static bool mmgo_on_text(void *user_data, const char *text, size_t len) {
	return mmgoText((uintptr_t)user_data, (char *)text, len);
}

static void mmgo_on_token(void *user_data, const mm_token_logprob *chosen, const mm_token_logprob *top, size_t n_top) {
	mmgoToken((uintptr_t)user_data, (mm_token_logprob *)chosen, (mm_token_logprob *)top, n_top);
}

static bool mmgo_on_progress(void *user_data, float progress) {
	return mmgoProgress((uintptr_t)user_data, progress);
}

static bool mmgo_on_reasoning(void *user_data, const char *text, size_t len) {
	return mmgoReasoning((uintptr_t)user_data, (char *)text, len);
}

static bool mmgo_on_tool_call(void *user_data, const mm_tool_call_delta *delta) {
	return mmgoToolCall((uintptr_t)user_data, (mm_tool_call_delta *)delta);
}

// Sends a request's text (text), its tokens (token), its reasoning (reasoning) and its tool
// calls (tool_call) to the relay of cgo handle h.
static void mmgo_relay_to(mm_ask_params *p, uintptr_t h, bool text, bool token, bool reasoning, bool tool_call) {
	p->user_data = (void *)h;
	if (text) p->on_text = mmgo_on_text;
	if (token) p->on_token = mmgo_on_token;
	if (reasoning) p->on_reasoning = mmgo_on_reasoning;
	if (tool_call) p->on_tool_call = mmgo_on_tool_call;
}

// Sends the load's progress to the relay of cgo handle h.
static void mmgo_progress_to(mm_session_params *p, uintptr_t h) {
	p->progress_callback = mmgo_on_progress;
	p->progress_user_data = (void *)h;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Session is one loaded multimodal model: text model, context and projector behind one handle
// of the library. Close frees it; a Session that is never closed is freed by a finalizer when
// it becomes unreachable, but that is only a safety net.
//
// Every method may be called from any goroutine. Calls on one session take turns; Close
// cancels the call in progress, waits for it, and frees the session, after which every method
// returns ErrClosed. The func of Stream must not call back into its own session except Cancel:
// such a call returns ErrBusy instead of waiting for itself. Sessions come from Open and Fork
// (a zero Session is a closed one).
type Session struct {
	// turn is held (one token) by the one goroutine that uses the handle, from before its
	// library call until after it; Close takes it too, so no call uses a destroyed handle.
	turn chan struct{}
	// thread is the OS thread inside a library call on this session, 0 when none: a call made
	// from that thread is a callback calling back into its own session.
	thread atomic.Uintptr

	mu      sync.Mutex    // guards h and closing
	h       *C.mm_session // nil once destroyed
	closing bool
	closed  chan struct{} // closed once the session is destroyed
}

// Open loads the model and projector that p names. The error says which file failed and why
// (ErrFileNotFound, ErrWrongFileKind, ErrProjectorMismatch, ...).
func Open(p Params) (*Session, error) {
	mem := &cmem{}
	defer mem.free()
	c, err := p.cParams(mem)
	if err != nil {
		return nil, err
	}
	var r *relay
	if p.Progress != nil {
		r = &relay{onProgress: p.Progress}
		h := cgo.NewHandle(r)
		defer h.Delete()
		C.mmgo_progress_to(&c, C.uintptr_t(h))
	}
	var h *C.mm_session
	if err := libCall(func() uint32 { return C.mm_session_create(&c, &h) }); err != nil {
		r.rethrow()
		return nil, err
	}
	s := newSession(h)
	if r != nil && r.panicked { // the load finished all the same: the caller never sees it
		s.Close()
		r.rethrow()
	}
	return s, nil
}

// newSession wraps a handle the library created, with the finalizer that frees it if the
// Session is dropped without Close.
func newSession(h *C.mm_session) *Session {
	s := &Session{turn: make(chan struct{}, 1), h: h, closed: make(chan struct{})}
	runtime.SetFinalizer(s, (*Session).finalize)
	return s
}

// finalize frees a session that became unreachable without Close. Unreachable, it has no
// call in flight.
func (s *Session) finalize() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.mm_session_destroy(s.h)
		s.h = nil
	}
}

// Close cancels the call in progress on the session, if any, waits for it to return, and frees
// everything the session holds: its context, and the model and projector unless a fork still
// shares them. Closing again, from any goroutine, waits for the first Close and returns nil.
// From a callback of the session's own call it returns ErrBusy and closes nothing.
func (s *Session) Close() error {
	if s.turn == nil {
		return nil
	}
	if s.onCallThread() {
		return busy("Close")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.closed
		return nil
	}
	s.closing = true
	h := s.h
	s.mu.Unlock()

	s.takeTurnCancelling(h)
	s.mu.Lock()
	s.h = nil
	s.mu.Unlock()
	runtime.SetFinalizer(s, nil)
	err := libCall(func() uint32 { return C.mm_session_destroy(h) })
	close(s.closed)
	<-s.turn // calls waiting for their turn find the session closed
	return err
}

// takeTurnCancelling takes the session's turn, cancelling the calls that hold it meanwhile.
// The cancel is repeated every millisecond: it only stops a call the library has started.
func (s *Session) takeTurnCancelling(h *C.mm_session) {
	select {
	case s.turn <- struct{}{}:
		return
	default:
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		C.mm_session_cancel(h)
		select {
		case s.turn <- struct{}{}:
			return
		case <-tick.C:
		}
	}
}

// Cancel stops the call running on the session, if any, from any goroutine: it returns
// ErrCancelled, and the session stays usable. A call that starts later is not affected (a
// context cancels one call of its own).
func (s *Session) Cancel() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return closedError("Cancel")
	}
	return libCall(func() uint32 { return C.mm_session_cancel(s.h) })
}

// Marker is the text that stands for a media item in this session's prompts.
func (s *Session) Marker() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return "", closedError("Marker")
	}
	var marker *C.char
	err := libCall(func() uint32 {
		if marker = C.mm_session_marker(s.h); marker == nil {
			return C.MM_ERR_INVALID_HANDLE
		}
		return C.MM_OK
	})
	return C.GoString(marker), err
}

// Ask asks one question and returns the whole answer.
func (s *Session) Ask(ctx context.Context, req Request) (string, error) {
	return s.ask(ctx, "Ask", req, nil, nil)
}

// Stream asks one question and hands the answer to onPiece as it is generated, in pieces of
// whole UTF-8 characters; onPiece returns false to stop generating (Stream then returns nil).
// onPiece runs on the goroutine that called Stream. If it panics, generation stops and the
// panic goes on from Stream once the library has returned.
func (s *Session) Stream(ctx context.Context, req Request, onPiece func(piece string) bool) error {
	if onPiece == nil {
		return &Error{Status: StatusNullArgument, Message: "mmsession: Stream without a func"}
	}
	_, err := s.ask(ctx, "Stream", req, onPiece, nil)
	return err
}

// Chat asks with chat messages, rendered with the session's chat template, and returns the
// answer. For sampling options, set Request.Messages and call Ask.
func (s *Session) Chat(ctx context.Context, messages []Message) (string, error) {
	return s.ask(ctx, "Chat", Request{Messages: messages}, nil, nil)
}

// ask runs one request: its C params are built before the session's turn is taken, the call
// is cancelled when ctx is done, and a streaming func's panic is raised again at the end. With
// last, the answer's message and stop reason are read in the same turn.
func (s *Session) ask(ctx context.Context, op string, req Request, onPiece func(string) bool, last *lastAnswer) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", cancelled(op, err)
	}
	mem := &cmem{}
	defer mem.free()
	c, err := req.cParams(mem)
	if err != nil {
		return "", err
	}
	var r *relay
	if onPiece != nil || req.OnToken != nil || req.OnReasoning != nil || req.OnToolCall != nil {
		r = &relay{onText: onPiece, onToken: req.OnToken, onReasoning: req.OnReasoning, onToolCall: req.OnToolCall, stop: func() { s.Cancel() }}
		h := cgo.NewHandle(r)
		defer h.Delete()
		C.mmgo_relay_to(&c, C.uintptr_t(h), onPiece != nil, req.OnToken != nil, req.OnReasoning != nil, req.OnToolCall != nil)
	}
	var text *C.char
	out := &text // the whole answer, when it is not streamed
	if onPiece != nil {
		out = nil
	}
	err = s.use(ctx, op, func(h *C.mm_session) uint32 {
		status := C.mm_session_ask(h, &c, out)
		if status == C.MM_OK && last != nil {
			status = last.read(h)
		}
		return status
	})
	r.rethrow()
	if err != nil || text == nil {
		return "", err
	}
	answer := C.GoString(text)
	C.mm_string_free(text)
	return answer, nil
}

// CountTokens counts the positions req's prompt would take in the context (text tokens and
// media embeddings, after the chat template), without evaluating anything. A request that does
// not fit gets its count too, with ErrContextFull.
func (s *Session) CountTokens(req Request) (int, error) {
	mem := &cmem{}
	defer mem.free()
	c, err := req.cParams(mem)
	if err != nil {
		return 0, err
	}
	var n C.uint32_t
	err = s.use(context.Background(), "CountTokens", func(h *C.mm_session) uint32 {
		return C.mm_session_count_tokens(h, &c, &n)
	})
	return int(n), err
}

// Tokenize gives the token ids of text with the session's model, without the tokens the model
// adds around a prompt (BOS), for Request.LogitBias for instance. With parseSpecial, the text
// of a control token (such as "<|im_end|>") becomes that token.
func (s *Session) Tokenize(text string, parseSpecial bool) ([]int, error) {
	mem := &cmem{}
	defer mem.free()
	ctext, err := mem.str(text, "Tokenize text")
	if err != nil {
		return nil, err
	}
	// A token takes at least one byte of the text; the margin is for a tokenizer's leading
	// space. A longer answer gets its count, and a second call.
	tokens := make([]C.int32_t, len(text)+8)
	var n C.size_t
	for {
		err := s.use(context.Background(), "Tokenize", func(h *C.mm_session) uint32 {
			return C.mm_session_tokenize(h, ctext, C.bool(parseSpecial), &tokens[0], C.size_t(len(tokens)), &n)
		})
		if err != nil {
			return nil, err
		}
		if int(n) <= len(tokens) {
			break
		}
		tokens = make([]C.int32_t, int(n))
	}
	ids := make([]int, int(n))
	for i := range ids {
		ids[i] = int(tokens[i])
	}
	return ids, nil
}

// Info reports the context size, positions in use, media support and marker.
func (s *Session) Info() (Info, error) {
	var c C.mm_session_info
	c.struct_size = C.sizeof_mm_session_info
	err := s.use(context.Background(), "Info", func(h *C.mm_session) uint32 { return C.mm_session_get_info(h, &c) })
	var info Info
	infoFields.fromC(unsafe.Pointer(&c), reflect.ValueOf(&info).Elem())
	return info, err
}

// Memory reports the bytes the session holds, by use and by place.
func (s *Session) Memory() (MemoryStats, error) {
	var c C.mm_memory_stats
	c.struct_size = C.sizeof_mm_memory_stats
	err := s.use(context.Background(), "Memory", func(h *C.mm_session) uint32 { return C.mm_session_memory(h, &c) })
	var m MemoryStats
	memoryFields.fromC(unsafe.Pointer(&c), reflect.ValueOf(&m).Elem())
	return m, err
}

// LastAsk reports the figures of the session's last finished request: positions, positions
// reused from the cache, media encoded, tokens generated, why it stopped, times.
func (s *Session) LastAsk() (AskInfo, error) {
	var c C.mm_ask_info
	c.struct_size = C.sizeof_mm_ask_info
	err := s.use(context.Background(), "LastAsk", func(h *C.mm_session) uint32 { return C.mm_session_last_ask(h, &c) })
	var info AskInfo
	askInfoFields.fromC(unsafe.Pointer(&c), reflect.ValueOf(&info).Elem())
	return info, err
}

// Reset empties the conversation cache: the next request evaluates everything.
func (s *Session) Reset() error {
	return s.use(context.Background(), "Reset", func(h *C.mm_session) uint32 { return C.mm_session_reset(h) })
}

// SaveState writes the conversation (KV cache and the record of what it holds) to path, for
// LoadState in a session of the same model and projector files.
func (s *Session) SaveState(path string) error {
	return s.withPath("SaveState", path, func(h *C.mm_session, p *C.char) uint32 { return C.mm_session_save_state(h, p) })
}

// LoadState replaces the conversation with one SaveState wrote. A file of other model files
// (ErrStateMismatch) or a damaged one (ErrStateCorrupt) leaves the session as it was.
func (s *Session) LoadState(path string) error {
	return s.withPath("LoadState", path, func(h *C.mm_session, p *C.char) uint32 { return C.mm_session_load_state(h, p) })
}

func (s *Session) withPath(op, path string, call func(*C.mm_session, *C.char) uint32) error {
	mem := &cmem{}
	defer mem.free()
	p, err := mem.str(path, op+" path")
	if err != nil {
		return err
	}
	return s.use(context.Background(), op, func(h *C.mm_session) uint32 { return call(h, p) })
}

// Fork makes a new session that shares this one's text model and projector (nothing is loaded
// again) with a context of its own, and optionally a copy of this one's conversation. Close
// both, in any order: the weights are freed with the last.
func (s *Session) Fork(p ForkParams) (*Session, error) {
	c, err := p.cParams()
	if err != nil {
		return nil, err
	}
	var out *C.mm_session
	if err := s.use(context.Background(), "Fork", func(h *C.mm_session) uint32 { return C.mm_session_fork(h, &c, &out) }); err != nil {
		return nil, err
	}
	return newSession(out), nil
}

// use runs call on the session's handle in the session's turn: it waits for the turn (or for
// ctx), refuses a closed session, and cancels the call when ctx is done. The call runs on one
// locked OS thread, which is recorded as the session's call thread (callbacks run there) and
// where mm_last_error is read when it fails.
func (s *Session) use(ctx context.Context, op string, call func(*C.mm_session) uint32) error {
	if s.turn == nil {
		return closedError(op)
	}
	if s.onCallThread() {
		return busy(op)
	}
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return cancelled(op, ctx.Err())
	}
	defer func() { <-s.turn }()
	s.mu.Lock()
	h := s.h
	if s.closing {
		h = nil
	}
	s.mu.Unlock()
	if h == nil {
		return closedError(op)
	}
	stop := cancelWhenDone(ctx, h)
	err := libCall(func() uint32 {
		s.thread.Store(threadID())
		defer s.thread.Store(0)
		return call(h)
	})
	stop()
	if ctx.Err() != nil && errors.Is(err, ErrCancelled) {
		err.(*Error).cause = ctx.Err()
	}
	return err
}

// cancelWhenDone cancels the library call on h once ctx is done, and again every millisecond
// until stop is called (a cancel that lands before the library starts the call does not apply
// to it). stop returns once nothing more will be cancelled, so the next turn is safe.
func cancelWhenDone(ctx context.Context, h *C.mm_session) (stop func()) {
	done := ctx.Done()
	if done == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-quit:
			return
		case <-done:
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			C.mm_session_cancel(h)
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// onCallThread tells whether the calling goroutine runs on the thread inside this session's
// library call: then it is a callback of that call (a cgo callback keeps its goroutine on that
// thread, and no other goroutine runs there meanwhile).
func (s *Session) onCallThread() bool {
	t := s.thread.Load()
	return t != 0 && t == threadID()
}

func busy(op string) error {
	return &Error{Status: StatusBusy, Message: fmt.Sprintf("mmsession: %s from a callback of a call on the same session (only Cancel may be called there)", op)}
}

func closedError(op string) error {
	return &Error{Status: StatusInvalidHandle, Message: fmt.Sprintf("mmsession: %s on a closed session", op)}
}

// cancelled is the error of a call whose context was done before it started.
func cancelled(op string, ctxErr error) error {
	return &Error{Status: StatusCancelled, Message: fmt.Sprintf("mmsession: %s not started", op), cause: ctxErr}
}
