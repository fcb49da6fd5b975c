'use strict';
// Memory stays flat over create/ask/close cycles: test/programs/cycles.js runs 200 of them in a
// process of its own, and resident memory may grow by less than 2 MB from cycle 10 to 200, with
// no session left alive.
//
// glibc's malloc raises its mmap threshold to the size of the largest buffer freed (up to
// 32 MB), after which the library's buffers below it land in the pool thread's arena: RSS then
// swings by about 2 MB either way with where they land (-2.1 to +2.1 MB over 6 runs), with
// what is in use flat. The program runs with the threshold fixed at glibc's default (128 kB),
// so that RSS shows what is held (+0.1 to +0.35 MB over 3 runs).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const LIMIT_KB = 2048;

/** Runs test/programs/cycles.js with `args`; its last line, parsed. */
function cycles(args) {
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'programs', 'cycles.js'), ...args], {
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1));
}

test('200 create/ask/close cycles: RSS growth from cycle 10 to 200 under 2 MB, no live session', (t) => {
  const result = cycles([]);
  t.diagnostic(JSON.stringify(result));
  assert.equal(result.liveSessions, 0);
  assert.ok(result.growthKb < LIMIT_KB, `RSS grew by ${result.growthKb} kB from cycle 10 to ${result.cycles}`);
});

test('batched cycles (nParallel 4, 3 forks, asked at once): RSS growth from cycle 200 to 400 under 2 MB', (t) => {
  const result = cycles(['batched']);
  t.diagnostic(JSON.stringify(result));
  assert.equal(result.liveSessions, 0);
  assert.ok(result.growthKb < LIMIT_KB, `RSS grew by ${result.growthKb} kB from cycle ${result.from} to ${result.cycles}`);
});
