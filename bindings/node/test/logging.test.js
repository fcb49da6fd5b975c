'use strict';
// The library's logs (llama.cpp, ggml, mtmd, mm-session) reach a function or a console-like
// object at the level chosen, from whichever thread logs; null gives them back to stderr.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Session, setLogger } = require('..');
const { fixtures } = require('./helpers');

const fx = fixtures();
const ORDER = ['debug', 'info', 'warn', 'error'];

async function loadAndFail() {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1 });
  try {
    await s.ask({ prompt: 'x', grammar: 'root ::= (' }).catch(() => {});
  } finally {
    await s.close();
  }
}

test('a function receives the lines at and above the level chosen', async (t) => {
  t.after(() => setLogger(null));
  const lines = [];
  setLogger((level, message) => lines.push({ level, message }), 'info');
  await loadAndFail();
  assert.ok(lines.some((l) => l.level === 'info' && /llama|load|model/i.test(l.message)), 'info lines of the load');
  assert.ok(lines.some((l) => l.level === 'error' && /grammar/.test(l.message)), 'the grammar error');
  assert.ok(lines.every((l) => ORDER.indexOf(l.level) >= ORDER.indexOf('info')), 'nothing below info');
  assert.ok(lines.every((l) => !l.message.endsWith('\n')), 'one line each, without its newline');

  lines.length = 0;
  setLogger((level, message) => lines.push({ level, message }), 'error');
  await loadAndFail();
  assert.ok(lines.length > 0 && lines.every((l) => l.level === 'error'), JSON.stringify(lines.slice(0, 3)));
});

test('a console-like object gets each line through the method of its level; null and off silence it', async (t) => {
  t.after(() => setLogger(null));
  const calls = [];
  const fakeConsole = Object.fromEntries(['log', ...ORDER].map((m) => [m, (message) => calls.push(m)]));
  setLogger(fakeConsole, 'info');
  await loadAndFail();
  assert.ok(calls.includes('info') && calls.includes('error'), calls.join(','));

  calls.length = 0;
  setLogger(fakeConsole, 'off');
  await loadAndFail();
  setLogger(null);
  await loadAndFail();
  assert.deepEqual(calls, []);
});

test('wrong arguments are TypeErrors', () => {
  assert.throws(() => setLogger(() => {}, 'loud'), { name: 'TypeError', message: /debug, info, warn, error, off/ });
  assert.throws(() => setLogger('console'), { name: 'TypeError' });
});
