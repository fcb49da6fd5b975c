'use strict';
// Many conversations on one model: a session created with nParallel 8 and its forks share one
// context with 8 slots, and requests asked at the same time decode together in shared steps.
//
// Each ask runs on a pool thread of its own, so Promise.all over eight asks asks them at once.
// The binding's callbacks only post to the main thread (the pool thread never waits for it), so
// the requests cannot be made to meet at their first piece as the C tests do. The tiny models
// answer in microseconds, so overlap is made likely instead: every request generates 64 tokens
// (the end-of-turn token banned by logitBias), and the round is tried a few times until one
// request reports that a step carried more sessions than its own.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Session, liveSessions, constants } = require('..');
const { fixtures } = require('./helpers');

const fx = fixtures();
const QUESTION = 'What colour is this picture?';
const COLOURS = ['red', 'green', 'blue', 'yellow', 'white', 'black'];
const colour = (i) => COLOURS[i % COLOURS.length];
const ATTEMPTS = 10;
const MAX_TOKENS = 256;

test('eight sessions on one context, asked at once: each sees its own picture, steps are shared', async (t) => {
  const parent = await Session.create({ model: fx.seeing.model, mmproj: fx.seeing.mmproj, nThreads: 1, nCtx: 512, nParallel: 8 });
  const sessions = [parent];
  try {
    for (let i = 1; i < 8; i++) sessions.push(await parent.fork());
    for (const s of sessions) {
      const info = await s.info();
      assert.equal(info.nParallel, 8);
      assert.equal(info.nCtx, 512);
      assert.ok(info.nBatch > 0);
    }
    assert.equal((await parent.memory()).contextSharedBy, 8);

    // Greedy: each answer is its picture's colour.
    const answers = await Promise.all(sessions.map((s, i) => s.ask({ prompt: QUESTION, media: [fx.seeing.image(colour(i))], temperature: 0 })));
    assert.deepEqual(answers, sessions.map((_, i) => colour(i)));

    // Longer answers that begin with the colour, until some request shared a step.
    const [end] = await parent.tokenize('<|im_end|>', { parseSpecial: true });
    let together = 0;
    for (let attempt = 1; attempt <= ATTEMPTS && together < 2; attempt++) {
      await Promise.all(sessions.map((s) => s.reset()));
      const long = await Promise.all(
        sessions.map((s, i) => s.ask({ prompt: QUESTION, media: [fx.seeing.image(colour(i))], temperature: 0, maxTokens: MAX_TOKENS, logitBias: [{ token: end, bias: -Infinity }] })),
      );
      const infos = await Promise.all(sessions.map((s) => s.lastAsk()));
      long.forEach((answer, i) => assert.ok(answer.startsWith(colour(i)), `session ${i}: ${JSON.stringify(answer)}`));
      infos.forEach((info, i) => {
        assert.equal(info.tokensGenerated, MAX_TOKENS, `session ${i}`);
        assert.equal(info.stopReason, 'max_tokens');
        assert.ok(info.mostTogether >= 1 && info.mostTogether <= 8, `session ${i}: ${info.mostTogether}`);
        assert.ok(info.slotWaitMs >= 0);
      });
      together = Math.max(...infos.map((info) => info.mostTogether));
      t.diagnostic(`attempt ${attempt} (${Math.max(...infos.map((info) => info.promptMs + info.generateMs)).toFixed(0)} ms): mostTogether ${infos.map((info) => info.mostTogether).join(' ')}`);
    }
    assert.ok(together > 1, `no step carried more than one session in ${ATTEMPTS} attempts`);
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
  assert.equal(liveSessions(), 0);
});

test('a fork beyond the slots still answers: its request waits for a slot', async () => {
  const parent = await Session.create({ model: fx.seeing.model, mmproj: fx.seeing.mmproj, nThreads: 1, nCtx: 512, nParallel: 2 });
  const sessions = [parent];
  try {
    for (let i = 1; i < 4; i++) sessions.push(await parent.fork());
    const answers = await Promise.all(sessions.map((s, i) => s.ask({ prompt: QUESTION, media: [fx.seeing.image(colour(i))], temperature: 0 })));
    assert.deepEqual(answers, sessions.map((_, i) => colour(i)));
    for (const s of sessions) {
      const info = await s.lastAsk();
      assert.ok(info.slotWaitMs >= 0 && info.mostTogether >= 1 && info.mostTogether <= 2, JSON.stringify(info));
    }
    // A fork's own context settings must be its parent's (or left unset).
    await assert.rejects(parent.fork({ nCtx: 256 }), (err) => err.status.name === 'MM_ERR_INVALID_ARGUMENT');
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
});

test('nParallel: 1 by default, 0 and more than MM_MAX_PARALLEL are invalid arguments', async () => {
  const s = await Session.create({ model: fx.model, nThreads: 1, nCtx: 64 });
  try {
    assert.equal((await s.info()).nParallel, 1);
    assert.equal((await s.memory()).contextSharedBy, 1);
    await s.ask({ prompt: 'hello', maxTokens: 2 });
    const info = await s.lastAsk();
    assert.equal(info.mostTogether, 1);
    assert.equal(info.slotWaitMs, 0);
  } finally {
    await s.close();
  }
  for (const nParallel of [0, constants.MM_MAX_PARALLEL + 1]) {
    await assert.rejects(Session.create({ model: fx.model, nThreads: 1, nParallel }), (err) => err.status.name === 'MM_ERR_INVALID_ARGUMENT' && /n_parallel/.test(err.message));
  }
  assert.equal(liveSessions(), 0);
});
