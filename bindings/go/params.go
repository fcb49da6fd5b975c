package mmsession

/*
#cgo pkg-config: mm-session
#include "mm_session.h"
*/
import "C"

import (
	"fmt"
	"math"
	"reflect"
	"time"
	"unsafe"
)

// Params says what Open loads, and how. Only Model is required; a field left at its zero value
// (or nil) takes the library's default (mm_session_params_default). Each tagged field is the
// mm_session_params field of that name.
type Params struct {
	// Model is the path of the text model (GGUF).
	Model string `mm:"model_path"`
	// Mmproj is the path of the projector (mmproj GGUF); empty: a text-only session.
	Mmproj string `mm:"mmproj_path"`
	// NCtx is the context window in tokens (default 4096).
	NCtx int `mm:"n_ctx"`
	// NBatch is the most tokens evaluated in one step (default 512).
	NBatch int `mm:"n_batch"`
	// NThreads is the number of CPU threads; 0: half the hardware threads, between 1 and 8.
	NThreads int `mm:"n_threads"`
	// NGPULayers is the number of layers on the GPU; nil: all. Ignored by CPU builds.
	NGPULayers *int `mm:"n_gpu_layers"`
	// Seed is the seed of requests that set none; nil: random.
	Seed *uint32 `mm:"seed"`
	// MmprojUseGPU runs the projector on the GPU when there is one; nil: true.
	MmprojUseGPU *bool `mm:"mmproj_use_gpu"`
	// UseMmap maps the model file instead of reading it; nil: true.
	UseMmap *bool `mm:"use_mmap"`
	// MediaMarker is the text that marks where a media item goes in a prompt; empty: mtmd's
	// default marker (Session.Marker tells which).
	MediaMarker string `mm:"media_marker"`
	// ChatTemplate is the template of chats: Jinja text, or a built-in name such as "chatml";
	// empty: the model's own (ChatML when it has none).
	ChatTemplate string `mm:"chat_template"`
	// RPCServers are servers (mm-rpc-server, or llama.cpp's rpc-server) that hold offloaded
	// layers: "host:port,host:port". A server that cannot be reached, or goes away while the
	// session uses it, gives ErrRemote.
	RPCServers string `mm:"rpc_servers"`
	// TensorSplit is the share of the offloaded layers each device takes, in device order: the
	// RPC servers' devices in the order named, then the local GPUs; empty: in proportion to
	// each device's free memory.
	TensorSplit []float64
	// FlashAttn is flash attention in the context and the projector's encoder; zero: auto.
	FlashAttn FlashAttention `mm:"flash_attn"`
	// KVTypeK and KVTypeV are the element types of the K and V caches; zero: f16. A quantized V
	// cache needs flash attention (FlashAttnOff with one gives ErrInvalidArgument).
	KVTypeK KVType `mm:"kv_type_k"`
	KVTypeV KVType `mm:"kv_type_v"`
	// NUbatch is the most tokens computed in one graph step, at most NBatch; 0: NBatch.
	NUbatch int `mm:"n_ubatch"`
	// UseMlock locks the model's memory in RAM so that it is never swapped out.
	UseMlock bool `mm:"use_mlock"`
	// NParallel is the number of sessions that can decode together; 0: 1 (the default), each
	// session and fork with a context of its own. With NParallel > 1 (at most MaxParallel),
	// this session and its forks share one context with NParallel slots, KV caches of NCtx
	// positions each, and requests that run at the same time (from different goroutines) are
	// evaluated in shared steps, one step carrying every session's next token. Forks beyond
	// the slots are allowed: a request takes a free slot, or lends that of the session idle
	// longest (its KV cache waits in host memory), or waits for one (AskInfo.SlotWait).
	NParallel int `mm:"n_parallel"`
	// Progress, when set, receives the load's progress in [0, 1] on the goroutine that calls
	// Open; returning false cancels the load (Open then fails with ErrCancelled).
	Progress func(progress float64) bool
}

// ForkParams are a fork's own settings (mm_fork_params); zero values take the parent's. A
// fork of a session opened with NParallel > 1 joins its context: NCtx, NBatch and NThreads
// must then be 0 or the parent's (ErrInvalidArgument otherwise).
type ForkParams struct {
	NCtx     int     `mm:"n_ctx"`
	NBatch   int     `mm:"n_batch"`
	NThreads int     `mm:"n_threads"`
	Seed     *uint32 `mm:"seed"`
	// CopyConversation starts the fork from a copy of the parent's conversation (KV cache and
	// the record of what it holds), so that a shared prefix is evaluated once.
	CopyConversation bool `mm:"copy_conversation"`
}

// MaxParallel is the most sessions Params.NParallel lets decode together (MM_MAX_PARALLEL).
const MaxParallel = C.MM_MAX_PARALLEL

// FlashAttention is flash attention's setting (mm_flash_attn).
type FlashAttention int32

const (
	// FlashAttnAuto lets llama.cpp use it where the backend has it (the default).
	FlashAttnAuto FlashAttention = C.MM_FLASH_ATTN_AUTO
	FlashAttnOff  FlashAttention = C.MM_FLASH_ATTN_OFF
	FlashAttnOn   FlashAttention = C.MM_FLASH_ATTN_ON
)

// KVType is the element type of a KV cache (mm_kv_type).
type KVType int32

const (
	// KVF16 is the default; KVQ8_0 takes about half its memory, KVQ4_0 about a quarter.
	KVF16  KVType = C.MM_KV_F16
	KVQ8_0 KVType = C.MM_KV_Q8_0
	KVQ4_0 KVType = C.MM_KV_Q4_0
)

// Overflow says what to do when a chat does not fit in the context (mm_overflow).
type Overflow int32

const (
	// OverflowFail fails with ErrContextFull before evaluating anything (the default).
	OverflowFail Overflow = C.MM_OVERFLOW_FAIL
	// OverflowDropOldest drops the oldest turns, keeping a leading system message.
	OverflowDropOldest Overflow = C.MM_OVERFLOW_DROP_OLDEST
)

// Request is one question: a raw Prompt, or chat Messages rendered with the session's chat
// template. Fields left at their zero value (or nil) take the library's defaults
// (mm_ask_params_default); each tagged field is the mm_ask_params field of that name.
type Request struct {
	// Prompt is the prompt, UTF-8. Each of Media goes where a marker stands (Session.Marker),
	// in order; with no marker, the items go before the text.
	Prompt string
	Media  []Media
	// Messages is a chat instead of Prompt (then left empty), ending with the assistant's turn.
	Messages []Message
	// Stop strings: generation ends before the first one that appears.
	Stop []string

	// MaxTokens is the most tokens to generate (default 256).
	MaxTokens int `mm:"max_tokens"`
	// Temperature of sampling (default 0.8); 0: greedy.
	Temperature *float64 `mm:"temperature"`
	// TopK keeps the k most likely tokens (default 40); 0: off.
	TopK *int `mm:"top_k"`
	// TopP is nucleus sampling (default 0.95); 1: off.
	TopP *float64 `mm:"top_p"`
	// MinP drops tokens below MinP times the best one's probability (default 0.05); 0: off.
	MinP *float64 `mm:"min_p"`
	// Seed of sampling; nil: the session's seed.
	Seed *uint32 `mm:"seed"`
	// Grammar is a GBNF grammar (start rule root) the answer must follow.
	Grammar string `mm:"grammar"`
	// Overflow says what to do when a chat does not fit.
	Overflow Overflow `mm:"overflow"`
	// PlainPrompt tokenizes Prompt as plain text: the text of control tokens stays text.
	PlainPrompt bool `mm:"plain_prompt"`
	// RepeatPenalty divides a positive logit of a token seen in the last PenaltyLastN tokens
	// (the prompt's text, then the answer), and multiplies a negative one (default 1: off).
	RepeatPenalty float64 `mm:"repeat_penalty"`
	// PenaltyLastN is the window of the three penalties in tokens (default 64; 0: off; -1: the
	// whole context).
	PenaltyLastN *int `mm:"penalty_last_n"`
	// FrequencyPenalty is subtracted from a seen token's logit once per time it was seen.
	FrequencyPenalty float64 `mm:"frequency_penalty"`
	// PresencePenalty is subtracted once from the logit of every seen token.
	PresencePenalty float64 `mm:"presence_penalty"`
	// TypicalP is locally typical sampling (default 1: off; in [0, 1]).
	TypicalP *float64 `mm:"typical_p"`
	// DRY ("don't repeat yourself"): a token that would extend a repetition longer than
	// DryAllowedLength (default 2) loses DryMultiplier * DryBase^(length - DryAllowedLength) of
	// its logit (multiplier default 0: off; base default 1.75), within the last DryPenaltyLastN
	// tokens (default -1: the whole context; 0: off).
	DryMultiplier    float64 `mm:"dry_multiplier"`
	DryBase          float64 `mm:"dry_base"`
	DryAllowedLength int     `mm:"dry_allowed_length"`
	DryPenaltyLastN  *int    `mm:"dry_penalty_last_n"`
	// LogitBias adds biases to the logits of tokens, whatever the temperature.
	LogitBias []LogitBias
	// JSONSchema is a JSON Schema (JSON text) the answer must validate against; it excludes
	// Grammar.
	JSONSchema string `mm:"json_schema"`
	// OnToken, when set, receives each generated token with its log-probability and the NProbs
	// likeliest tokens at its place (OpenAI's logprobs), before its text is streamed. It runs on
	// the goroutine of the call and must not call into the session; a panic in it stops the call
	// and goes on from Ask or Stream.
	OnToken func(chosen TokenLogprob, top []TokenLogprob)
	// NProbs is how many of the likeliest tokens OnToken receives with each token (default 0).
	NProbs int `mm:"n_probs"`

	// Tools are the functions the model may call (a chat rendered by a Jinja template; for
	// other chat templates, such as ChatML, a generic JSON format): they are described to the
	// model, and the answer's calls come apart from its text (Reply.ToolCalls, OnToolCall,
	// StopToolCalls). The library takes them as OpenAI's tools array (encoding/json of this
	// slice, at most MaxToolsBytes).
	Tools []Tool
	// ToolChoice says whether the model must call a tool: ToolChoiceAuto ("", the default: it
	// decides), ToolChoiceNone (text only), ToolChoiceRequired (one or more calls, held to the
	// tools' schemas by a grammar), or the name of one of the tools (a call to it).
	ToolChoice string `mm:"tool_choice"`
	// ParallelToolCalls lets one answer make several tool calls.
	ParallelToolCalls bool `mm:"parallel_tool_calls"`
	// Reasoning says what becomes of a model's reasoning (its <think> block and the like).
	Reasoning Reasoning `mm:"reasoning"`
	// OnReasoning, when set, receives the answer's reasoning as it is generated
	// (ReasoningSeparate, with a template whose models think first); returning false stops
	// generating. It runs on the goroutine of the call and must not call into the session; a
	// panic in it stops the call and goes on from the call.
	OnReasoning func(piece string) bool
	// OnToolCall, when set, receives the answer's tool calls as they are generated, one change
	// at a time (ToolCallDelta); returning false stops generating. It runs as OnReasoning does.
	OnToolCall func(delta ToolCallDelta) bool
}

// LogitBias is added to the logit of Token, a token id of the session's model (Tokenize):
// +100 all but forces the token, -100 all but bans it, math.Inf(-1) bans it.
type LogitBias struct {
	Token int
	Bias  float64
}

// TokenLogprob is a token with its log-probability: the natural logarithm of its probability
// under the model, before temperature, penalties, logit bias and grammar change it.
type TokenLogprob struct {
	Token   int
	Logprob float64
	// Text is the token's bytes, possibly part of a UTF-8 character (a byte-level token).
	Text string
}

// Message is one chat message.
type Message struct {
	// Role is "system", "user", "assistant", "tool" (or another role the chat template knows).
	Role string
	// Text is the message, UTF-8. Its media go where its markers stand, or before the text.
	Text  string
	Media []Media
	// ToolCalls are an assistant message's tool calls: those of an earlier answer
	// (Reply.ToolCalls; Reply.Message gives the whole message back).
	ToolCalls []ToolCall
	// ToolCallID is a "tool" message's call id: this message is the result of the earlier
	// call with that id (an id no earlier assistant message has is ErrInvalidArgument).
	ToolCallID string
	// Name is a "tool" message's function name (some templates print it).
	Name string
	// ReasoningContent is an assistant message's reasoning (Reply.ReasoningContent), for the
	// templates that show earlier reasoning.
	ReasoningContent string
}

// Ptr returns a pointer to v, for the optional fields of Params and Request:
// Request{Temperature: mmsession.Ptr(0.0)}.
func Ptr[T any](v T) *T { return &v }

// StopReason says why generation ended (mm_stop_reason).
type StopReason int32

const (
	StopNone        StopReason = C.MM_STOP_NONE
	StopEOG         StopReason = C.MM_STOP_EOG
	StopMaxTokens   StopReason = C.MM_STOP_MAX_TOKENS
	StopString      StopReason = C.MM_STOP_STRING
	StopCallback    StopReason = C.MM_STOP_CALLBACK
	StopContextFull StopReason = C.MM_STOP_CONTEXT_FULL
	// StopToolCalls: the answer is tool calls (AskInfo.ToolCalls, Reply.ToolCalls; OpenAI's
	// finish_reason "tool_calls"). It ended as StopEOG or StopString would have.
	StopToolCalls StopReason = C.MM_STOP_TOOL_CALLS
)

// String names the reason: "none", "eog", "max_tokens", "string", "callback", "context_full",
// "tool_calls".
func (r StopReason) String() string {
	names := [...]string{"none", "eog", "max_tokens", "string", "callback", "context_full", "tool_calls"}
	if r >= 0 && int(r) < len(names) {
		return names[r]
	}
	return "unknown"
}

// Info is what a session is and holds (mm_session_info).
type Info struct {
	NCtx            int    `mm:"n_ctx"`
	NPast           int    `mm:"n_past"`
	SupportsVision  bool   `mm:"supports_vision"`
	SupportsAudio   bool   `mm:"supports_audio"`
	AudioSampleRate int    `mm:"audio_sample_rate"`
	Marker          string `mm:"marker"`
	// NParallel is how many sessions can decode together in this session's context (its
	// slots; 1: it decodes alone).
	NParallel int `mm:"n_parallel"`
	// NBatch is the most tokens one step evaluates: this session's, or shared by the sessions
	// that decode together.
	NBatch int `mm:"n_batch"`
}

// MemoryStats is the bytes a session holds, by use and by place (mm_memory_stats): exact
// figures from llama.cpp's and clip.cpp's buffers. "GPU" is any non-host device.
type MemoryStats struct {
	ModelHost     uint64 `mm:"model_host"`
	ModelGPU      uint64 `mm:"model_gpu"`
	KVHost        uint64 `mm:"kv_host"`
	KVGPU         uint64 `mm:"kv_gpu"`
	ComputeHost   uint64 `mm:"compute_host"`
	ComputeGPU    uint64 `mm:"compute_gpu"`
	ProjectorHost uint64 `mm:"projector_host"`
	ProjectorGPU  uint64 `mm:"projector_gpu"`
	// SharedBy is how many sessions (a session and its forks) share the model and projector
	// bytes above.
	SharedBy int `mm:"shared_by"`
	// ContextSharedBy is how many sessions share this session's context (Params.NParallel >
	// 1): the compute buffers are held once for all of them, and KVHost/KVGPU are this
	// session's share. 1: the context is the session's own.
	ContextSharedBy int `mm:"context_shared_by"`
}

// AskInfo is the figures of a session's last finished request (mm_ask_info).
type AskInfo struct {
	PromptPositions int           `mm:"prompt_positions"`
	PositionsReused int           `mm:"positions_reused"`
	TokensEvaluated int           `mm:"tokens_evaluated"`
	MediaEncoded    int           `mm:"media_encoded"`
	TokensGenerated int           `mm:"tokens_generated"`
	MessagesDropped int           `mm:"messages_dropped"`
	StopReason      StopReason    `mm:"stop_reason"`
	PromptTime      time.Duration `mm:"prompt_ms"`
	GenerateTime    time.Duration `mm:"generate_ms"`
	// The prompt's make-up: text tokens, media items (encoded now or found in the cache), the
	// embeddings they give the model and the positions those take. OpenAI's usage:
	// prompt_tokens = PromptTokens + MediaTokens, completion_tokens = TokensGenerated,
	// cached_tokens = PositionsReused.
	PromptTokens   int `mm:"prompt_tokens"`
	MediaItems     int `mm:"media_items"`
	MediaTokens    int `mm:"media_tokens"`
	MediaPositions int `mm:"media_positions"`
	// SlotWait is how long the request waited for a slot of its context: 0 when one was free
	// (always, for a session opened with NParallel 1 and its forks).
	SlotWait time.Duration `mm:"slot_wait_ms"`
	// MostTogether is the most sessions whose tokens one step of this request carried, its
	// own included (1: it decoded alone).
	MostTogether int `mm:"most_together"`
	// ToolCalls is the number of tool calls in the answer (Reply.ToolCalls).
	ToolCalls int `mm:"tool_calls"`
}

// The C structs the field maps bind, and their maps.
var (
	cSessionParams = reflect.TypeOf(C.mm_session_params{})
	cForkParams    = reflect.TypeOf(C.mm_fork_params{})
	cAskParams     = reflect.TypeOf(C.mm_ask_params{})
	cSessionInfo   = reflect.TypeOf(C.mm_session_info{})
	cMemoryStats   = reflect.TypeOf(C.mm_memory_stats{})
	cAskInfo       = reflect.TypeOf(C.mm_ask_info{})

	sessionFields = newFieldMap(reflect.TypeOf(Params{}), cSessionParams)
	forkFields    = newFieldMap(reflect.TypeOf(ForkParams{}), cForkParams)
	askFields     = newFieldMap(reflect.TypeOf(Request{}), cAskParams)
	infoFields    = newFieldMap(reflect.TypeOf(Info{}), cSessionInfo)
	memoryFields  = newFieldMap(reflect.TypeOf(MemoryStats{}), cMemoryStats)
	askInfoFields = newFieldMap(reflect.TypeOf(AskInfo{}), cAskInfo)

	askDefaults = C.mm_ask_params_default()
)

// cParams is the mm_session_params of p, its strings and arrays in mem.
func (p *Params) cParams(mem *cmem) (C.mm_session_params, error) {
	c := C.mm_session_params_default()
	err := sessionFields.toC(reflect.ValueOf(p).Elem(), unsafe.Pointer(&c), mem)
	if err == nil && len(p.TensorSplit) > 0 {
		shares := unsafe.Slice((*C.float)(mem.alloc(len(p.TensorSplit)*C.sizeof_float)), len(p.TensorSplit))
		for i, share := range p.TensorSplit {
			shares[i] = C.float(share)
		}
		c.tensor_split, c.n_tensor_split = &shares[0], C.size_t(len(shares))
	}
	return c, err
}

// cParams is the mm_fork_params of p.
func (p *ForkParams) cParams() (C.mm_fork_params, error) {
	c := C.mm_fork_params_default()
	err := forkFields.toC(reflect.ValueOf(p).Elem(), unsafe.Pointer(&c), nil)
	return c, err
}

// cParams is the mm_ask_params of r, everything it points to in mem. The prompt is NULL only
// for a chat with no Prompt.
func (r *Request) cParams(mem *cmem) (C.mm_ask_params, error) {
	c := askDefaults
	if err := askFields.toC(reflect.ValueOf(r).Elem(), unsafe.Pointer(&c), mem); err != nil {
		return c, err
	}
	var err error
	if r.Prompt != "" || len(r.Messages) == 0 {
		if c.prompt, err = mem.str(r.Prompt, "Request.Prompt"); err != nil {
			return c, err
		}
	}
	if c.media, c.n_media, err = mediaItems(mem, r.Media); err != nil {
		return c, err
	}
	if c.messages, c.n_messages, err = messages(mem, r.Messages); err != nil {
		return c, err
	}
	if c.message_ext, err = messageExts(mem, r.Messages); err != nil {
		return c, err
	}
	if c.tools, err = toolsJSON(mem, r.Tools); err != nil {
		return c, err
	}
	if c.stop, c.n_stop, err = mem.strs(r.Stop, "Request.Stop"); err != nil {
		return c, err
	}
	c.logit_bias, c.n_logit_bias, err = logitBiases(mem, r.LogitBias)
	return c, err
}

// logitBiases copies biases into a C array of mm_logit_bias (NULL when empty).
func logitBiases(mem *cmem, biases []LogitBias) (*C.mm_logit_bias, C.size_t, error) {
	if len(biases) == 0 {
		return nil, 0, nil
	}
	items := unsafe.Slice((*C.mm_logit_bias)(mem.alloc(len(biases)*C.sizeof_mm_logit_bias)), len(biases))
	for i, b := range biases {
		if b.Token < math.MinInt32 || b.Token > math.MaxInt32 {
			return nil, 0, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: Request.LogitBias[%d].Token %d is not a token id", i, b.Token)}
		}
		items[i] = C.mm_logit_bias{token: C.int32_t(b.Token), bias: C.float(b.Bias)}
	}
	return &items[0], C.size_t(len(biases)), nil
}

// messages copies a chat into a C array of mm_message (NULL when empty).
func messages(mem *cmem, chat []Message) (*C.mm_message, C.size_t, error) {
	if len(chat) == 0 {
		return nil, 0, nil
	}
	items := unsafe.Slice((*C.mm_message)(mem.alloc(len(chat)*C.sizeof_mm_message)), len(chat))
	for i, m := range chat {
		items[i] = C.mm_message{}
		var err error
		if items[i].role, err = mem.str(m.Role, "Message.Role"); err != nil {
			return nil, 0, err
		}
		if items[i].text, err = mem.str(m.Text, "Message.Text"); err != nil {
			return nil, 0, err
		}
		if items[i].media, items[i].n_media, err = mediaItems(mem, m.Media); err != nil {
			return nil, 0, err
		}
	}
	return &items[0], C.size_t(len(chat)), nil
}
