package mmsession

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenFailuresHaveTheirStatus(t *testing.T) {
	cases := []struct {
		name string
		p    Params
		want error
	}{
		{"missing model", Params{Model: fixture("missing.gguf")}, ErrFileNotFound},
		{"directory", Params{Model: fixtures}, ErrNotAFile},
		{"projector as model", Params{Model: fixture("tiny-mmproj.gguf")}, ErrWrongFileKind},
		{"model as projector", Params{Model: fixture("tiny-llama.gguf"), Mmproj: fixture("tiny-llama.gguf")}, ErrWrongFileKind},
		{"no model", Params{}, ErrNullArgument},
		{"NUL in a path", Params{Model: "a\x00b"}, ErrInvalidArgument},
		{"threads out of range", Params{Model: fixture("tiny-llama.gguf"), NThreads: math.MaxInt32 + 1}, ErrInvalidArgument},
	}
	for _, c := range cases {
		s, err := Open(c.p)
		if s != nil || !errors.Is(err, c.want) {
			t.Errorf("%s: Open = %v, %v; want %v", c.name, s, err, c.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Message == "" || !strings.Contains(err.Error(), e.Status.String()) {
			t.Errorf("%s: error %q lacks its status name or message", c.name, err)
		}
	}
	if _, err := Open(Params{Model: fixture("missing.gguf")}); !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("the message does not name the file: %q", err)
	}
	checkNoSessions(t)
}

func TestAskWithTwoImagesAndTheReports(t *testing.T) {
	s := open(t, tinyParams())
	image, err := os.ReadFile(fixture("tiny-image.png"))
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: "Compare <__media__> and <__media__>.", Media: []Media{File(fixture("tiny-image.png")), Bytes(image)}, MaxTokens: 8, Seed: Ptr[uint32](7)}
	answer, err := s.Ask(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastAsk()
	if err != nil {
		t.Fatal(err)
	}
	if last.MediaEncoded != 2 || last.TokensGenerated < 1 || last.TokensGenerated > 8 || last.PromptPositions == 0 || last.PromptTime <= 0 {
		t.Errorf("LastAsk = %+v", last)
	}
	if last.MediaItems != 2 || last.MediaTokens == 0 || last.PromptTokens+last.MediaPositions != last.PromptPositions {
		t.Errorf("usage in LastAsk = %+v", last)
	}
	if last.StopReason == StopMaxTokens && answer == "" {
		t.Errorf("8 tokens generated and no text")
	}
	info, err := s.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.NCtx != 2048 || !info.SupportsVision || info.SupportsAudio || info.Marker != "<__media__>" || info.NPast != last.PromptPositions+last.TokensGenerated-1 && info.NPast != last.PromptPositions+last.TokensGenerated {
		t.Errorf("Info = %+v (last ask %+v)", info, last)
	}
	if marker, err := s.Marker(); marker != info.Marker || err != nil {
		t.Errorf("Marker = %q, %v", marker, err)
	}
	mem, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if mem.ModelHost == 0 || mem.KVHost == 0 || mem.ComputeHost == 0 || mem.ProjectorHost == 0 || mem.SharedBy != 1 {
		t.Errorf("Memory = %+v", mem)
	}
	n, err := s.CountTokens(req)
	if err != nil || n != last.PromptPositions {
		t.Errorf("CountTokens = %d, %v; the request took %d positions", n, err, last.PromptPositions)
	}
}

func TestStreamGivesTheTextOfAsk(t *testing.T) {
	s := open(t, tinyParams())
	req := Request{Prompt: "Describe <__media__>.", Media: []Media{File(fixture("tiny-image.png"))}, MaxTokens: 12, Seed: Ptr[uint32](3)}
	want, err := s.Ask(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	if err := s.Stream(context.Background(), req, func(p string) bool { pieces = append(pieces, p); return true }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pieces, ""); got != want {
		t.Errorf("streamed %q, asked %q", got, want)
	}

	// Returning false stops generation, and the call succeeds.
	calls := 0
	if err := s.Stream(context.Background(), req, func(string) bool { calls++; return false }); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastAsk(); calls != 1 || last.StopReason != StopCallback {
		t.Errorf("%d calls, stop reason %v", calls, last.StopReason)
	}
	if err := s.Stream(context.Background(), req, nil); !errors.Is(err, ErrNullArgument) {
		t.Errorf("Stream(nil) = %v", err)
	}
}

func TestAPanicInTheStreamFuncGoesOnAfterTheCall(t *testing.T) {
	s := open(t, tinyParams())
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		_ = s.Stream(context.Background(), greedy("Hello"), func(string) bool { panic("boom") })
		t.Error("Stream returned")
	}()
	if _, err := s.Ask(context.Background(), greedy("Hello again")); err != nil {
		t.Errorf("the session after a panic: %v", err)
	}
}

// The pair that sees answers "red" about the red image, whichever way the image comes.
func TestTheImageReachesTheModel(t *testing.T) {
	s := open(t, seeingParams())
	path := fixture("seeing-red.png")
	encoded, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := png.Decode(strings.NewReader(string(encoded)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		media Media
		want  string
	}{
		{"path", File(path), "red"},
		{"bytes", Bytes(encoded), "red"},
		{"image.Image", Image(decoded), "red"},
		{"image.NRGBA", Image(solid(image.NewNRGBA, color.NRGBA{0, 0, 255, 128})), "blue"},
		{"image.RGBA, premultiplied", Image(solid(image.NewRGBA, color.RGBA{0, 128, 0, 128})), "green"},
		{"image.Gray", Image(solid(func(r image.Rectangle) *image.Gray { return image.NewGray(r) }, color.Gray{255})), "white"},
		{"raw RGB", RGB(32, 32, []byte(strings.Repeat("\xff\xff\x00", 32*32))), "yellow"},
	}
	for _, c := range cases {
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		answer, err := s.Ask(context.Background(), greedy("<__media__>\nWhat colour is this picture?", c.media))
		if strings.TrimSpace(answer) != c.want || err != nil {
			t.Errorf("%s: %q, %v; want %q", c.name, answer, err, c.want)
		}
		chat, err := s.Ask(context.Background(), Request{Messages: []Message{{Role: "user", Text: "What colour is this picture?", Media: []Media{c.media}}}, MaxTokens: 8, Temperature: Ptr(0.0)})
		if strings.TrimSpace(chat) != c.want || err != nil {
			t.Errorf("%s as a chat: %q, %v; want %q", c.name, chat, err, c.want)
		}
	}
	// Chat with the library's default sampling.
	answer, err := s.Chat(context.Background(), []Message{{Role: "user", Text: "What colour is this picture?", Media: []Media{File(fixture("seeing-black.png"))}}})
	if strings.TrimSpace(answer) != "black" || err != nil {
		t.Errorf("Chat: %q, %v", answer, err)
	}
}

// solid is a 32x32 image (the seeing projector's size) of one colour, offset from the origin.
func solid[I interface {
	image.Image
	Set(x, y int, c color.Color)
}](make func(image.Rectangle) I, c color.Color) I {
	img := make(image.Rect(5, 7, 37, 39))
	for y := 7; y < 39; y++ {
		for x := 5; x < 37; x++ {
			img.Set(x, y, c)
		}
	}
	return img
}

func TestMediaTheLibraryRefuses(t *testing.T) {
	s := open(t, tinyParams())
	ctx := context.Background()
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"missing file", greedy("x", File(fixture("none.png"))), ErrFileNotFound},
		{"bad bytes", greedy("x", Bytes([]byte("not an image"))), ErrMediaDecode},
		{"short RGB", greedy("x", RGB(4, 4, make([]byte, 10))), ErrInvalidArgument},
		{"negative RGB size", greedy("x", RGB(-1, 4, nil)), ErrInvalidArgument},
		{"huge image", greedy("x", Image(image.NewUniform(color.Black))), ErrInvalidArgument},
		{"marker count", greedy("<__media__> <__media__>", File(fixture("tiny-image.png"))), ErrMediaCount},
		{"audio for a vision projector", greedy("x", PCM(make([]float32, 1600))), ErrUnsupported},
		{"NUL in the prompt", greedy("a\x00b"), ErrInvalidArgument},
		{"empty stop string", Request{Prompt: "x", Stop: []string{""}}, ErrInvalidArgument},
		{"bad grammar", Request{Prompt: "x", Grammar: "root ::= ("}, ErrInvalidArgument},
		{"prompt and messages", Request{Prompt: "x", Messages: []Message{{Role: "user", Text: "y"}}}, ErrInvalidArgument},
		{"top_k out of range", Request{Prompt: "x", TopK: Ptr(-1 << 40)}, ErrInvalidArgument},
		{"context full", Request{Prompt: strings.Repeat("word ", 3000)}, ErrContextFull},
	}
	for _, c := range cases {
		if _, err := s.Ask(ctx, c.req); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if n, err := s.CountTokens(Request{Prompt: strings.Repeat("word ", 3000)}); !errors.Is(err, ErrContextFull) || n <= 2048 {
		t.Errorf("CountTokens of a prompt that does not fit: %d, %v", n, err)
	}
	if _, err := s.Ask(ctx, greedy("still fine")); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
}

func TestStopStringsAndGrammar(t *testing.T) {
	s := open(t, tinyParams())
	answer, err := s.Ask(context.Background(), Request{Prompt: "Say yes.", Grammar: `root ::= "yes" " no" "!"`, MaxTokens: 16, Stop: []string{" no"}})
	if err != nil || answer != "yes" {
		t.Errorf("%q, %v; want the grammar's text up to the stop string", answer, err)
	}
	if last, _ := s.LastAsk(); last.StopReason != StopString {
		t.Errorf("stop reason %v", last.StopReason)
	}
}

func TestAudioFromSamples(t *testing.T) {
	s := open(t, Params{Model: fixture("tiny-llama.gguf"), Mmproj: fixture("tiny-audio-mmproj.gguf"), NCtx: 2048, NThreads: 1})
	info, err := s.Info()
	if err != nil || !info.SupportsAudio || info.AudioSampleRate != 16000 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	samples := make([]float32, info.AudioSampleRate)
	for i := range samples {
		samples[i] = float32(0.3 * math.Sin(float64(i)*0.05))
	}
	for _, m := range []Media{PCM(samples), File(fixture("tiny-tone.wav"))} {
		if _, err := s.Ask(context.Background(), greedy("What is this sound?", m)); err != nil {
			t.Fatal(err)
		}
		if last, _ := s.LastAsk(); last.MediaEncoded != 1 {
			t.Errorf("media encoded: %d", last.MediaEncoded)
		}
	}
}

func TestStateSavedAndLoaded(t *testing.T) {
	s := open(t, seeingParams())
	chat := []Message{{Role: "user", Text: "What colour is this picture?", Media: []Media{File(fixture("seeing-green.png"))}}}
	first, err := s.Ask(context.Background(), Request{Messages: chat, MaxTokens: 8, Temperature: Ptr(0.0)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "chat.mmstate")
	if err := s.SaveState(path); err != nil {
		t.Fatal(err)
	}
	other := open(t, seeingParams())
	if err := other.LoadState(path); err != nil {
		t.Fatal(err)
	}
	follow := append(chat, Message{Role: "assistant", Text: first}, Message{Role: "user", Text: "And this one?", Media: []Media{File(fixture("seeing-blue.png"))}})
	answer, err := other.Ask(context.Background(), Request{Messages: follow, MaxTokens: 8, Temperature: Ptr(0.0)})
	if err != nil || strings.TrimSpace(answer) != "blue" {
		t.Errorf("follow-up after LoadState: %q, %v", answer, err)
	}
	if last, _ := other.LastAsk(); last.PositionsReused == 0 || last.MediaEncoded != 1 {
		t.Errorf("the loaded conversation was not reused: %+v", last)
	}

	bad := filepath.Join(t.TempDir(), "bad.mmstate")
	if err := os.WriteFile(bad, []byte("not a state"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := other.LoadState(bad); !errors.Is(err, ErrStateCorrupt) && !errors.Is(err, ErrFileUnreadable) {
		t.Errorf("LoadState of a bad file: %v", err)
	}
	if err := other.SaveState(t.TempDir()); !errors.Is(err, ErrIO) {
		t.Errorf("SaveState over a directory: %v", err)
	}
}

func TestForksShareTheModel(t *testing.T) {
	parent, err := Open(seeingParams())
	if err != nil {
		t.Fatal(err)
	}
	chat := []Message{{Role: "user", Text: "What colour is this picture?", Media: []Media{File(fixture("seeing-yellow.png"))}}}
	if _, err := parent.Ask(context.Background(), Request{Messages: chat, MaxTokens: 8, Temperature: Ptr(0.0)}); err != nil {
		t.Fatal(err)
	}
	fork, err := parent.Fork(ForkParams{CopyConversation: true, NCtx: 512})
	if err != nil {
		t.Fatal(err)
	}
	if LiveSessions() != 2 || LoadedModels() != 1 {
		t.Errorf("%d sessions, %d models", LiveSessions(), LoadedModels())
	}
	if mem, _ := fork.Memory(); mem.SharedBy != 2 {
		t.Errorf("shared by %d", mem.SharedBy)
	}
	// The parent goes first; the fork keeps the weights.
	if err := parent.Close(); err != nil {
		t.Fatal(err)
	}
	answer, err := fork.Ask(context.Background(), Request{Messages: chat, MaxTokens: 8, Temperature: Ptr(0.0)})
	if err != nil || strings.TrimSpace(answer) != "yellow" {
		t.Errorf("fork: %q, %v", answer, err)
	}
	if last, _ := fork.LastAsk(); last.MediaEncoded != 0 {
		t.Errorf("the fork encoded the copied conversation's image again")
	}
	if info, _ := fork.Info(); info.NCtx != 512 {
		t.Errorf("fork context %d", info.NCtx)
	}
	if _, err := parent.Fork(ForkParams{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Fork of a closed session: %v", err)
	}
	if err := fork.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoSessions(t)
}

func TestProgressAndItsCancel(t *testing.T) {
	var seen []float64
	p := tinyParams()
	p.Progress = func(f float64) bool { seen = append(seen, f); return true }
	s := open(t, p)
	if len(seen) == 0 || seen[len(seen)-1] != 1 {
		t.Errorf("progress %v", seen)
	}
	_ = s
	p.Progress = func(float64) bool { return false }
	if _, err := Open(p); !errors.Is(err, ErrCancelled) {
		t.Errorf("Open cancelled by its progress func: %v", err)
	}
	p.Progress = func(float64) bool { panic("load panic") }
	func() {
		defer func() {
			if r := recover(); r != "load panic" {
				t.Errorf("recovered %v", r)
			}
		}()
		_, _ = Open(p)
	}()
	if LiveSessions() != 1 {
		t.Errorf("live sessions %d, want the one open", LiveSessions())
	}
}

func TestLogger(t *testing.T) {
	var got []string
	var levels []Level
	done := make(chan struct{})
	if err := SetLogger(LogInfo, func(level Level, message string) {
		select {
		case <-done:
		default:
			got = append(got, message)
			levels = append(levels, level)
		}
	}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(tinyParams())
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetLogger(LogOff, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(got) == 0 {
		t.Fatal("no log messages at info level during Open")
	}
	for _, l := range levels {
		if l < LogInfo || l > LogError {
			t.Errorf("level %v below the minimum", l)
		}
	}
	if err := SetLogger(Level(42), func(Level, string) {}); !errors.Is(err, ErrInvalidArgument) || logger.Load() != nil {
		t.Errorf("SetLogger(42) = %v, and the logger changed", err)
	}
}

func TestAZeroSessionIsClosed(t *testing.T) {
	var zero Session
	if _, err := zero.Ask(context.Background(), greedy("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Ask: %v", err)
	}
	if err := zero.Cancel(); !errors.Is(err, ErrClosed) {
		t.Errorf("Cancel: %v", err)
	}
	if err := zero.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestVersion(t *testing.T) {
	v := VersionNumber()
	if v/10000 != HeaderVersionNumber/10000 || v/100%100 != HeaderVersionNumber/100%100 || v < HeaderVersionNumber {
		t.Errorf("library %d, header %d", v, HeaderVersionNumber)
	}
	if want := fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100); Version() != want {
		t.Errorf("Version() = %q, want %q", Version(), want)
	}
}

func TestSpeedAndMemoryOptionsReachTheLibrary(t *testing.T) {
	p := tinyParams()
	p.KVTypeV, p.FlashAttn = KVQ8_0, FlashAttnOff
	if _, err := Open(p); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "kv_type_v") {
		t.Errorf("a quantized V cache without flash attention: %v", err)
	}
	p = tinyParams()
	p.NUbatch = p.NCtx + 1
	if _, err := Open(p); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "n_ubatch") {
		t.Errorf("n_ubatch above n_batch: %v", err)
	}
	p = tinyParams()
	p.FlashAttn, p.NUbatch = FlashAttnOn, 64
	s := open(t, p)
	if got, err := s.Ask(context.Background(), Request{Prompt: "hi", MaxTokens: 2}); err != nil {
		t.Errorf("ask with flash attention on and n_ubatch 64: %q, %v", got, err)
	}
	if info := BuildInfo(); !strings.HasPrefix(info, "mm-session "+Version()+"; target-cpu: ") {
		t.Errorf("BuildInfo: %q", info)
	}
}
