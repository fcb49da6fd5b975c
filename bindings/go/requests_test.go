package mmsession

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	s := open(t, tinyParams())
	text := strings.Repeat("The quick brown fox. ", 20)
	ids, err := s.Tokenize(text, false)
	if err != nil || len(ids) == 0 || len(ids) > len(text)+8 {
		t.Fatalf("Tokenize = %d tokens, %v", len(ids), err)
	}
	if empty, err := s.Tokenize("", false); err != nil || len(empty) != 0 {
		t.Errorf("Tokenize(\"\") = %v, %v", empty, err)
	}
	// The tokens of a prompt are what the prompt takes (no BOS in either: plain text).
	n, err := s.CountTokens(Request{Prompt: text, PlainPrompt: true})
	if err != nil || n < len(ids) || n > len(ids)+1 {
		t.Errorf("CountTokens = %d, %v; Tokenize gave %d", n, err, len(ids))
	}
	if _, err := s.Tokenize("a\x00b", false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Tokenize with a NUL: %v", err)
	}
}

// A large bias on one token makes it every generated token; OnToken sees each token with its
// log-probability and NProbs alternatives, likeliest first.
func TestLogitBiasAndTokenLogprobs(t *testing.T) {
	s := open(t, tinyParams())
	ids, err := s.Tokenize(" fox", false)
	if err != nil || len(ids) == 0 {
		t.Fatalf("Tokenize: %v, %v", ids, err)
	}
	forced := ids[len(ids)-1]
	var chosen []TokenLogprob
	req := Request{Prompt: "Say something.", MaxTokens: 6, Temperature: Ptr(0.0), NProbs: 3,
		LogitBias: []LogitBias{{Token: forced, Bias: 100}},
		OnToken: func(c TokenLogprob, top []TokenLogprob) {
			chosen = append(chosen, c)
			if len(top) != 3 || !sort.SliceIsSorted(top, func(i, j int) bool { return top[i].Logprob > top[j].Logprob }) {
				t.Errorf("alternatives %+v", top)
			}
		}}
	answer, err := s.Ask(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := s.LastAsk()
	if len(chosen) != last.TokensGenerated || len(chosen) == 0 {
		t.Fatalf("%d tokens reported, %d generated", len(chosen), last.TokensGenerated)
	}
	var text strings.Builder
	for _, c := range chosen {
		if c.Token != forced || c.Logprob > 0 || math.IsNaN(c.Logprob) {
			t.Errorf("token %+v, want %d forced", c, forced)
		}
		text.WriteString(c.Text)
	}
	if text.String() != answer {
		t.Errorf("the tokens' text %q differs from the answer %q", text.String(), answer)
	}

	// OnToken works with Stream too, and a panic in it stops the call.
	pieces := 0
	req.MaxTokens, req.LogitBias = 200, nil
	req.OnToken = func(TokenLogprob, []TokenLogprob) { panic("token panic") }
	func() {
		defer func() {
			if r := recover(); r != "token panic" {
				t.Errorf("recovered %v", r)
			}
		}()
		_ = s.Stream(context.Background(), req, func(string) bool { pieces++; return true })
	}()
	if last, _ := s.LastAsk(); last.TokensGenerated == 200 || pieces > 10 {
		t.Errorf("the call went on after the panic: %d pieces, %+v", pieces, last)
	}
	if _, err := s.Ask(context.Background(), greedy("after")); err != nil {
		t.Errorf("after the panic: %v", err)
	}
}

func TestJSONSchemaAndSamplingOptions(t *testing.T) {
	s := open(t, tinyParams())
	ctx := context.Background()
	answer, err := s.Ask(ctx, Request{Prompt: "Is it true?", JSONSchema: `{"type": "boolean"}`, MaxTokens: 8})
	if err != nil || (answer != "true" && answer != "false") {
		t.Errorf("JSON Schema boolean: %q, %v", answer, err)
	}
	// Each option reaches the library: values it refuses come back refused.
	refused := map[string]Request{
		"repeat_penalty":     {RepeatPenalty: -1},
		"typical_p":          {TypicalP: Ptr(2.0)},
		"dry_base":           {DryMultiplier: 1, DryBase: 0.5},
		"dry_allowed_length": {DryMultiplier: 1, DryAllowedLength: -3},
		"n_probs":            {NProbs: 2},
		"json_schema":        {JSONSchema: "{not json"},
		"logit_bias":         {LogitBias: []LogitBias{{Token: 1 << 30, Bias: 1}}},
		"grammar and schema": {Grammar: `root ::= "a"`, JSONSchema: `{"type": "boolean"}`},
		"token id range":     {LogitBias: []LogitBias{{Token: 1 << 40}}},
	}
	for name, req := range refused {
		req.Prompt = "x"
		if _, err := s.Ask(ctx, req); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	accepted := Request{Prompt: "Go on:", MaxTokens: 8, RepeatPenalty: 1.3, PenaltyLastN: Ptr(-1), FrequencyPenalty: 0.5,
		PresencePenalty: 0.5, TypicalP: Ptr(0.9), DryMultiplier: 0.8, DryBase: 2, DryAllowedLength: 3, DryPenaltyLastN: Ptr(0)}
	if _, err := s.Ask(ctx, accepted); err != nil {
		t.Errorf("every sampling option set: %v", err)
	}
}
