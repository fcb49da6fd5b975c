'use strict';
// A session nobody closes (run with --expose-gc by test/dispose.test.js): once it is garbage,
// the FinalizationRegistry destroys its handle and Node prints a warning. Prints one JSON line.

const { Session, liveSessions } = require('../..');
const { fixtures } = require('../helpers');

const fx = fixtures();
const warnings = [];
process.on('warning', (w) => warnings.push(w.name));

async function forget() {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1 });
  await s.ask({ prompt: 'hello', maxTokens: 2 });
}

async function main() {
  await forget();
  const before = liveSessions();
  // Collections until the finalizer has run and its destroy has returned on a pool thread: a
  // few on an idle machine; the deadline (30 s) is only for a session that is never freed.
  const deadline = Date.now() + 30000;
  while (liveSessions() > 0 && Date.now() < deadline) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  console.log(JSON.stringify({ before, after: liveSessions(), warnings }));
}

main();
