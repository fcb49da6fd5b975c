package mmsession

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fixtures is the folder of the generated test models: the tiny random pair (tiny-llama.gguf,
// tiny-mmproj.gguf, tiny-image.png), its audio projector (tiny-audio-mmproj.gguf,
// tiny-tone.wav) and the pair that sees (seeing-llama.gguf, seeing-mmproj.gguf,
// seeing-<colour>.png), written by mm-fixtures for this run.
var fixtures string

// TestMain writes the fixtures with mm-fixtures: $MM_FIXTURES, or the source tree's
// target/release/mm-fixtures (and the RPC test runs the mm-rpc-server next to it).
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// fixturesBin is the path of mm-fixtures.
func fixturesBin() string {
	if bin := os.Getenv("MM_FIXTURES"); bin != "" {
		return bin
	}
	return filepath.Join("..", "..", "target", "release", "mm-fixtures")
}

func run(m *testing.M) int {
	bin := fixturesBin()
	dir, err := os.MkdirTemp("", "mmsession-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command(bin, dir, "--audio", "--seeing").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "mm-fixtures (%s; set MM_FIXTURES to its path): %v\n%s", bin, err, out)
		return 1
	}
	fixtures = dir
	// The tests provoke errors that llama.cpp logs (a bad grammar, say): keep the output quiet.
	if err := SetLogger(LogOff, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func fixture(name string) string { return filepath.Join(fixtures, name) }

// tinyParams opens the tiny random pair with one thread (tests share two cores).
func tinyParams() Params {
	return Params{Model: fixture("tiny-llama.gguf"), Mmproj: fixture("tiny-mmproj.gguf"), NCtx: 2048, NThreads: 1, Seed: Ptr[uint32](1)}
}

// seeingParams opens the pair that names an image's colour.
func seeingParams() Params {
	return Params{Model: fixture("seeing-llama.gguf"), Mmproj: fixture("seeing-mmproj.gguf"), NCtx: 1024, NThreads: 1}
}

// open opens p and closes the session when the test ends.
func open(t testing.TB, p Params) *Session {
	t.Helper()
	s, err := Open(p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// greedy is a short greedy request with a prompt and media.
func greedy(prompt string, media ...Media) Request {
	return Request{Prompt: prompt, Media: media, MaxTokens: 8, Temperature: Ptr(0.0)}
}

// checkNoSessions fails unless every session of the test has been freed.
func checkNoSessions(t testing.TB) {
	t.Helper()
	if n := LiveSessions(); n != 0 {
		t.Fatalf("live sessions: %d, want 0", n)
	}
	if n := LoadedModels(); n != 0 {
		t.Fatalf("loaded models: %d, want 0", n)
	}
}
