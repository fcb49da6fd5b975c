package mmsession

import (
	"context"
	"errors"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endless is a request that only stops at MaxTokens: its grammar never lets the answer end.
func endless(maxTokens int) Request {
	return Request{Prompt: "Count:", Grammar: `root ::= "a" root`, MaxTokens: maxTokens}
}

// isCancelled tells whether err is a call cancelled through ctx: both the library's status and
// the context's error.
func isCancelled(err error, ctxErr error) bool {
	return errors.Is(err, ErrCancelled) && errors.Is(err, ctxErr)
}

func TestACancelledContextCancelsTheCall(t *testing.T) {
	s := open(t, tinyParams())
	ctx, cancel := context.WithCancel(context.Background())
	pieces := 0
	err := s.Stream(ctx, endless(1500), func(string) bool {
		if pieces++; pieces == 3 {
			cancel()
		}
		return true
	})
	if !isCancelled(err, context.Canceled) {
		t.Fatalf("Stream = %v, want ErrCancelled and context.Canceled", err)
	}
	if pieces > 200 {
		t.Errorf("%d pieces after the cancel", pieces)
	}

	// A context that is already done: the call does not start.
	before, _ := s.LastAsk()
	if _, err := s.Ask(ctx, greedy("Hello")); !isCancelled(err, context.Canceled) {
		t.Errorf("Ask with a cancelled context = %v", err)
	}
	if after, _ := s.LastAsk(); after != before {
		t.Errorf("a call ran: %+v", after)
	}
	// The session is still usable.
	if _, err := s.Ask(context.Background(), greedy("Hello")); err != nil {
		t.Errorf("after the cancel: %v", err)
	}
}

// The deadline stops the request in the middle: fewer pieces than it asked for arrive (a
// property, not a duration, so that a busy machine cannot fail it).
func TestADeadlineCancelsTheCall(t *testing.T) {
	s := open(t, tinyParams())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	const maxTokens = 1900
	pieces := 0
	err := s.Stream(ctx, endless(maxTokens), func(string) bool { pieces++; return true })
	if !isCancelled(err, context.DeadlineExceeded) {
		t.Fatalf("Stream = %v, want ErrCancelled and context.DeadlineExceeded", err)
	}
	if pieces >= maxTokens {
		t.Errorf("the cancelled request streamed all its %d pieces", pieces)
	}
}

// A context cancels its own call only: another goroutine's call, running while the first
// waits for its turn, goes on.
func TestAContextCancelsOnlyItsOwnCall(t *testing.T) {
	s := open(t, tinyParams())
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	result := make(chan error)
	// The running call cancels the waiting call's context itself, 100 pieces in: the waiting
	// call has had those pieces' time to queue, and the running call is still running.
	go func() {
		pieces := 0
		result <- s.Stream(context.Background(), endless(300), func(string) bool {
			if pieces++; pieces == 1 {
				close(started)
			} else if pieces == 100 {
				cancel()
			}
			return true
		})
	}()
	<-started
	waiting := make(chan error)
	go func() { _, err := s.Ask(ctx, greedy("Hello")); waiting <- err }()
	if err := <-waiting; !isCancelled(err, context.Canceled) {
		t.Errorf("the waiting call: %v", err)
	}
	if err := <-result; err != nil {
		t.Errorf("the running call: %v", err)
	}
	if last, _ := s.LastAsk(); last.StopReason != StopMaxTokens || last.TokensGenerated != 300 {
		t.Errorf("the running call stopped early: %+v", last)
	}
}

func TestCloseCancelsTheCallInProgress(t *testing.T) {
	s, err := Open(tinyParams())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	result := make(chan error)
	go func() {
		once := sync.Once{}
		result <- s.Stream(context.Background(), endless(1900), func(string) bool { once.Do(func() { close(started) }); return true })
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkNoSessions(t)
	if err := <-result; !errors.Is(err, ErrCancelled) {
		t.Errorf("the call closed under it: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Ask(context.Background(), greedy("Hello")); !errors.Is(err, ErrClosed) {
		t.Errorf("Ask after Close: %v", err)
	}
	for name, err := range map[string]error{
		"Info":   func() error { _, err := s.Info(); return err }(),
		"Cancel": s.Cancel(),
		"Marker": func() error { _, err := s.Marker(); return err }(),
		"Reset":  s.Reset(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func TestConcurrentClosesAllReturnOnceFreed(t *testing.T) {
	s, err := Open(tinyParams())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if n := LiveSessions(); n != 0 {
				t.Errorf("Close returned with %d live sessions", n)
			}
		}()
	}
	wg.Wait()
}

// A callback must not call into its own session: such calls return ErrBusy at once instead of
// waiting for themselves. Cancel works there, and so do other sessions.
func TestCallbacksCallingTheirOwnSession(t *testing.T) {
	s := open(t, tinyParams())
	other := open(t, tinyParams())
	var inside []error
	err := s.Stream(context.Background(), endless(50), func(string) bool {
		if inside != nil {
			return true
		}
		_, infoErr := s.Info()
		_, askErr := s.Ask(context.Background(), greedy("x"))
		_, otherErr := other.Info()
		inside = []error{infoErr, askErr, s.Close(), otherErr, s.Cancel()}
		return true
	})
	if !errors.Is(err, ErrCancelled) {
		t.Errorf("the call that cancelled itself: %v", err)
	}
	want := []error{ErrBusy, ErrBusy, ErrBusy, nil, nil}
	for i := range want {
		if !errors.Is(inside[i], want[i]) || (want[i] == nil) != (inside[i] == nil) {
			t.Errorf("call %d from the callback: %v, want %v", i, inside[i], want[i])
		}
	}
	if _, err := s.Ask(context.Background(), greedy("x")); err != nil {
		t.Errorf("after the callback: %v", err)
	}
}

func TestTheFinalizerFreesAnUnclosedSession(t *testing.T) {
	func() {
		if _, err := Open(tinyParams()); err != nil {
			t.Fatal(err)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); LiveSessions() != 0 && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	checkNoSessions(t)
}

// Eight goroutines share three sessions: they ask with deadlines, stream, cancel, read reports,
// fork, and close sessions that others are using (replacing them with new ones). Every error
// must be a cancel or a closed session; at the end nothing is left.
func TestEightGoroutinesAskCancelAndClose(t *testing.T) {
	var slots [3]atomic.Pointer[Session]
	for i := range slots {
		s, err := Open(tinyParams())
		if err != nil {
			t.Fatal(err)
		}
		slots[i].Store(s)
	}
	expected := func(err error) bool {
		return err == nil || errors.Is(err, ErrCancelled) || errors.Is(err, ErrClosed)
	}
	var counts [6]atomic.Int64
	// Three seconds of the mix, longer where a busy machine has not yet run every operation
	// (at most a minute).
	deadline, hardStop := time.Now().Add(3*time.Second), time.Now().Add(time.Minute)
	everyOpRan := func() bool {
		for i := range counts {
			if counts[i].Load() == 0 {
				return false
			}
		}
		return true
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for now := time.Now(); now.Before(hardStop) && (now.Before(deadline) || !everyOpRan()); now = time.Now() {
				slot := &slots[rng.Intn(len(slots))]
				s := slot.Load()
				op := rng.Intn(20)
				var err error
				switch {
				case op < 9:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.Intn(15000))*time.Microsecond)
					_, err = s.Ask(ctx, Request{Prompt: "Tell <__media__>", Media: []Media{File(fixture("tiny-image.png"))}, MaxTokens: 1 + rng.Intn(40)})
					cancel()
					counts[0].Add(1)
				case op < 12:
					ctx, cancel := context.WithCancel(context.Background())
					stopAt := rng.Intn(20)
					err = s.Stream(ctx, endless(40), func(string) bool {
						if stopAt--; stopAt == 0 {
							cancel()
						}
						return stopAt != -5
					})
					cancel()
					counts[1].Add(1)
				case op < 14:
					err = s.Cancel()
					counts[2].Add(1)
				case op < 16:
					_, err = s.LastAsk()
					if err == nil {
						_, err = s.Memory()
					}
					counts[3].Add(1)
				case op < 17:
					var f *Session
					if f, err = s.Fork(ForkParams{CopyConversation: true}); err == nil {
						_, err = f.Ask(context.Background(), greedy("fork"))
						if closeErr := f.Close(); closeErr != nil {
							t.Errorf("closing a fork: %v", closeErr)
						}
					}
					counts[4].Add(1)
				default:
					fresh, openErr := Open(tinyParams())
					if openErr != nil {
						t.Errorf("Open: %v", openErr)
						return
					}
					if old := slot.Swap(fresh); old != nil {
						err = old.Close()
					}
					counts[5].Add(1)
				}
				if !expected(err) {
					t.Errorf("op %d: unexpected %v", op, err)
				}
			}
		}(int64(g))
	}
	wg.Wait()
	for i := range slots {
		if err := slots[i].Load().Close(); err != nil {
			t.Errorf("final Close: %v", err)
		}
	}
	t.Logf("asks %d, streams %d, cancels %d, reports %d, forks %d, closes %d",
		counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), counts[4].Load(), counts[5].Load())
	for i := range counts {
		if counts[i].Load() == 0 {
			t.Errorf("operation %d never ran", i)
		}
	}
	checkNoSessions(t)
}
