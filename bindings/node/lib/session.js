'use strict';
// Session: one multimodal model (text model + projector) and its conversation, behind promises.
// Every blocking call runs on a pool thread (lib/pool.js); the calls of one session run one
// after another, in the order they were made, as the library serializes them anyway.

const { fns } = require('./ffi');
const { pool } = require('./pool');
const { MmError, closedError, statusCode } = require('./errors');
const A = require('./abi');
const { toStruct, fromStruct, callbackArgs, toMedia, toMessage, toMessageExt, toolChoice, transferList } = require('./options');

const PRIVATE = Symbol('mm-session private');
/** The callbacks of a request that are options (onToken), by the rules of lib/rules.js. */
const ASK_CALLBACKS = A.callbackOptions('mm_ask_params');
/** How often a cancel is repeated until the call returns (a cancel only reaches a call that has begun). */
const CANCEL_REPEAT_MS = 20;

/**
 * The safety net for sessions nobody closed: the garbage collector's finalizer destroys the
 * handle on a pool thread and warns, as Node does for a FileHandle left open.
 */
const finalizer = new FinalizationRegistry((handle) => {
  process.emitWarning('an mm-session Session was garbage-collected without close(): close it (or `await using`) to free its memory when you are done', 'MmSessionWarning');
  pool.run({ fn: 'mm_session_destroy', args: [handle] }).done.catch(() => {});
});

/** Where an MmError keeps what the failed call wrote (countTokens reads its count there). */
const OUTPUTS = Symbol('outputs');

/** The outputs of an answer of the pool, or its MmError. */
function check(answer) {
  if (answer.status !== 0) throw Object.assign(new MmError(answer.status, answer.message), { [OUTPUTS]: answer.outputs });
  return answer.outputs;
}

/** The options object of a method: an object, or nothing. */
function optionsOf(options, where) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(`${where}: expected an options object, got ${typeof options}`);
  return options;
}

/**
 * Runs one C call on a pool thread. `control` lets the caller stop it: control.stopped before it
 * starts skips it; control.job is the running job (lib/pool.js) meanwhile. `signal` calls
 * `onAbort` (a session's cancel; by default the job's stop flag). A call that fails after its
 * signal was aborted rejects with the signal's reason; one that succeeded anyway resolves (the
 * abort came too late, and what it made, such as a session, is not lost).
 */
async function runJob(job, { signal, onEvent, control = {}, onAbort = () => control.job?.stop() } = {}) {
  signal?.throwIfAborted();
  if (control.stopped) return null;
  const running = pool.run(job, onEvent);
  control.job = running;
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const answer = await running.done;
    if (answer.status !== 0) signal?.throwIfAborted();
    return check(answer);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    control.job = null;
  }
}

class Session {
  #handle;
  #marker;
  #closed = false;
  #closing = null;
  /** The last queued call: each call starts when the one before it has finished. */
  #tail = Promise.resolve();
  /** The controls of the calls made and not finished, queued or running: cancel() reaches them all. */
  #pending = new Set();

  /** Use Session.create() or session.fork(). */
  constructor(token, handle) {
    if (token !== PRIVATE) throw new TypeError('use Session.create() to make a Session');
    this.#handle = handle;
    this.#marker = fns.mm_session_marker(handle);
    finalizer.register(this, handle, this);
  }

  /**
   * Loads a model and its projector on a pool thread: `model`, `mmproj` and the other fields
   * of mm_session_params in camelCase (nCtx, nThreads, ...). `onProgress(fraction)` receives
   * the load's progress; `signal` cancels it.
   */
  static async create(options = {}) {
    const { onProgress, signal, ...rest } = optionsOf(options, 'Session.create');
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('Session.create: onProgress must be a function');
    const params = toStruct('mm_session_params', rest, 'Session.create');
    if (typeof params.model_path !== 'string') throw new TypeError('Session.create: model (the path of the text model) is required');
    const callbacks = onProgress || signal ? { progress_callback: { post: Boolean(onProgress) } } : {};
    const [handle] = await runJob(
      { fn: 'mm_session_create', args: [params], callbacks },
      { signal, onEvent: (_, [fraction]) => onProgress(fraction) },
    );
    return new Session(PRIVATE, handle);
  }

  /** Whether close() was called. */
  get closed() {
    return this.#closed;
  }

  /** The text that marks where a media item goes in a prompt (such as "<__media__>"). */
  get marker() {
    return this.#marker;
  }

  /**
   * Asks one question and resolves to the whole answer. `prompt` (with `media`) or `messages`
   * (a chat), and the fields of mm_ask_params in camelCase: maxTokens, temperature, stop,
   * grammar, ...; `signal` cancels it (the promise then rejects with the signal's reason).
   */
  ask(options = {}) {
    return this.#ask('Session.ask', options);
  }

  /**
   * Asks one question and yields the answer piece by piece, as it is generated (whole UTF-8
   * characters). Breaking out of the loop stops generation. Options as for ask().
   */
  async *stream(options = {}) {
    const request = this.#request(options, 'Session.stream');
    const pieces = [];
    let wake = null;
    let finished = false;
    let failure = null;
    const control = {};
    const op = this.#call('Session.stream', 'mm_session_ask', [request.params], {
      ...request,
      control,
      callbacks: { ...request.callbacks, on_text: { post: true } },
      onEvent: (field, args) => {
        if (field !== 'on_text') return request.onEvent(field, args);
        pieces.push(args[0]);
        wake?.();
      },
    });
    op.then(
      () => (finished = true),
      (err) => ((failure = err), (finished = true)),
    ).then(() => wake?.());
    try {
      for (;;) {
        if (pieces.length > 0) {
          yield pieces.shift();
        } else if (finished) {
          if (failure) throw failure;
          return;
        } else {
          await new Promise((resolve) => (wake = resolve));
          wake = null;
        }
      }
    } finally {
      if (!finished) {
        control.stopped = true;
        control.job?.stop();
        await op.catch(() => {});
      }
    }
  }

  /**
   * Asks with a chat: OpenAI-style messages ({ role, content }, content a string or parts:
   * text, image_url with a data: URI or a path, input_audio). Options as for ask().
   */
  chat(messages, options = {}) {
    return this.#ask('Session.chat', { ...options, messages });
  }

  /**
   * Asks with a chat, as chat() does, and resolves to the whole reply: { text (what chat()
   * resolves to: the answer's content), message (OpenAI's assistant message, to append to the
   * chat: content, reasoning_content, tool_calls), toolCalls, reasoningContent, stopReason
   * ('tool_calls' when the answer calls tools), info (as lastAsk() gives it) }. The message and
   * the figures are read on the pool thread of the request, right after it, so no other call
   * comes between.
   */
  async respond(messages, options = {}) {
    const request = this.#request({ ...optionsOf(options, 'Session.respond'), messages }, 'Session.respond');
    const then = [{ fn: 'mm_session_last_message', args: [this.#handle] }, { fn: 'mm_session_last_ask', args: [this.#handle] }];
    const [text, json, info] = await this.#call('Session.respond', 'mm_session_ask', [request.params], { ...request, then });
    return replyOf(text, json, info);
  }

  /**
   * The session's last finished answer as OpenAI's assistant message: { role: 'assistant',
   * content (null when the answer only calls tools), reasoning_content (when there is some),
   * tool_calls (when there are some) }. Calls of a session run in the order they were made, so
   * right after `await s.stream(...)` (or ask, chat) it is that answer's.
   */
  async lastMessage() {
    const [json] = await this.#call('Session.lastMessage', 'mm_session_last_message', []);
    return JSON.parse(json);
  }

  /**
   * The text of a request's prompt, as the model would read it: its messages rendered by the
   * session's chat template (with tools, toolChoice and reasoning as they change it), or its
   * prompt, with the marker where each media item goes. Nothing is evaluated.
   */
  async applyTemplate(options = {}) {
    const { params, signal, transfer } = this.#request(options, 'Session.applyTemplate');
    const [text] = await this.#call('Session.applyTemplate', 'mm_session_apply_template', [params], { signal, transfer });
    return text;
  }

  /**
   * The positions a request's prompt would take in the context, without evaluating it. A
   * request that does not fit rejects with MM_ERR_CONTEXT_FULL; the error's `positions` has
   * its count.
   */
  async countTokens(options = {}) {
    const { params, signal, transfer } = this.#request(options, 'Session.countTokens');
    try {
      const [positions] = await this.#call('Session.countTokens', 'mm_session_count_tokens', [params], { signal, transfer });
      return positions;
    } catch (err) {
      if (err instanceof MmError && err[OUTPUTS]) err.positions = err[OUTPUTS][0];
      throw err;
    }
  }

  /**
   * The token ids of `text` with this session's model, without the tokens added around a
   * prompt (to build logitBias, say). With `parseSpecial`, the text of a control token (such as
   * "<|im_end|>") becomes that token.
   */
  async tokenize(text, { parseSpecial = false } = {}) {
    if (typeof text !== 'string') throw new TypeError('Session.tokenize: text must be a string');
    if (typeof parseSpecial !== 'boolean') throw new TypeError('Session.tokenize: parseSpecial must be a boolean');
    const [tokens] = await this.#call('Session.tokenize', 'mm_session_tokenize', [text, parseSpecial]);
    return tokens;
  }

  /**
   * A new session sharing this one's model and projector (nothing is loaded again), with a
   * context of its own: the fields of mm_fork_params (nCtx, nThreads, seed, copyConversation).
   */
  async fork(options = {}) {
    const params = toStruct('mm_fork_params', optionsOf(options, 'Session.fork'), 'Session.fork');
    const [handle] = await this.#call('Session.fork', 'mm_session_fork', [params]);
    return new Session(PRIVATE, handle);
  }

  /** Context size, positions in use, media support, audio sample rate and marker. */
  async info() {
    const [raw] = await this.#call('Session.info', 'mm_session_get_info', []);
    return fromStruct('mm_session_info', raw);
  }

  /** The bytes the session holds, by use (model, KV cache, compute, projector) and place. */
  async memory() {
    const [raw] = await this.#call('Session.memory', 'mm_session_memory', []);
    return fromStruct('mm_memory_stats', raw);
  }

  /** Figures of the last finished request: positions, reuse, tokens, stop reason, times. */
  async lastAsk() {
    const [raw] = await this.#call('Session.lastAsk', 'mm_session_last_ask', []);
    return fromStruct('mm_ask_info', raw);
  }

  /** Empties the conversation cache: the next request evaluates everything. */
  async reset() {
    await this.#call('Session.reset', 'mm_session_reset', []);
  }

  /** Writes the conversation (KV cache and what it holds) to a file. */
  async saveState(path) {
    await this.#call('Session.saveState', 'mm_session_save_state', [stringArg(path, 'Session.saveState: path')]);
  }

  /** Replaces the conversation with one saved by saveState(). */
  async loadState(path) {
    await this.#call('Session.loadState', 'mm_session_load_state', [stringArg(path, 'Session.loadState: path')]);
  }

  /**
   * Cancels the calls made so far, the running one and those queued behind it: each rejects with
   * MM_ERR_CANCELLED, and the session stays usable. Calls made afterwards are not affected. Safe
   * at any time, after close() too.
   */
  cancel() {
    if (!this.#closed) for (const control of this.#pending) this.#cancel(control);
  }

  /**
   * Frees everything the session holds: the running call is cancelled, calls still queued
   * reject, and the handle is destroyed once the running call has returned. Closing twice is
   * safe; every call after close() rejects.
   */
  close() {
    if (this.#closing) return this.#closing;
    for (const control of this.#pending) this.#cancel(control);
    this.#closed = true;
    finalizer.unregister(this);
    const handle = this.#handle;
    this.#closing = this.#tail.then(async () => check(await pool.run({ fn: 'mm_session_destroy', args: [handle] }).done));
    return this.#closing;
  }

  /** `await using session = await Session.create(...)` closes it at the end of the block. */
  [Symbol.asyncDispose]() {
    return this.close();
  }

  async #ask(method, options) {
    const request = this.#request(options, method);
    const [text] = await this.#call(method, 'mm_session_ask', [request.params], request);
    return text;
  }

  /**
   * A request's options as a call: { params (mm_ask_params fields), signal, transfer (the
   * media buffers), callbacks and onEvent (the callback options, such as onToken, called on
   * the main thread with their arguments as results) }.
   */
  #request(options, where) {
    const { signal, ...rest } = optionsOf(options, where);
    const callbacks = {};
    const handlers = new Map();
    for (const { field, callback, option } of ASK_CALLBACKS) {
      const fn = rest[option];
      delete rest[option];
      if (fn === undefined) continue;
      if (typeof fn !== 'function') throw new TypeError(`${where}: ${option} must be a function`);
      callbacks[field.name] = { post: true };
      handlers.set(field.name, (args) => fn(...callbackArgs(callback, args)));
    }
    if (rest.toolChoice !== undefined) rest.toolChoice = toolChoice(rest.toolChoice, where);
    const params = toStruct('mm_ask_params', rest, where, {
      mm_media: toMedia,
      mm_message: (message, at) => toMessage(message, at, this.#marker),
      mm_message_ext: toMessageExt,
    });
    return { params, signal, transfer: transferList(params), callbacks, onEvent: (field, args) => handlers.get(field)(args) };
  }

  /**
   * Cancels a call. A queued one rejects when its turn comes. A running one is cancelled on its
   * pool thread (should it not have reached the library yet) and in the library, again every
   * CANCEL_REPEAT_MS until it returns, since a cancel only reaches a call that has begun.
   */
  #cancel(control) {
    control.cancelled = true;
    if (!control.job) return;
    control.job.cancel();
    fns.mm_session_cancel(this.#handle);
    control.repeat ??= setInterval(() => fns.mm_session_cancel(this.#handle), CANCEL_REPEAT_MS);
  }

  /** Queues one C call on this session's handle; it starts when the calls before it are done. */
  #call(method, fn, args, { signal, control = {}, callbacks, onEvent, transfer, then } = {}) {
    this.#pending.add(control);
    const start = async () => {
      try {
        if (this.#closed) throw closedError(method);
        if (control.cancelled) throw new MmError(statusCode('MM_ERR_CANCELLED'), `${method}: cancelled before it started`);
        return await runJob({ fn, args: [this.#handle, ...args], callbacks, transfer, then }, { signal, onEvent, control, onAbort: () => this.#cancel(control) });
      } finally {
        clearInterval(control.repeat);
        this.#pending.delete(control);
      }
    };
    const result = this.#tail.then(start, start);
    this.#tail = result.then(
      () => {},
      () => {},
    );
    return result;
  }
}

/** respond()'s reply from the answer's text, its message (JSON text) and its figures. */
function replyOf(text, json, rawInfo) {
  const message = JSON.parse(json);
  const info = fromStruct('mm_ask_info', rawInfo);
  return {
    text,
    message,
    toolCalls: message.tool_calls ?? [],
    reasoningContent: message.reasoning_content ?? '',
    stopReason: info.stopReason,
    info,
  };
}

function stringArg(value, where) {
  if (typeof value !== 'string') throw new TypeError(`${where}: expected a string`);
  return value;
}

module.exports = { Session };
