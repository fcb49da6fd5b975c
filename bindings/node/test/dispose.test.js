'use strict';
// Explicit disposal: Symbol.asyncDispose closes a session, `await using` works where the
// language has it (TypeScript compiles it for Node 20, whose parser does not know it yet), and
// a session nobody closed is freed by the garbage collector's safety net. The TypeScript
// declarations are checked by compiling a program that uses the API (strict).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Session, liveSessions } = require('..');
const { fixtures } = require('./helpers');

const fx = fixtures();
const TSC = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');

function runtimeParses(source) {
  try {
    new Function(source);
    return true;
  } catch {
    return false;
  }
}

test('Symbol.asyncDispose closes the session', async () => {
  const s = await Session.create({ model: fx.model, nThreads: 1 });
  assert.equal(typeof s[Symbol.asyncDispose], 'function');
  await s[Symbol.asyncDispose]();
  assert.equal(s.closed, true);
  assert.equal(liveSessions(), 0);
});

test('`await using` in this runtime\'s own syntax', { skip: !runtimeParses('async () => { await using x = null; }') && `Node ${process.version} does not parse await using` }, async () => {
  const AsyncFunction = (async () => {}).constructor;
  const body = new AsyncFunction('Session', 'opts', 'liveSessions', '{ await using s = await Session.create(opts); } return liveSessions();');
  assert.equal(await body(Session, { model: fx.model, nThreads: 1 }), 0);
});

test('the TypeScript declarations compile (strict) and `await using` compiled by tsc closes the session', () => {
  // Two levels below the package, as test/types/ is: the program imports '../..'.
  fs.mkdirSync(path.join(__dirname, '..', 'build'), { recursive: true });
  const out = fs.mkdtempSync(path.join(__dirname, '..', 'build', 'ts-'));
  try {
    execFileSync(process.execPath, [TSC, '-p', path.join(__dirname, 'types'), '--outDir', out], { encoding: 'utf8' });
    const printed = execFileSync(process.execPath, [path.join(out, 'usage.js'), fx.model, fx.mmproj, fx.image], { encoding: 'utf8' });
    assert.match(printed, /closed by await using/);
  } finally {
    fs.rmSync(out, { recursive: true });
  }
});

test('a session nobody closed is destroyed once it is garbage, with a warning', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'programs', 'forgotten.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const result = JSON.parse(out.trim().split('\n').at(-1));
  assert.deepEqual(result, { before: 1, after: 0, warnings: ['MmSessionWarning'] });
});
