'use strict';
// The event loop never waits for the library: while the bench pair loads and answers a long
// request, a 10 ms interval keeps firing (largest gap under 50 ms); and two sessions asked at
// once from one process both make progress (no lock shared between sessions).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Session, liveSessions } = require('..');
const { benchFixtures, watchEventLoop } = require('./helpers');

const bench = benchFixtures();
const MAX_GAP_MS = 50;
/** Generation that runs until maxTokens: the grammar never lets the answer end. */
const ENDLESS = 'root ::= [a-z ] root';

test('create and a long ask leave the event loop free', async () => {
  let progress = 0;
  const created = watchEventLoop();
  const s = await Session.create({ model: bench.model, mmproj: bench.mmproj, nThreads: 1, onProgress: () => progress++ });
  const duringCreate = created.stop();
  try {
    assert.ok(progress > 0, 'progress reached JavaScript');
    assert.ok(duringCreate.maxGapMs < MAX_GAP_MS, `largest gap during create: ${duringCreate.maxGapMs.toFixed(1)} ms`);

    for (const mode of ['ask', 'stream']) {
      await s.reset();
      const request = { prompt: 'Describe these pictures.', media: [bench.image, bench.image, bench.image, bench.image], maxTokens: 64, grammar: ENDLESS, seed: 1 };
      const asked = watchEventLoop();
      const started = performance.now();
      if (mode === 'ask') await s.ask(request);
      else for await (const _ of s.stream(request));
      const took = performance.now() - started;
      const during = asked.stop();
      const info = await s.lastAsk();
      assert.equal(info.mediaEncoded, 4);
      assert.equal(info.tokensGenerated, 64);
      assert.ok(took > 10 * MAX_GAP_MS, `${mode} took ${took.toFixed(0)} ms: long enough to show a blocked loop`);
      assert.ok(during.ticks >= took / 10 / 2, `${mode}: ${during.ticks} ticks in ${took.toFixed(0)} ms`);
      assert.ok(during.maxGapMs < MAX_GAP_MS, `${mode}: largest gap ${during.maxGapMs.toFixed(1)} ms in ${took.toFixed(0)} ms`);
      console.log(`# ${mode}: ${took.toFixed(0)} ms, ${during.ticks} ticks, largest gap ${during.maxGapMs.toFixed(1)} ms; create: largest gap ${duringCreate.maxGapMs.toFixed(1)} ms`);
    }
  } finally {
    await s.close();
  }
});

test('two sessions asked at once both make progress', async () => {
  const [a, b] = await Promise.all([0, 1].map(() => Session.create({ model: bench.model, mmproj: bench.mmproj, nThreads: 1 })));
  try {
    const times = { a: [], b: [] };
    const run = async (name, s) => {
      const t0 = performance.now();
      for await (const _ of s.stream({ prompt: 'Go on.', media: [bench.image], maxTokens: 48, grammar: ENDLESS, seed: 2 })) times[name].push(performance.now() - t0);
    };
    const started = performance.now();
    await Promise.all([run('a', a), run('b', b)]);
    const wall = performance.now() - started;
    assert.equal(times.a.length > 0 && times.b.length > 0, true);
    // Each one's first piece comes before the other's last: they ran side by side, not in turn.
    assert.ok(times.a[0] < times.b.at(-1) && times.b[0] < times.a.at(-1), `a: ${times.a[0].toFixed(0)}-${times.a.at(-1).toFixed(0)} ms, b: ${times.b[0].toFixed(0)}-${times.b.at(-1).toFixed(0)} ms`);
    console.log(`# two sessions: a ${times.a[0].toFixed(0)}-${times.a.at(-1).toFixed(0)} ms, b ${times.b[0].toFixed(0)}-${times.b.at(-1).toFixed(0)} ms, together ${wall.toFixed(0)} ms`);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  assert.equal(liveSessions(), 0);
});
