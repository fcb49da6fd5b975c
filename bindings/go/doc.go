// Package mmsession runs local multimodal LLMs (text and images, and audio where the projector
// has it) through mm-session's C library: one Session owns the text model, its context and its
// projector, and Close frees all of them.
//
// The module is github.com/mm-session/mm-session/bindings/go (go get
// github.com/mm-session/mm-session/bindings/go@v0.3.0); its package name is mmsession:
//
//	import mmsession "github.com/mm-session/mm-session/bindings/go"
//
// A short program:
//
//	s, err := mmsession.Open(mmsession.Params{Model: "model.gguf", Mmproj: "mmproj.gguf"})
//	if err != nil {
//		return err // a *mmsession.Error: errors.Is(err, mmsession.ErrFileNotFound), ...
//	}
//	defer s.Close() // projector, context, model: everything
//	answer, err := s.Ask(ctx, mmsession.Request{
//		Prompt: "What differs between <__media__> and <__media__>?",
//		Media:  []mmsession.Media{mmsession.File("a.jpg"), mmsession.File("b.png")},
//	})
//
// Stream calls a func with each piece of the answer, and Chat takes messages. Reply returns
// the answer as OpenAI's assistant message, with the tool calls of a request with Tools
// (Request.OnToolCall streams them) and the reasoning kept apart from the text. Request fields
// are the C library's request options; a field left at its zero value keeps the library's
// default, and where zero means something else the field is a pointer (mmsession.Ptr(0.0)).
//
// Building: the package links the library with cgo through pkg-config (`#cgo pkg-config:
// mm-session`). After `make install PREFIX=/usr/local`, nothing needs setting; for another
// prefix, set PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig, and CGO_LDFLAGS=-Wl,-rpath,$PREFIX/lib
// so that the program finds the library when it runs. In a source tree of mm-session, `make
// go-pc` writes build/pkgconfig/mm-session.pc for target/release and include/
// (bindings/go/README.md, "Install and link").
//
// Sessions may be used from many goroutines: calls on one session take turns. A call takes a
// context.Context: when it is cancelled or its deadline passes, the library stops the call
// within a graph step, and the error wraps both ctx.Err() and ErrCancelled. Close cancels the
// call in progress, waits for it and destroys the session; it is safe to call twice.
//
// Many conversations on one model: Open with Params.NParallel = 8, Fork the session (with no
// context settings of its own), and ask the sessions from different goroutines at once: they
// share one context with 8 slots, and their requests decode together, one step carrying every
// session's next token (AskInfo.MostTogether tells how many). A fork beyond the slots still
// works: its request waits for a slot (AskInfo.SlotWait).
//
// bindings/go/README.md is the full guide: options, errors, callbacks and memory, RPC, and
// the tests and their figures.
package mmsession
