'use strict';
// MmError: a failed library call, with its status ({ name, code, description }, as the
// header's mm_status names them and mm_status_str describes them) and the library's message
// (mm_last_error, read on the thread that made the call).

const A = require('./abi');
const { fns } = require('./ffi');

const STATUS_NAMES = new Map(A.enums.get('mm_status').members.map((m) => [m.value, m.name]));
const STATUS_CODES = new Map(A.enums.get('mm_status').members.map((m) => [m.name, m.value]));

class MmError extends Error {
  /**
   * @param {number} code an mm_status value
   * @param {string} message the library's message (or the binding's, for a closed session)
   */
  constructor(code, message, options) {
    const name = STATUS_NAMES.get(code) || `MM_STATUS_${code}`;
    super(message || name, options);
    this.name = 'MmError';
    this.status = Object.freeze({ name, code, description: fns.mm_status_str(code) });
  }
}

/** The status code of a name: statusCode('MM_ERR_CANCELLED') === 12. */
function statusCode(name) {
  const code = STATUS_CODES.get(name);
  if (code === undefined) throw new Error(`mm-session: the header has no status ${name}`);
  return code;
}

/** The error of a session that was closed: the library would answer MM_ERR_INVALID_HANDLE. */
function closedError(method) {
  return new MmError(statusCode('MM_ERR_INVALID_HANDLE'), `${method}: the session is closed`);
}

module.exports = { MmError, statusCode, closedError };
