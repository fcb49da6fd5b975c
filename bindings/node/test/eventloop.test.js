'use strict';
// The event loop never waits for the library, and two sessions asked at once both make
// progress. Nothing here measures time: a free loop is told from a blocked one by what happens
// while a native call is known to be under way, so a slow or busy machine (which only makes the
// calls longer) passes as an idle one does, and a binding that made its calls on the main
// thread fails on any machine.
//
// - create (bench pair): from the first progress report that reaches JavaScript (the load has
//   begun) until the create resolves, the loop turns at least MIN_TURNS times. A load run on
//   the main thread lets it turn 0 times.
// - a long ask and a long stream (8 images, then a grammar that never lets the answer end):
//   once tokens reach JavaScript, a 10 ms interval ticks TICKS times, and only then does the
//   test stop the call, which must still be running: the ask rejects with the abort's reason,
//   the stream ends with stop reason "callback", short of maxTokens. A call run on the main
//   thread would leave the interval no tick before it ended by itself at maxTokens.
// - two sessions streamed at once: each gives MIN_PIECES pieces while the other's stream is
//   still running, and both are stopped by the test. With a lock shared between them, the
//   first would run to its maxTokens before the second gave a piece.
//
// Timing figures are printed (t.diagnostic), never asserted.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Session, liveSessions } = require('..');
const { benchFixtures, tickCounter, turnCounter } = require('./helpers');

const bench = benchFixtures();
/** Generation that runs until maxTokens: the grammar never lets the answer end. */
const ENDLESS = 'root ::= [a-z ] root';
/** Turns of the loop during the load: thousands on a free loop, 0 on a blocked one. */
const MIN_TURNS = 50;
/** Ticks of the 10 ms interval after the first token, before the test stops the call. */
const TICKS = 20;
/** Pieces each of two sessions streamed at once gives while the other is still running. */
const MIN_PIECES = 5;
/**
 * Far more tokens than come while the test waits for its ticks (about 100 of the bench pair in
 * 20 ticks here; 6000 take seconds on any machine, more on a busy one): a call that runs to it
 * was never stopped by the test. 8 images take 2048 positions of the 8192.
 */
const MAX_TOKENS = 6000;

function createBench(options = {}) {
  return Session.create({ model: bench.model, mmproj: bench.mmproj, nThreads: 1, nCtx: 8192, ...options });
}

const ms = (from) => `${(performance.now() - from).toFixed(0)} ms`;

test('create: the loop turns while the load runs', async (t) => {
  const turns = turnCounter();
  const ticks = tickCounter();
  let progress = 0;
  let turnsAtFirstProgress = null;
  const started = performance.now();
  const s = await createBench({
    onProgress: () => {
      progress++;
      turnsAtFirstProgress ??= turns.turns;
    },
  });
  const total = turns.stop();
  const { ticks: tickCount, maxGapMs } = ticks.stop();
  try {
    assert.ok(progress > 0, 'progress reached JavaScript');
    const during = total - turnsAtFirstProgress;
    t.diagnostic(`create: ${ms(started)}, ${progress} progress events, ${during} loop turns after the first of them (${total} in all), ${tickCount} ticks of 10 ms, largest gap ${maxGapMs.toFixed(1)} ms`);
    assert.ok(during >= MIN_TURNS, `the loop turned ${during} times between the first progress report and the end of the load`);
  } finally {
    await s.close();
  }
});

for (const mode of ['ask', 'stream']) {
  test(`a long ${mode} (8 images, then tokens): the loop ticks while it runs, until the test stops it`, async (t) => {
    const s = await createBench();
    try {
      const request = { prompt: 'Describe these pictures.', media: Array(8).fill(bench.image), maxTokens: MAX_TOKENS, grammar: ENDLESS, seed: 1 };
      const ticks = tickCounter();
      const started = performance.now();
      let tokens = 0;
      let ticksAtFirstToken = null;
      let firstTokenAt = 0;
      const onToken = () => {
        if (tokens++ === 0) {
          ticksAtFirstToken = ticks.ticks;
          firstTokenAt = performance.now();
        }
      };
      const ticksSinceFirstToken = () => (ticksAtFirstToken === null ? 0 : ticks.ticks - ticksAtFirstToken);
      let outcome;
      if (mode === 'ask') {
        const controller = new AbortController();
        const reason = new Error('stopped by the test');
        ticks.onTick(() => {
          if (ticksSinceFirstToken() >= TICKS) controller.abort(reason);
        });
        const err = await s.ask({ ...request, onToken, signal: controller.signal }).then(
          () => null,
          (e) => e,
        );
        outcome = err === reason ? 'stopped' : err === null ? 'finished by itself' : `failed: ${err}`;
      } else {
        outcome = 'finished by itself';
        for await (const _ of s.stream(request)) {
          onToken();
          if (ticksSinceFirstToken() >= TICKS) {
            outcome = 'stopped';
            break;
          }
        }
      }
      const { ticks: tickCount, maxGapMs } = ticks.stop();
      t.diagnostic(
        `${mode}: ${outcome} after ${ms(started)}; first token at ${(firstTokenAt - started).toFixed(0)} ms (${ticksAtFirstToken} ticks while the images were encoded), ` +
          `${tokens} tokens and ${ticksSinceFirstToken()} ticks from then on, ${tickCount} ticks in all, largest gap ${maxGapMs.toFixed(1)} ms`,
      );
      assert.equal(outcome, 'stopped', `the ${mode} ${outcome} after ${tokens} tokens, with the loop ticking ${ticksSinceFirstToken()} times from the first token on (the test stops it at ${TICKS})`);
      if (mode === 'stream') {
        const info = await s.lastAsk();
        assert.equal(info.mediaEncoded, 8);
        assert.equal(info.stopReason, 'callback');
        assert.ok(info.tokensGenerated < MAX_TOKENS, `${info.tokensGenerated} tokens generated`);
      }
      assert.equal(typeof (await s.ask({ prompt: 'And now?', maxTokens: 2 })), 'string', 'the session is usable after the stop');
    } finally {
      await s.close();
    }
  });
}

test('two sessions streamed at once: each gives pieces while the other is still running', async (t) => {
  const [a, b] = await Promise.all([0, 1].map(() => createBench()));
  try {
    const state = { a: { running: true, pieces: 0, overlapping: 0, first: 0, last: 0 }, b: { running: true, pieces: 0, overlapping: 0, first: 0, last: 0 } };
    const both = () => state.a.overlapping >= MIN_PIECES && state.b.overlapping >= MIN_PIECES;
    const started = performance.now();
    const run = async (name, other, s) => {
      const me = state[name];
      try {
        for await (const _ of s.stream({ prompt: 'Go on.', media: [bench.image], maxTokens: MAX_TOKENS, grammar: ENDLESS, seed: 2 })) {
          if (me.pieces++ === 0) me.first = performance.now() - started;
          me.last = performance.now() - started;
          if (state[other].running) me.overlapping++;
          if (both()) break;
        }
      } finally {
        me.running = false;
      }
    };
    await Promise.all([run('a', 'b', a), run('b', 'a', b)]);
    const [infoA, infoB] = [await a.lastAsk(), await b.lastAsk()];
    const figures = (name, info) => `${name}: ${state[name].pieces} pieces (${state[name].overlapping} while the other ran) at ${state[name].first.toFixed(0)}-${state[name].last.toFixed(0)} ms, ${info.tokensGenerated} tokens, stop ${info.stopReason}`;
    const summary = `${figures('a', infoA)}; ${figures('b', infoB)}; together ${ms(started)}`;
    t.diagnostic(summary);
    assert.ok(both(), summary);
    assert.equal(infoA.stopReason, 'callback', summary);
    assert.equal(infoB.stopReason, 'callback', summary);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  assert.equal(liveSessions(), 0);
});
