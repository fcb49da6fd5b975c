'use strict';
// Where the library's logs go (llama.cpp, ggml, mtmd and mm-session's own): a function, a
// console-like object, or back to the library's default (stderr). One callback is registered
// with koffi for the life of the process and reads the current sink: a log line already on its
// way from another thread never reaches a callback that was unregistered.

const { koffi, types, fns } = require('./ffi');
const { enumValue } = require('./options');
const A = require('./abi');
const { MmError } = require('./errors');

const LEVEL_NAMES = A.enumNames('mm_log_level').byValue;
let sink = null;
let registered = null;

/** The one registered callback: messages come queued to the main thread, one line each. */
function trampoline(_userData, level, message) {
  const current = sink;
  if (!current) return;
  try {
    current(LEVEL_NAMES.get(level) || String(level), String(message).replace(/\n$/, ''));
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

/** A sink writing to a console-like object's debug/info/warn/error methods. */
function consoleSink(target) {
  return (level, message) => (typeof target[level] === 'function' ? target[level] : target.log).call(target, message);
}

/**
 * Sends the library's log messages of `level` and above ('debug', 'info', 'warn', 'error';
 * 'off' for none) to `logger`: a function (level, message), or a console-like object such as
 * `console`. `null` restores the library's default: stderr. Messages from other threads reach
 * the logger through the event loop, and the thread that logs waits for it: keep it quick.
 */
function setLogger(logger, level = 'warn') {
  const min = enumValue('mm_log_level', level, 'setLogger: level');
  if (logger !== null && typeof logger !== 'function' && (typeof logger !== 'object' || typeof logger.log !== 'function')) {
    throw new TypeError('setLogger: expected a function, a console-like object or null');
  }
  if (logger !== null && !registered) registered = koffi.register(trampoline, koffi.pointer(types.get('mm_log_callback')));
  const status = fns.mm_log_set(min, logger === null ? null : registered, null);
  if (status !== 0) throw new MmError(status, fns.mm_last_error());
  sink = logger === null ? null : typeof logger === 'function' ? logger : consoleSink(logger);
}

module.exports = { setLogger };
