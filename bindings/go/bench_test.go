package mmsession

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"mm-session/mmsession/internal/cbench"
)

// The binding's overhead on one request: the same request asked through the C API directly
// (internal/cbench) and through this package, in alternating order, b.N times each. Each
// request is timed in wall time and in the process's CPU time; the overhead is the difference
// of the medians, in percent of C's. For Ask, the CPU-time figure must stay under 3% once
// there are enough rounds to tell (make bench-go runs 300): on a machine other jobs share,
// wall time mostly measures when the kernel lets the process run. Stream's figure is reported
// only: each piece is a call from C back into Go (a few microseconds where C's callback costs
// nothing), which the tiny model, at about 50 microseconds a token, makes look large.
func BenchmarkOverhead(b *testing.B) {
	const prompt, maxTokens, limitPercent, minRounds = "Describe <__media__> in a few words.", 16, 3.0, 50
	image := fixture("tiny-image.png")
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "Ask", true: "Stream"}[stream]
		b.Run(name, func(b *testing.B) {
			c, err := cbench.Open(fixture("tiny-llama.gguf"), fixture("tiny-mmproj.gguf"), 2048, prompt, image, maxTokens)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s := open(b, tinyParams())
			goAsk := goRequest(s, Request{Prompt: prompt, Media: []Media{File(image)}, MaxTokens: maxTokens, Temperature: Ptr(0.0)}, stream)
			cAsk := func() (int, error) { return c.Ask(stream) }
			// Both halves must do the same work: the same greedy answer.
			if cLen, err := cAsk(); err != nil || cLen == 0 {
				b.Fatalf("C: %d bytes, %v", cLen, err)
			} else if goLen, err := goAsk(); err != nil || goLen != cLen {
				b.Fatalf("Go: %d bytes, %v; C: %d bytes", goLen, err, cLen)
			}
			b.ResetTimer()
			var cTimes, goTimes timings
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					cTimes.measure(b, cAsk)
					goTimes.measure(b, goAsk)
				} else {
					goTimes.measure(b, goAsk)
					cTimes.measure(b, cAsk)
				}
			}
			b.StopTimer()
			wall, cpu := overhead(cTimes.wall, goTimes.wall), overhead(cTimes.cpu, goTimes.cpu)
			b.ReportMetric(float64(median(cTimes.cpu).Nanoseconds()), "c-cpu-ns/req")
			b.ReportMetric(float64(median(goTimes.cpu).Nanoseconds()), "go-cpu-ns/req")
			b.ReportMetric(cpu, "overhead-cpu-%")
			b.ReportMetric(wall, "overhead-wall-%")
			if b.N >= minRounds {
				fmt.Printf("overhead %s (median of %d requests each): CPU time C %v, Go %v: %+.2f%%; wall time C %v, Go %v: %+.2f%%\n",
					name, b.N, median(cTimes.cpu), median(goTimes.cpu), cpu, median(cTimes.wall), median(goTimes.wall), wall)
				if !stream && cpu >= limitPercent {
					b.Errorf("the binding adds %.2f%% of CPU time to a request (limit %.0f%%)", cpu, limitPercent)
				}
			}
		})
	}
}

// timings are the wall and CPU times of one half's requests.
type timings struct{ wall, cpu []time.Duration }

func (t *timings) measure(b *testing.B, ask func() (int, error)) {
	wall, cpu := time.Now(), cbench.CPUTime()
	if _, err := ask(); err != nil {
		b.Fatal(err)
	}
	t.cpu = append(t.cpu, cbench.CPUTime()-cpu)
	t.wall = append(t.wall, time.Since(wall))
}

// overhead is how much longer the median of goTimes is than that of cTimes, in percent.
func overhead(cTimes, goTimes []time.Duration) float64 {
	return 100 * float64(median(goTimes)-median(cTimes)) / float64(median(cTimes))
}

// goRequest is the Go half of one round: reset, then ask or stream req, as cbench does; it
// returns the answer's length in bytes.
func goRequest(s *Session, req Request, stream bool) func() (int, error) {
	ctx := context.Background()
	return func() (int, error) {
		if err := s.Reset(); err != nil {
			return 0, err
		}
		if stream {
			total := 0
			err := s.Stream(ctx, req, func(piece string) bool { total += len(piece); return true })
			return total, err
		}
		answer, err := s.Ask(ctx, req)
		return len(answer), err
	}
}

func median(d []time.Duration) time.Duration {
	sorted := append([]time.Duration(nil), d...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[len(sorted)/2]
}
