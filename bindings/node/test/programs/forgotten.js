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
  for (let i = 0; i < 50 && liveSessions() > 0; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  console.log(JSON.stringify({ before, after: liveSessions(), warnings }));
}

main();
