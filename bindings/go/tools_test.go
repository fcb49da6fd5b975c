package mmsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// weatherTools are the tools of the C library's tests (crates/capi/tests/capi/tools.rs).
var weatherTools = []Tool{
	{Function: ToolFunction{Name: "get_weather", Description: "The weather in a city.",
		Parameters: json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}, "days": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["city", "days"], "additionalProperties": false}`)}},
	{Type: "function", Function: ToolFunction{Name: "get_time", Description: "The time in a time zone.",
		Parameters: json.RawMessage(`{"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}`)}},
}

// toolParams opens the tiny pair with room for the tools: its tokenizer spells most text byte
// by byte, and the tools' description is long.
func toolParams() Params {
	p := tinyParams()
	p.NCtx = 4096
	return p
}

// validateCall checks a call's arguments against weatherTools' schemas.
func validateCall(call ToolCall) error {
	var args map[string]any
	if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil {
		return fmt.Errorf("arguments are not a JSON object: %v", err)
	}
	switch call.Function.Name {
	case "get_weather":
		city, _ := args["city"].(string)
		days, ok := args["days"].(float64)
		if len(args) != 2 || (city != "Paris" && city != "Oslo" && city != "Lima") {
			return fmt.Errorf("get_weather takes a city of the enum and days: %v", args)
		}
		if !ok || days != float64(int(days)) || days < 1 || days > 9 {
			return fmt.Errorf("days is not an integer in [1, 9]: %v", args["days"])
		}
	case "get_time":
		zone, _ := args["zone"].(string)
		if len(args) != 1 || (zone != "UTC" && zone != "CET") {
			return fmt.Errorf("get_time takes zone, UTC or CET: %v", args)
		}
	default:
		return fmt.Errorf("no tool is named %q", call.Function.Name)
	}
	return nil
}

// With ToolChoiceRequired or a tool's name, even random weights make one well-formed call:
// its arguments validate against the schema, and the answer stops for tool calls.
func TestRequiredToolCallsValidate(t *testing.T) {
	s := open(t, toolParams())
	question := []Message{{Role: "user", Text: "What is the weather in Oslo for the next 3 days?"}}
	for _, choice := range []string{ToolChoiceRequired, "get_time"} {
		for seed := uint32(1); seed <= 5; seed++ {
			req := Request{Messages: question, Tools: weatherTools, ToolChoice: choice, Temperature: Ptr(1.0), Seed: Ptr(seed), MaxTokens: 256}
			reply, err := s.Reply(context.Background(), req)
			if err != nil {
				t.Fatalf("%s, seed %d: %v", choice, seed, err)
			}
			what := fmt.Sprintf("%s, seed %d: %+v", choice, seed, reply)
			if reply.StopReason != StopToolCalls || len(reply.ToolCalls) != 1 || reply.Role != "assistant" || reply.Content != "" {
				t.Fatalf("%s", what)
			}
			call := reply.ToolCalls[0]
			if err := validateCall(call); err != nil {
				t.Errorf("%s: %v", what, err)
			}
			if choice != ToolChoiceRequired && call.Function.Name != choice {
				t.Errorf("%s: called %s", what, call.Function.Name)
			}
			if !strings.HasPrefix(call.ID, "call_") || len(call.ID) != 29 || call.Type != "function" {
				t.Errorf("%s: id %q, type %q", what, call.ID, call.Type)
			}
			if last, err := s.LastAsk(); err != nil || last.ToolCalls != 1 || last.StopReason != StopToolCalls || last.StopReason.String() != "tool_calls" {
				t.Errorf("%s: LastAsk %+v, %v", what, last, err)
			}
			if again, err := s.LastMessage(); err != nil || again.ToolCalls[0] != call || again.StopReason != StopToolCalls {
				t.Errorf("%s: LastMessage %+v, %v", what, again, err)
			}
		}
	}
}

// The deltas OnToolCall receives assemble, by index, into the answer's calls; the text
// streamed is the answer's content, none.
func TestStreamedToolCallDeltasAssembleToTheCalls(t *testing.T) {
	s := open(t, toolParams())
	question := []Message{{Role: "user", Text: "What time is it in Paris?"}}
	for seed := uint32(1); seed <= 3; seed++ {
		var calls []ToolCall
		deltas := 0
		req := Request{Messages: question, Tools: weatherTools, ToolChoice: ToolChoiceRequired, Seed: Ptr(seed), MaxTokens: 256,
			OnToolCall: func(d ToolCallDelta) bool {
				deltas++
				if d.Index == len(calls) {
					if d.ID == "" || d.Name == "" {
						t.Errorf("seed %d: a new call without its id or name: %+v", seed, d)
					}
					calls = append(calls, ToolCall{ID: d.ID, Type: "function", Function: ToolCallFunction{Name: d.Name}})
				} else if d.Index != len(calls)-1 || d.ID != "" || d.Name != "" {
					t.Errorf("seed %d: delta %+v after %d calls", seed, d, len(calls))
					return false
				}
				calls[d.Index].Function.Arguments += d.Arguments
				return true
			}}
		var text strings.Builder
		if err := s.Stream(context.Background(), req, func(p string) bool { text.WriteString(p); return true }); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		reply, err := s.LastMessage()
		if err != nil {
			t.Fatal(err)
		}
		if deltas == 0 || len(calls) != len(reply.ToolCalls) || text.String() != reply.Content {
			t.Fatalf("seed %d: %d deltas made %+v, text %q; the answer %+v", seed, deltas, calls, text.String(), reply)
		}
		for i := range calls {
			if calls[i] != reply.ToolCalls[i] {
				t.Errorf("seed %d: streamed %+v, the answer has %+v", seed, calls[i], reply.ToolCalls[i])
			}
		}
	}

	// Reply streams the deltas too; a panic in OnToolCall stops the call and goes on after it.
	var streamed string
	reply, err := s.Reply(context.Background(), Request{Messages: question, Tools: weatherTools, ToolChoice: "get_time", MaxTokens: 256,
		OnToolCall: func(d ToolCallDelta) bool { streamed += d.Arguments; return true }})
	if err != nil || len(reply.ToolCalls) != 1 || streamed != reply.ToolCalls[0].Function.Arguments {
		t.Errorf("Reply: %+v, %v; streamed %q", reply, err, streamed)
	}
	func() {
		defer func() {
			if r := recover(); r != "tool call panic" {
				t.Errorf("recovered %v", r)
			}
		}()
		_, _ = s.Reply(context.Background(), Request{Messages: question, Tools: weatherTools, ToolChoice: ToolChoiceRequired, MaxTokens: 256,
			OnToolCall: func(ToolCallDelta) bool { panic("tool call panic") }})
		t.Error("Reply returned")
	}()
	// OnReasoning reaches the library; the fixture's template (ChatML) has no reasoning.
	pieces := 0
	if _, err := s.Reply(context.Background(), Request{Messages: question, MaxTokens: 4, Reasoning: ReasoningOff,
		OnReasoning: func(string) bool { pieces++; return true }}); err != nil || pieces != 0 {
		t.Errorf("OnReasoning with ChatML: %d pieces, %v", pieces, err)
	}
}

// A call, its result and the next question: the second request reuses the first's cache, its
// image included; a result for a call no message made is refused.
func TestAToolRoundTripReusesTheCache(t *testing.T) {
	s := open(t, toolParams())
	ctx := context.Background()
	question := Message{Role: "user", Text: "Which city is this? Get its weather for 2 days.", Media: []Media{File(fixture("tiny-image.png"))}}
	first := Request{Messages: []Message{question}, Tools: weatherTools, ToolChoice: "get_weather", MaxTokens: 256}
	reply, err := s.Reply(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastAsk(); last.MediaEncoded != 1 || last.ToolCalls != 1 || len(reply.ToolCalls) != 1 {
		t.Fatalf("first request: %+v, %+v", last, reply)
	}
	call := reply.ToolCalls[0]
	if err := validateCall(call); err != nil || call.Function.Name != "get_weather" {
		t.Errorf("%+v: %v", call, err)
	}
	chat := []Message{question, reply.Message(),
		{Role: "tool", ToolCallID: call.ID, Name: call.Function.Name, Text: `{"sky": "rain"}`},
		{Role: "user", Text: "Should I take an umbrella?"}}
	second := Request{Messages: chat, Tools: weatherTools, MaxTokens: 4}

	// The rendered prefix is byte-stable: the first prompt, but its last line (the assistant's
	// turn opening), starts the second.
	before, err := s.ApplyTemplate(first)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.ApplyTemplate(second)
	if err != nil {
		t.Fatal(err)
	}
	shared := before[:strings.LastIndexByte(strings.TrimSuffix(before, "\n"), '\n')+1]
	if len(shared) == 0 || !strings.HasPrefix(after, shared) || !strings.Contains(after, "get_weather") || !strings.Contains(after, "rain") {
		t.Errorf("the second prompt does not extend the first:\n%q\n%q", before, after)
	}
	if _, err := s.Ask(ctx, second); err != nil {
		t.Fatal(err)
	}
	last, _ := s.LastAsk()
	if last.PositionsReused == 0 || last.MediaEncoded != 0 || last.MediaItems != 1 {
		t.Errorf("the round trip did not reuse the cache: %+v", last)
	}

	// A tool result for a call no message made.
	chat[2].ToolCallID = "call_nobodymadethis"
	if _, err := s.Ask(ctx, Request{Messages: chat, Tools: weatherTools, MaxTokens: 4}); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "call_nobodymadethis") {
		t.Errorf("a result for an unknown call id: %v", err)
	}
}

func TestBadToolsAreInvalidArguments(t *testing.T) {
	s := open(t, toolParams())
	question := []Message{{Role: "user", Text: "Hello?"}}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"a tool of another type", Request{Tools: []Tool{{Type: "retrieval"}}}, "Unsupported tool type"},
		{"parameters that are not JSON", Request{Tools: []Tool{{Function: ToolFunction{Name: "f", Parameters: json.RawMessage("{not json")}}}}, "Request.Tools"},
		{"a choice that is not a tool", Request{Tools: weatherTools, ToolChoice: "get_news"}, "not among the tools"},
		{"a choice without tools", Request{ToolChoice: ToolChoiceRequired}, "tools is NULL"},
		{"tools and a grammar", Request{Tools: weatherTools, ToolChoice: ToolChoiceRequired, Grammar: `root ::= "x"`}, "cannot be combined"},
		{"tools too long", Request{Tools: []Tool{{Function: ToolFunction{Name: "f", Description: strings.Repeat("x", MaxToolsBytes)}}}}, "bytes long"},
		{"a reasoning that is none", Request{Reasoning: 7}, "params.reasoning"},
		{"a NUL in a tool call id", Request{Messages: []Message{{Role: "tool", ToolCallID: "a\x00b"}}}, "NUL"},
	}
	for _, c := range cases {
		req := c.req
		if req.Messages == nil {
			req.Messages = question
		}
		req.MaxTokens = 4
		if _, err := s.Reply(context.Background(), req); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalidArgument with %q", c.name, err, c.want)
		}
		if _, err := s.ApplyTemplate(req); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: ApplyTemplate: %v", c.name, err)
		}
	}
	// Tools are for chats.
	if _, err := s.Ask(context.Background(), Request{Prompt: "Hello", Tools: weatherTools}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("tools with a raw prompt: %v", err)
	}
	// The session is fine afterwards, and ToolChoiceNone gives text.
	reply, err := s.Reply(context.Background(), Request{Messages: question, Tools: weatherTools, ToolChoice: ToolChoiceNone, MaxTokens: 4})
	if err != nil || len(reply.ToolCalls) != 0 || reply.StopReason == StopToolCalls {
		t.Errorf("ToolChoiceNone: %+v, %v", reply, err)
	}
}

// Tools and tool calls marshal as OpenAI's JSON, Type "function" when it is left empty.
func TestToolJSON(t *testing.T) {
	text, err := json.Marshal(weatherTools[:1])
	if err != nil || !strings.HasPrefix(string(text), `[{"type":"function","function":{"name":"get_weather","description":"The weather in a city.","parameters":{"type":"object",`) {
		t.Errorf("%s, %v", text, err)
	}
	var back []Tool
	if err := json.Unmarshal(text, &back); err != nil || back[0].Type != "function" || back[0].Function.Name != "get_weather" {
		t.Errorf("%+v, %v", back, err)
	}
	call, err := json.Marshal(ToolCall{ID: "call_1", Function: ToolCallFunction{Name: "f", Arguments: `{"x": 1}`}})
	if want := `{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\": 1}"}}`; err != nil || string(call) != want {
		t.Errorf("%s, %v; want %s", call, err, want)
	}
}
