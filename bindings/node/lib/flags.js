'use strict';
// The flags a pool job shares with its thread (an Int32Array over a SharedArrayBuffer).

/** Up: the job's bool callbacks return false (a stream's consumer stopped reading, a create's signal). */
const STOP = 0;
/** Up: a job that has not yet reached the library returns MM_ERR_CANCELLED without calling it. */
const CANCEL = 1;

module.exports = { STOP, CANCEL, COUNT: 2 };
