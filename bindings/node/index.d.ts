// Types of mm-session. The options and results that mirror C structs (SessionParams, AskParams,
// ForkParams, SessionInfo, MemoryStats, AskInfo) are generated from include/mm_session.h into
// lib/abi.d.ts; this file adds the shapes of the JavaScript API itself.

import type { AskInfo, AskParams, Constants, ForkParams, LogLevel, MemoryStats, SessionInfo, SessionParams, StatusName } from './lib/abi';

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

/** A chat message, as in the OpenAI API: media parts go where they stand among the parts. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string | ContentPart[];
}

export interface CreateOptions extends SessionParams {
  /** Path of the text model (GGUF). */
  model: string;
  /** Receives the load's progress, from 0 to 1, on the main thread. */
  onProgress?: (fraction: number) => void;
  /** Cancels the load: create() then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface AskOptions extends AskParams {
  /** Cancels the request: the promise (or the stream) rejects with the signal's reason. */
  signal?: AbortSignal;
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
  /** Asks with a chat (OpenAI-style messages). */
  chat(messages: ChatMessage[], options?: Omit<AskOptions, 'messages' | 'prompt'>): Promise<string>;
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
