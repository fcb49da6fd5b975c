'use strict';
// 200 cycles of create (the tiny pair), ask with two images (a path and the file's bytes) and
// close, in a process of its own (started by test/memory.test.js with --expose-gc). Prints one
// JSON line: resident memory at cycles 10 and 200 and the live sessions at the end.
//
// With the argument `batched`, each cycle creates a session with nParallel 4 and 3 forks of it
// (one context with 4 slots), asks all 4 at once (Promise.all: each ask runs on a pool thread
// of its own, so they decode together) and closes them: 400 cycles, memory read at cycles 200
// and 400 (the four pool threads' heaps take longer to settle than one's).
//
// Resident memory is read when garbage is not what it shows: both JavaScript heaps (the main
// thread's and the pool thread's) are collected, then V8 is given time to return freed pages.
// Before the cycles, 1000 info() calls warm Node itself: V8 optimizing the binding's code paths
// pages in some 3 MB of the node executable and heap pages become resident over the first few
// hundred calls, whatever the calls do (the same growth shows with info() calls alone).

const fs = require('node:fs');
const { Session, liveSessions } = require('../..');
const { pool } = require('../../lib/pool');
const { fixtures } = require('../helpers');

const BATCHED = process.argv[2] === 'batched';
// Batched cycles run on four pool threads, whose heaps settle later: from cycle 10 to 200
// resident memory grew by 1.8 MB (3 runs), then swings by several MB, mostly down, and holds
// (+0.5 MB from cycle 200 to 600, one run): measured from cycle 200.
const FROM = BATCHED ? 200 : 10;
const CYCLES = BATCHED ? 400 : 200;
const fx = fixtures();

function residentKb() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

async function settledResidentKb() {
  for (let i = 0; i < 2; i++) {
    await pool.collectGarbage();
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return residentKb();
}

/** One cycle: a session and its forks asked at once, then closed. */
async function batchedCycle(png) {
  const parent = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 512, seed: 1, nParallel: 4 });
  const sessions = [parent];
  try {
    for (let i = 1; i < 4; i++) sessions.push(await parent.fork());
    await Promise.all(sessions.map((s, i) => s.ask({ prompt: `Compare the two images, ${i}.`, media: [{ path: fx.image }, { data: png }], maxTokens: 8 })));
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

async function main() {
  const warm = await Session.create({ model: fx.model, nThreads: 1, nCtx: 64 });
  for (let i = 0; i < 1000; i++) await warm.info();
  await warm.close();

  const png = fs.readFileSync(fx.image);
  const at = {};
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    if (BATCHED) {
      await batchedCycle(png);
    } else {
      const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 512, seed: 1 });
      await s.ask({ prompt: 'Compare the two images.', media: [{ path: fx.image }, { data: png }], maxTokens: 8 });
      await s.close();
    }
    if (cycle === FROM || cycle === CYCLES) at[cycle] = await settledResidentKb();
  }
  const growth = (key) => at[CYCLES][key] - at[FROM][key];
  console.log(JSON.stringify({ cycles: CYCLES, batched: BATCHED, from: FROM, rssKbFrom: at[FROM].rss, rssKbLast: at[CYCLES].rss, growthKb: growth('rss'), anonGrowthKb: growth('anon'), fileGrowthKb: growth('file'), liveSessions: liveSessions() }));
}

main();
