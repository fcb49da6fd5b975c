package mmsession

// Tool calls and reasoning: the request's tools, the messages' tool call fields, and the answer
// as OpenAI's assistant message (mm_message_ext, mm_session_last_message,
// mm_session_apply_template).

/*
#cgo pkg-config: mm-session
#include <stdlib.h>
#include "mm_session.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"unsafe"
)

// MaxToolsBytes is the longest Request.Tools the library takes, as JSON text
// (MM_MAX_TOOLS_BYTES).
const MaxToolsBytes = C.MM_MAX_TOOLS_BYTES

// The values of Request.ToolChoice besides a tool's name.
const (
	// ToolChoiceAuto lets the model decide (the default; "" means the same).
	ToolChoiceAuto = "auto"
	// ToolChoiceNone: text only, no tool calls.
	ToolChoiceNone = "none"
	// ToolChoiceRequired: one or more calls, held to the tools' schemas by a grammar, so that
	// even a poor model's arguments validate against them.
	ToolChoiceRequired = "required"
)

// Reasoning says what becomes of a model's reasoning (its <think> block and the like) in a
// chat rendered by a Jinja template (mm_reasoning).
type Reasoning int32

const (
	// ReasoningSeparate keeps it apart from the text: OnReasoning and Reply.ReasoningContent
	// receive it, and the text holds the rest (the default).
	ReasoningSeparate Reasoning = C.MM_REASONING_SEPARATE
	// ReasoningInline leaves it in the text as the model wrote it.
	ReasoningInline Reasoning = C.MM_REASONING_INLINE
	// ReasoningOff asks the template not to think (enable_thinking false), where it knows how;
	// reasoning that comes anyway is kept apart.
	ReasoningOff Reasoning = C.MM_REASONING_OFF
)

// Tool is one function the model may call (an entry of OpenAI's tools array). Its JSON is
// OpenAI's: {"type": "function", "function": {"name", "description", "parameters"}}, so that
// tools kept as JSON unmarshal into []Tool as they are.
type Tool struct {
	// Type is "function" ("" is marshalled as "function").
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction is a tool's function: its name, what it does, and its parameters as a JSON
// Schema (JSON text; nil: none).
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// MarshalJSON gives OpenAI's shape, with Type "function" when it is empty.
func (t Tool) MarshalJSON() ([]byte, error) {
	type plain Tool
	if t.Type == "" {
		t.Type = "function"
	}
	return json.Marshal(plain(t))
}

// ToolCall is one tool call of an answer (an entry of OpenAI's tool_calls array).
type ToolCall struct {
	// ID names the call; a "tool" message with this Message.ToolCallID is its result. The
	// library makes one up ("call_" and 24 letters and digits) when the model writes none.
	ID string `json:"id"`
	// Type is "function" ("" is marshalled as "function").
	Type     string           `json:"type"`
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction is the function a call calls and its arguments, JSON text as the model
// wrote it (json.Unmarshal it into the function's parameters).
type ToolCallFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// MarshalJSON gives OpenAI's shape, with Type "function" when it is empty.
func (c ToolCall) MarshalJSON() ([]byte, error) {
	type plain ToolCall
	if c.Type == "" {
		c.Type = "function"
	}
	return json.Marshal(plain(c))
}

// ToolCallDelta is one change of one tool call of an answer being generated
// (mm_tool_call_delta), as Request.OnToolCall receives it: the call's Index among the
// answer's calls, its ID and Name when it first appears ("" after), and a piece of its
// Arguments ("" when none is new). The pieces of one call, joined in order, are its
// arguments.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

// Reply is an answer as OpenAI's assistant message (mm_session_last_message), and why it
// ended.
type Reply struct {
	// Role is "assistant".
	Role string `json:"role"`
	// Content is the answer's text (what Ask returns): "" when it is only tool calls.
	Content string `json:"content"`
	// ReasoningContent is the reasoning kept apart from the text (ReasoningSeparate).
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ToolCalls are the answer's tool calls.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// StopReason is why generation ended: StopToolCalls when the answer is tool calls.
	StopReason StopReason `json:"-"`
}

// Message is the reply as a message of the next request's chat: the assistant's turn, with
// its text, reasoning and tool calls.
func (r Reply) Message() Message {
	return Message{Role: "assistant", Text: r.Content, ToolCalls: r.ToolCalls, ReasoningContent: r.ReasoningContent}
}

// Reply asks one question, as Ask does, and returns the answer with its tool calls and
// reasoning, and why it ended, all read in the request's own turn (no request of another
// goroutine comes between). Request.OnToolCall and OnReasoning stream them meanwhile.
func (s *Session) Reply(ctx context.Context, req Request) (Reply, error) {
	var last lastAnswer
	if _, err := s.ask(ctx, "Reply", req, nil, &last); err != nil {
		return Reply{}, err
	}
	return last.reply()
}

// LastMessage gives the session's last finished answer as Reply does (after Stream, say).
// Before the first answer, or after a failed request, its Content is "". Another goroutine's
// request on the session may finish in between: Reply has no such gap.
func (s *Session) LastMessage() (Reply, error) {
	var last lastAnswer
	if err := s.use(context.Background(), "LastMessage", last.read); err != nil {
		return Reply{}, err
	}
	return last.reply()
}

// lastAnswer is the answer of a session's last request as the library gives it: the JSON text
// of its message, and why it ended.
type lastAnswer struct {
	message string
	stop    StopReason
}

// read reads h's last answer; called in the session's turn.
func (a *lastAnswer) read(h *C.mm_session) uint32 {
	var text *C.char
	if status := C.mm_session_last_message(h, &text); status != C.MM_OK {
		return status
	}
	a.message = C.GoString(text)
	C.mm_string_free(text)
	var info C.mm_ask_info
	info.struct_size = C.sizeof_mm_ask_info
	status := C.mm_session_last_ask(h, &info)
	a.stop = StopReason(info.stop_reason)
	return status
}

// reply is the answer as a Reply.
func (a *lastAnswer) reply() (Reply, error) {
	var r Reply
	if err := json.Unmarshal([]byte(a.message), &r); err != nil {
		// The library writes this JSON: failing to read it is a bug of one side or the other.
		return Reply{}, &Error{Status: StatusInternal, Message: fmt.Sprintf("mmsession: the JSON of mm_session_last_message: %v: %q", err, a.message)}
	}
	r.StopReason = a.stop
	return r, nil
}

// ApplyTemplate gives the text of req's prompt: its Messages rendered by the session's chat
// template (with Tools, ToolChoice and Reasoning as they change it), or its Prompt, with the
// marker where each media item goes. Nothing is evaluated and media are not decoded.
func (s *Session) ApplyTemplate(req Request) (string, error) {
	mem := &cmem{}
	defer mem.free()
	c, err := req.cParams(mem)
	if err != nil {
		return "", err
	}
	var text *C.char
	if err := s.use(context.Background(), "ApplyTemplate", func(h *C.mm_session) uint32 {
		return C.mm_session_apply_template(h, &c, &text)
	}); err != nil {
		return "", err
	}
	defer C.mm_string_free(text)
	return C.GoString(text), nil
}

// toolsJSON copies tools into C memory as OpenAI's tools array (NULL when empty).
func toolsJSON(mem *cmem, tools []Tool) (*C.char, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	text, err := json.Marshal(tools)
	if err != nil {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: Request.Tools: %v", err)}
	}
	return mem.str(string(text), "Request.Tools")
}

// messageExts copies the tool call fields of a chat into a C array of mm_message_ext, one per
// message (NULL when no message has any).
func messageExts(mem *cmem, chat []Message) (*C.mm_message_ext, error) {
	has := false
	for _, m := range chat {
		has = has || len(m.ToolCalls) > 0 || m.ToolCallID != "" || m.Name != "" || m.ReasoningContent != ""
	}
	if !has {
		return nil, nil
	}
	items := unsafe.Slice((*C.mm_message_ext)(mem.alloc(len(chat)*C.sizeof_mm_message_ext)), len(chat))
	opt := func(s, what string, i int) (*C.char, error) {
		if s == "" {
			return nil, nil
		}
		return mem.str(s, fmt.Sprintf("Message[%d].%s", i, what))
	}
	for i, m := range chat {
		items[i] = C.mm_message_ext{}
		var err error
		if len(m.ToolCalls) > 0 {
			calls, jerr := json.Marshal(m.ToolCalls)
			if jerr != nil {
				return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: Message[%d].ToolCalls: %v", i, jerr)}
			}
			if items[i].tool_calls, err = mem.str(string(calls), fmt.Sprintf("Message[%d].ToolCalls", i)); err != nil {
				return nil, err
			}
		}
		if items[i].tool_call_id, err = opt(m.ToolCallID, "ToolCallID", i); err != nil {
			return nil, err
		}
		if items[i].name, err = opt(m.Name, "Name", i); err != nil {
			return nil, err
		}
		if items[i].reasoning_content, err = opt(m.ReasoningContent, "ReasoningContent", i); err != nil {
			return nil, err
		}
	}
	return &items[0], nil
}
