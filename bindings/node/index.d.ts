// Types of mm-session. The options and results that mirror C structs (SessionParams, AskParams,
// ForkParams, SessionInfo, MemoryStats, AskInfo) are generated from include/mm_session.h into
// lib/abi.d.ts; this file adds the shapes of the JavaScript API itself.

import type { AskInfo, AskParams, Constants, ForkParams, LogLevel, MemoryStats, SessionInfo, SessionParams, StatusName, StopReason } from './lib/abi';

// The generated types, and the library's functions that take nothing (version, liveSessions, ...).
export * from './lib/abi';

/**
 * One image or audio clip: a file path, the bytes of a file (PNG, JPEG, GIF, BMP, PNM, WebP;
 * WAV, FLAC, MP3), raw RGB pixels (3 bytes each, row after row), or mono float samples at the
 * projector's sample rate (SessionInfo.audioSampleRate). A string is a path.
 */
export type Media =
  | string
  | { path: string }
  | { data: ArrayBufferView | ArrayBuffer }
  | { rgb: ArrayBufferView | ArrayBuffer; width: number; height: number }
  | { pcm: Float32Array };

/** A content part of a chat message, as in the OpenAI API. */
export type ContentPart =
  | { type: 'text'; text: string }
  /** A data: URI (base64), a file: URL, or a path. http(s) URLs are not fetched. */
  | { type: 'image_url'; image_url: string | { url: string; detail?: string } }
  /** Base64 audio file bytes (WAV, MP3, FLAC). */
  | { type: 'input_audio'; input_audio: { data: string; format?: string } };

/** A tool call of an answer, as in the OpenAI API. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: {
    name: string;
    /** The arguments, JSON text (as the model wrote them: JSON.parse them). */
    arguments: string;
  };
}

/** A tool call given back in a chat: its arguments may also be an object (serialized). */
export interface ToolCallInput {
  id: string;
  type?: 'function';
  function: { name: string; arguments: string | object };
}

/** A tool the model may call, as in the OpenAI API (its parameters a JSON Schema). */
export interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: object; strict?: boolean };
}

/**
 * Whether the model must call a tool: 'auto' (the default: it decides), 'none', 'required' (one
 * call or more, made well-formed by a grammar), a tool's name or OpenAI's { type: 'function',
 * function: { name } } (a call to that tool).
 */
export type ToolChoice = 'auto' | 'none' | 'required' | (string & {}) | { type: 'function'; function: { name: string } };

/**
 * A chat message, as in the OpenAI API: media parts go where they stand among the parts. The
 * tool call fields take their OpenAI names (tool_calls, tool_call_id, reasoning_content) or
 * camelCase ones (toolCalls, toolCallId, reasoningContent), not both.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  /** null or left out: none (an assistant message that only calls tools). */
  content?: string | ContentPart[] | null;
  /** An assistant message's tool calls (as an answer's message has them), or their JSON text. */
  tool_calls?: ToolCallInput[] | string | null;
  toolCalls?: ToolCallInput[] | string | null;
  /** A 'tool' message's call: the id of the earlier call whose result it is. */
  tool_call_id?: string | null;
  toolCallId?: string | null;
  /** A 'tool' message's function name (some templates print it). */
  name?: string | null;
  /** An assistant message's reasoning (an earlier answer's), for templates that show it. */
  reasoning_content?: string | null;
  reasoningContent?: string | null;
}

/** An answer as OpenAI's assistant message (Session.respond(), Session.lastMessage()). */
export interface AssistantMessage {
  role: 'assistant';
  /** The answer's text; null when the answer only calls tools. */
  content: string | null;
  /** The reasoning kept apart from the text (reasoning: 'separate'), when there is some. */
  reasoning_content?: string;
  /** The answer's tool calls, when there are some. */
  tool_calls?: ToolCall[];
}

/** A chat's whole reply (Session.respond()). */
export interface Reply {
  /** The answer's text (its content: what chat() resolves to). */
  readonly text: string;
  /** The answer as OpenAI's assistant message: append it to the chat for the next turn. */
  readonly message: AssistantMessage;
  /** The answer's tool calls ([] when none). */
  readonly toolCalls: ToolCall[];
  /** The reasoning kept apart from the text ('' when none). */
  readonly reasoningContent: string;
  /** Why generation ended: 'tool_calls' when the answer calls tools. */
  readonly stopReason: StopReason;
  /** The request's figures, as lastAsk() gives them. */
  readonly info: AskInfo;
}

export interface CreateOptions extends SessionParams {
  /** Path of the text model (GGUF). */
  model: string;
  /** Receives the load's progress, from 0 to 1, on the main thread. */
  onProgress?: (fraction: number) => void;
  /** Cancels the load: create() then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface AskOptions extends Omit<AskParams, 'tools' | 'toolChoice'> {
  /** Cancels the request: the promise (or the stream) rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Functions the model may call (chats): OpenAI's tools array, or its JSON text. */
  tools?: Tool[] | string;
  /** Whether the model must call a tool (see ToolChoice). */
  toolChoice?: ToolChoice;
}

/** The status of a failed call, as the header's mm_status names it. */
export interface Status {
  readonly name: StatusName;
  readonly code: number;
  /** The library's short description of the status (mm_status_str). */
  readonly description: string;
}

/** A failed call of the library: its status and the library's message. */
export declare class MmError extends Error {
  readonly name: 'MmError';
  readonly status: Status;
  /** For countTokens() of a request that does not fit: the positions it would take. */
  positions?: number;
}

/**
 * A multimodal model (text model + projector) and its conversation. Calls run on threads of
 * the package's own, one after another for one session, side by side for different sessions.
 */
export declare class Session implements AsyncDisposable {
  private constructor();
  /** Loads the model and its projector off the main thread. */
  static create(options: CreateOptions): Promise<Session>;
  /** Whether close() was called. */
  readonly closed: boolean;
  /** The text that marks where a media item goes in a prompt (such as "<__media__>"). */
  readonly marker: string;
  /** Asks one question; resolves to the whole answer. */
  ask(options: AskOptions): Promise<string>;
  /** Asks one question and yields the answer as it is generated; breaking out stops generation. */
  stream(options: AskOptions): AsyncGenerator<string, void, undefined>;
  /** Asks with a chat (OpenAI-style messages); resolves to the answer's text. */
  chat(messages: ChatMessage[], options?: Omit<AskOptions, 'messages' | 'prompt'>): Promise<string>;
  /** Asks with a chat; resolves to the whole reply: text, message, tool calls, reasoning, figures. */
  respond(messages: ChatMessage[], options?: Omit<AskOptions, 'messages' | 'prompt'>): Promise<Reply>;
  /** The session's last finished answer as OpenAI's assistant message. */
  lastMessage(): Promise<AssistantMessage>;
  /** The text of a request's prompt as the model would read it (the chat template applied). */
  applyTemplate(options: AskOptions): Promise<string>;
  /** The positions a request's prompt would take in the context, without evaluating it. */
  countTokens(options: AskOptions): Promise<number>;
  /** The token ids of a text (no BOS); with parseSpecial, control-token text becomes those tokens. */
  tokenize(text: string, options?: { parseSpecial?: boolean }): Promise<number[]>;
  /** A new session sharing this one's model and projector, with a context of its own. */
  fork(options?: ForkParams): Promise<Session>;
  info(): Promise<SessionInfo>;
  memory(): Promise<MemoryStats>;
  /** Figures of the last finished request. */
  lastAsk(): Promise<AskInfo>;
  /** Empties the conversation cache. */
  reset(): Promise<void>;
  saveState(path: string): Promise<void>;
  loadState(path: string): Promise<void>;
  /** Cancels the calls made so far (running and queued): they reject with MM_ERR_CANCELLED. */
  cancel(): void;
  /** Frees everything; every call afterwards rejects. Closing twice is safe. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Receives one log line of the library (llama.cpp, ggml, mtmd, mm-session). */
export type Logger = ((level: Exclude<LogLevel, 'off'>, message: string) => void) | Pick<Console, 'log'> & Partial<Pick<Console, 'debug' | 'info' | 'warn' | 'error'>>;

/** Sends the library's logs of `level` and above to `logger`; null: back to stderr. */
export declare function setLogger(logger: Logger | null, level?: LogLevel): void;
/** The header's constants. */
export declare const constants: Constants;
/** The version of the header this package was generated from. */
export declare const HEADER_VERSION: string;
/** Where the library was loaded from. */
export declare const library: { readonly source: 'MM_SESSION_LIB' | 'bundled' | 'platform-package' | 'pkg-config' | 'repository'; readonly file: string };
