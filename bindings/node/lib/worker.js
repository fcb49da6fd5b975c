'use strict';
// A pool thread (lib/pool.js): runs one C call at a time, synchronously, so that the call, its
// callbacks and mm_last_error() all happen on this thread. Callbacks post what they receive to
// the main thread and return at once: the library never waits for the main thread's event
// loop. Bool callbacks return false once the main thread raises the job's stop flag; a job whose
// cancel flag is up before it reaches the library returns MM_ERR_CANCELLED without calling it.
//
// A job: { id, fn, args, callbacks, then }. `fn` names a C function; `args` follow its parameters:
// for an input struct (`const T *` with a `T_default()`), the fields to set over the defaults;
// for what the library writes (`T *`, `T **`, an array with its capacity), nothing. `callbacks`
// names the callback fields of the input struct to set: { field: { post } }. The answer:
// { id, status, message, outputs }, one output per written parameter (a struct, a number, a
// handle, a string or an array), after the callbacks' events ({ id, events }) if any. `then`
// lists calls to make right after a successful one, on the same thread (see run()).

const { parentPort, workerData } = require('node:worker_threads');
const { koffi, types, fns, takeString } = require('./ffi');
const A = require('./abi');
const { arrayPairs, arrayOutput, stringsWithLength, callbackParams } = require('./rules');
const { STOP, CANCEL } = require('./flags');
const { statusCode } = require('./errors');

const flags = new Int32Array(workerData.control);
const CANCELLED = statusCode('MM_ERR_CANCELLED');

/**
 * How to read the struct a callback's pointer argument points to: koffi's decoding, with the
 * strings given with their length read as exactly that many bytes (a token's text may end
 * inside a UTF-8 character). Reads `count` structs in a row when a count is given.
 */
function structReader(name) {
  const t = types.get(name);
  const size = BigInt(koffi.sizeof(t));
  const sized = [...stringsWithLength(A.structs.get(name).fields)].map((field) => ({ field, offset: koffi.offsetof(t, field) }));
  const one = (ptr) => {
    const s = koffi.decode(ptr, t);
    for (const { field, offset } of sized) {
      const text = koffi.decode(ptr, offset, 'void *');
      s[field] = s.len === 0 || text === null ? new Uint8Array(0) : Uint8Array.from(koffi.decode(text, 'uint8_t', s.len));
    }
    return s;
  };
  return (ptr, count) => (count === undefined ? one(ptr) : Array.from({ length: count }, (_, i) => one(ptr + BigInt(i) * size)));
}

/**
 * How to turn a callback's C arguments into JavaScript values: user data, counts and string
 * lengths left out (lib/rules.js callbackParams), struct pointers read (an array when a count
 * follows), the rest as koffi gives them. Made once per callback type.
 */
function argumentReader(cb) {
  const pairs = arrayPairs(cb.params);
  const readers = callbackParams(cb).map(({ param: p, index: i }) => {
    if (p.type.pointers === 1 && A.structs.has(p.type.base)) {
      const read = structReader(p.type.base);
      const n = pairs.has(p.name) ? cb.params.findIndex((q) => q.name === pairs.get(p.name)) : -1;
      return n < 0 ? (raw) => read(raw[i]) : (raw) => read(raw[i], Number(raw[n]));
    }
    return (raw) => raw[i];
  });
  return (raw) => readers.map((read) => read(raw));
}

const argumentReaders = new Map([...A.callbacks].map(([name, cb]) => [name, argumentReader(cb)]));

/**
 * Callback events on their way to the main thread. Each message wakes the main thread, and a
 * wake-up per token slows generation when the machine is busy; so events that come within
 * BATCH_MS of the last message wait for the next event or the end of the call, and go together:
 * one message at most every BATCH_MS while tokens come faster than that, every event at once
 * when they come slower.
 */
const BATCH_MS = 5;
const outbox = { id: 0, events: [], lastPost: 0 };

function flush() {
  if (outbox.events.length === 0) return;
  parentPort.postMessage({ id: outbox.id, events: outbox.events });
  outbox.events = [];
  outbox.lastPost = performance.now();
}

function queueEvent(id, field, args) {
  outbox.id = id;
  outbox.events.push([field, args]);
  if (performance.now() - outbox.lastPost >= BATCH_MS) flush();
}

/** A JavaScript function for a callback field: posts its arguments, answers from the stop flag. */
function forwarder(id, field, cb, post) {
  const returnsBool = cb.ret.base === 'bool' && cb.ret.pointers === 0;
  const read = argumentReaders.get(cb.name);
  return (...raw) => {
    if (post) queueEvent(id, field, read(raw));
    return returnsBool ? Atomics.load(flags, STOP) === 0 : undefined;
  };
}

const defaultStructs = new Map();

/** The library's defaults of an input struct (T_default()), asked once. */
function defaults(name) {
  if (!defaultStructs.has(name)) defaultStructs.set(name, fns[`${name}_default`]());
  return defaultStructs.get(name);
}

const TYPED_ARRAYS = { int8_t: Int8Array, uint8_t: Uint8Array, int16_t: Int16Array, uint16_t: Uint16Array, int32_t: Int32Array, uint32_t: Uint32Array, float: Float32Array, double: Float64Array };

/**
 * The C arguments of a job, and how to read back each written one. An array the function
 * writes (lib/rules.js arrayOutput) starts empty: run() asks for the count, then the array.
 */
function prepare(job) {
  const fn = A.functions.get(job.fn);
  const output = arrayOutput(fn);
  const readers = [];
  const args = fn.params.map((p, i) => {
    const { base, baseConst, pointers } = p.type;
    if (output && i === output.array) {
      readers.push(() => Array.from(args[i] || []));
      return null;
    }
    if (output && i === output.capacity) return 0;
    if (pointers === 1 && baseConst && A.structs.has(base)) {
      const s = { ...defaults(base), ...job.args[i] };
      for (const [field, { post }] of Object.entries(job.callbacks || {})) {
        const decl = A.structs.get(base).fields.find((f) => f.name === field);
        s[field] = forwarder(job.id, field, A.callbacks.get(decl.type.base), post);
      }
      return s;
    }
    if (pointers === 1 && !baseConst && A.structs.has(base)) {
      const s = { struct_size: koffi.sizeof(types.get(base)) };
      readers.push(() => s);
      return s;
    }
    if ((pointers === 1 && !baseConst && !A.opaques.has(base) && base !== 'void' && base !== 'char') || pointers === 2) {
      const box = [base === 'char' || A.opaques.has(base) ? null : 0];
      readers.push(base === 'char' ? () => takeString(box[0]) : () => box[0]);
      return box;
    }
    return job.args[i];
  });
  return { fn, args, readers, output };
}

/** One C call of a job: { status, message, outputs }. */
function call(job) {
  const { fn, args, readers, output } = prepare(job);
  let status = fns[job.fn](...args);
  const count = output && status === 0 ? Number(args[output.count][0]) : 0;
  if (count > 0) {
    args[output.array] = new TYPED_ARRAYS[fn.params[output.array].type.base](count);
    args[output.capacity] = count;
    status = fns[job.fn](...args);
  }
  const message = status === 0 ? '' : fns.mm_last_error();
  return { status, message, outputs: readers.map((read) => read()) };
}

/**
 * Runs a job: its call, then, when it succeeded, the calls of `job.then` ([{ fn, args }], no
 * callbacks), on this thread and with no call of anyone else's between (what reads the state
 * the first call left, such as mm_session_last_message after mm_session_ask). Their outputs
 * follow the first call's; the first of them that fails gives the answer its status.
 */
function run(job) {
  if (Atomics.load(flags, CANCEL) !== 0) return { status: CANCELLED, message: `${job.fn}: cancelled before it started`, outputs: [] };
  const first = call(job);
  for (const next of first.status === 0 ? job.then || [] : []) {
    const answer = call({ id: job.id, ...next });
    first.outputs.push(...answer.outputs);
    if (answer.status !== 0) return { ...answer, outputs: first.outputs };
  }
  return first;
}

parentPort.on('message', (job) => {
  if (job.collectGarbage) {
    // For tests that measure memory (run with --expose-gc, which pool threads inherit).
    globalThis.gc?.();
    parentPort.postMessage({ id: job.id, status: 0, message: '', outputs: [] });
    return;
  }
  let answer;
  try {
    answer = { id: job.id, ...run(job) };
  } catch (err) {
    answer = { id: job.id, thrown: { name: err.name, message: err.message } };
  }
  flush();
  parentPort.postMessage(answer);
});
