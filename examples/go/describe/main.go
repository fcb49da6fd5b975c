// describe MODEL MMPROJ IMAGE... [-p PROMPT]: streams an answer about the images, prints the
// session's memory report, closes the session and prints how many sessions are left. The Go
// version of examples/c/describe.c; MM_THREADS sets the thread count.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	mmsession "github.com/mm-session/mm-session/bindings/go"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintf(os.Stderr, "usage: %s MODEL MMPROJ IMAGE... [-p PROMPT]\n", os.Args[0])
		os.Exit(2)
	}
	prompt, images := parseArgs(os.Args[3:])
	threads, _ := strconv.Atoi(os.Getenv("MM_THREADS"))
	s, err := mmsession.Open(mmsession.Params{Model: os.Args[1], Mmproj: os.Args[2], NCtx: 2048, NThreads: threads})
	if err != nil {
		fmt.Fprintf(os.Stderr, "open failed: %v\n", err)
		os.Exit(1)
	}
	err = describe(s, prompt, images)
	s.Close()
	fmt.Printf("live sessions: %d\n", mmsession.LiveSessions())
	if err != nil {
		os.Exit(1)
	}
}

// parseArgs splits the arguments after MODEL and MMPROJ into the prompt and the image paths.
func parseArgs(args []string) (prompt string, images []mmsession.Media) {
	prompt = "Describe the image."
	for i := 0; i < len(args); i++ {
		if args[i] == "-p" && i+1 < len(args) {
			i++
			prompt = args[i]
		} else {
			images = append(images, mmsession.File(args[i]))
		}
	}
	return prompt, images
}

// describe streams the answer, then prints the request's figures and the memory report.
func describe(s *mmsession.Session, prompt string, images []mmsession.Media) error {
	req := mmsession.Request{Prompt: prompt, Media: images, MaxTokens: 48, Seed: mmsession.Ptr[uint32](7)}
	err := s.Stream(context.Background(), req, func(piece string) bool {
		fmt.Print(piece)
		return true
	})
	fmt.Println()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ask failed: %v\n", err)
	}
	if info, err := s.LastAsk(); err == nil {
		fmt.Printf("prompt: %d positions, %d media encoded, %d tokens generated (%.1f ms + %.1f ms)\n",
			info.PromptPositions, info.MediaEncoded, info.TokensGenerated, ms(info.PromptTime), ms(info.GenerateTime))
	}
	m, memErr := s.Memory()
	if memErr != nil {
		fmt.Fprintf(os.Stderr, "memory report failed: %v\n", memErr)
		return err
	}
	fmt.Println("memory (MiB)     host      gpu")
	for _, row := range []struct {
		name      string
		host, gpu uint64
	}{{"model", m.ModelHost, m.ModelGPU}, {"kv cache", m.KVHost, m.KVGPU}, {"compute", m.ComputeHost, m.ComputeGPU}, {"projector", m.ProjectorHost, m.ProjectorGPU}} {
		fmt.Printf("  %-9s  %8.3f %8.3f  (exact)\n", row.name, mib(row.host), mib(row.gpu))
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(bytes uint64) float64 { return float64(bytes) / (1024 * 1024) }
