'use strict';
// The session API on generated models: the pair that sees names the colour of the picture it
// is shown, whichever way the picture is given, so a right answer proves the image reached the
// model. Greedy sampling (temperature 0) everywhere an answer is compared.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { Session, liveSessions, loadedModels, version, versionNumber, buildInfo, constants, HEADER_VERSION, library } = require('..');
const { fixtures, pngSize } = require('./helpers');

const fx = fixtures();
const QUESTION = 'What colour is this picture?';

/** Solid RGB pixels of one colour, the size of the seeing fixtures' PNGs. */
function solidRgb([r, g, b]) {
  const { width, height } = pngSize(fx.seeing.image('red'));
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i += 3) rgb.set([r, g, b], i);
  return { rgb, width, height };
}

/** A mono sine at the projector's sample rate. */
function tone(sampleRate, seconds) {
  const pcm = new Float32Array(Math.round(sampleRate * seconds));
  for (let i = 0; i < pcm.length; i++) pcm[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / sampleRate);
  return pcm;
}

let seeing;
test.before(async () => {
  seeing = await Session.create({ model: fx.seeing.model, mmproj: fx.seeing.mmproj, nThreads: 1, nCtx: 1024 });
});
test.after(async () => {
  await seeing.close();
  assert.equal(liveSessions(), 0);
});

test('the library and the header it was generated from agree', () => {
  assert.equal(version(), HEADER_VERSION);
  assert.equal(versionNumber(), constants.MM_VERSION_NUMBER);
  assert.equal(constants.MM_SEED_DEFAULT, 0xffffffff);
  assert.ok(fs.existsSync(library.file), library.file);
  assert.match(buildInfo(), new RegExp(`^mm-session ${version().replace(/\./g, '\\.')}; .*backends: `));
});

test('create reports progress to JavaScript, ending at 1', async () => {
  const seen = [];
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, onProgress: (p) => seen.push(p) });
  await s.close();
  assert.ok(seen.length > 2, `${seen.length} progress calls`);
  assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'progress only grows');
  assert.equal(seen.at(-1), 1);
});

for (const [kind, media] of [
  ['a path', () => ({ path: fx.seeing.image('red') })],
  ['a path given as a string', () => fx.seeing.image('red')],
  ['the bytes of the file (Buffer)', () => ({ data: fs.readFileSync(fx.seeing.image('red')) })],
  ['the bytes of the file (Uint8Array inside a larger buffer)', () => {
    const bytes = fs.readFileSync(fx.seeing.image('red'));
    const big = new Uint8Array(bytes.length + 64);
    big.set(bytes, 32);
    return { data: big.subarray(32, 32 + bytes.length) };
  }],
  ['raw RGB pixels', () => solidRgb([255, 0, 0])],
]) {
  test(`the pair that sees answers "red" for an image given as ${kind}`, async () => {
    await seeing.reset();
    assert.equal(await seeing.ask({ prompt: QUESTION, media: [media()], temperature: 0 }), 'red');
    assert.equal((await seeing.lastAsk()).mediaEncoded, 1);
  });
}

test('a marker in the prompt places the image; other colours are told apart', async () => {
  for (const colour of ['blue', 'green', 'yellow']) {
    await seeing.reset();
    const answer = await seeing.ask({ prompt: `${seeing.marker}\n${QUESTION}`, media: [{ path: fx.seeing.image(colour) }], temperature: 0 });
    assert.equal(answer, colour);
  }
});

test('chat with OpenAI content parts: data: URI, path and file: URL', async () => {
  const red = fx.seeing.image('red');
  const urls = [`data:image/png;base64,${fs.readFileSync(red).toString('base64')}`, red, pathToFileURL(red).href];
  for (const url of urls) {
    await seeing.reset();
    const messages = [{ role: 'user', content: [{ type: 'text', text: QUESTION }, { type: 'image_url', image_url: { url } }] }];
    assert.equal(await seeing.chat(messages, { temperature: 0 }), 'red', url.slice(0, 40));
  }
  await seeing.reset();
  assert.equal(await seeing.chat([{ role: 'user', content: [{ type: 'image_url', image_url: red }, { type: 'text', text: QUESTION }] }], { temperature: 0 }), 'red');
});

test('a conversation: the second turn reuses the first from the cache', async () => {
  await seeing.reset();
  const turn1 = [{ role: 'user', content: [{ type: 'image_url', image_url: fx.seeing.image('red') }, { type: 'text', text: QUESTION }] }];
  const first = await seeing.chat(turn1, { temperature: 0 });
  assert.equal(first, 'red');
  const turn2 = [...turn1, { role: 'assistant', content: first }, { role: 'user', content: [{ type: 'image_url', image_url: fx.seeing.image('blue') }, { type: 'text', text: 'And this one?' }] }];
  assert.equal(await seeing.chat(turn2, { temperature: 0 }), 'blue');
  const info = await seeing.lastAsk();
  assert.equal(info.mediaEncoded, 1, 'only the new picture is encoded');
  assert.ok(info.positionsReused > 0);
  assert.equal(info.stopReason, 'eog');
});

test('stream yields the answer piece by piece; the pieces make the answer', async () => {
  await seeing.reset();
  const pieces = [];
  for await (const piece of seeing.stream({ prompt: QUESTION, media: [fx.seeing.image('green')], temperature: 0 })) pieces.push(piece);
  assert.equal(pieces.join(''), 'green');
});

test('breaking out of a stream stops generation', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1 });
  try {
    let n = 0;
    // The grammar never lets the answer end: only the break can stop it before maxTokens.
    for await (const piece of s.stream({ prompt: 'Tell a long story.', maxTokens: 200, grammar: 'root ::= [a-z ] root', seed: 1 })) {
      assert.equal(typeof piece, 'string');
      if (++n === 3) break;
    }
    const info = await s.lastAsk();
    assert.equal(info.stopReason, 'callback');
    assert.ok(info.tokensGenerated < 200, `${info.tokensGenerated} tokens generated`);
    assert.equal(typeof (await s.ask({ prompt: 'And now?', maxTokens: 4 })), 'string', 'the session is usable after the break');
  } finally {
    await s.close();
  }
});

test('PCM samples reach an audio projector', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.audioMmproj, nThreads: 1 });
  try {
    const info = await s.info();
    assert.equal(info.supportsAudio, true);
    assert.ok(info.audioSampleRate > 0);
    await s.ask({ prompt: 'What do you hear?', media: [{ pcm: tone(info.audioSampleRate, 1) }], maxTokens: 4 });
    assert.equal((await s.lastAsk()).mediaEncoded, 1);
    await s.ask({ prompt: 'And in this file?', media: [{ data: fs.readFileSync(fx.tone) }], maxTokens: 4 });
    assert.equal((await s.lastAsk()).mediaEncoded, 1);
  } finally {
    await s.close();
  }
});

test('request options reach the library: maxTokens, stop, grammar, seed', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1 });
  try {
    await s.ask({ prompt: 'Count.', maxTokens: 5, grammar: 'root ::= [a-z ] root' });
    let info = await s.lastAsk();
    assert.equal(info.tokensGenerated, 5);
    assert.equal(info.stopReason, 'max_tokens');

    const text = await s.ask({ prompt: 'Letters.', grammar: 'root ::= "abc" [x]+', stop: 'c', maxTokens: 20 });
    assert.equal(text, 'ab');
    assert.equal((await s.lastAsk()).stopReason, 'string');

    await s.reset();
    const a = await s.ask({ prompt: 'Say something.', maxTokens: 12, temperature: 1, seed: 7 });
    await s.reset();
    const b = await s.ask({ prompt: 'Say something.', maxTokens: 12, temperature: 1, seed: 7 });
    assert.equal(a, b, 'the same seed gives the same text');
  } finally {
    await s.close();
  }
});

test('tokenize, logitBias, onToken with nProbs, jsonSchema, penalties, usage figures', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1 });
  try {
    const tokens = await s.tokenize('hello world');
    assert.ok(Array.isArray(tokens) && tokens.length > 0 && tokens.every(Number.isInteger), JSON.stringify(tokens));
    assert.deepEqual(await s.tokenize(''), []);

    // A bias of +100 on one token makes greedy generation choose it every time.
    const seen = [];
    await s.ask({ prompt: 'Say it.', maxTokens: 3, temperature: 0, logitBias: [{ token: tokens[0], bias: 100 }], nProbs: 3, onToken: (chosen, top) => seen.push({ chosen, top }) });
    assert.equal(seen.length, (await s.lastAsk()).tokensGenerated);
    for (const { chosen, top } of seen) {
      assert.equal(chosen.token, tokens[0]);
      assert.ok(chosen.logprob <= 0);
      assert.ok(chosen.bytes instanceof Uint8Array);
      assert.equal(chosen.text, new TextDecoder().decode(chosen.bytes));
      assert.equal(top.length, 3);
      assert.ok(top[0].logprob >= top[1].logprob && top[1].logprob >= top[2].logprob);
    }

    const answer = await s.ask({ prompt: 'Yes or no?', maxTokens: 20, jsonSchema: { enum: ['yes', 'no'] } });
    assert.ok(['yes', 'no'].includes(JSON.parse(answer)), answer);

    const text = await s.ask({ prompt: 'Go.', maxTokens: 8, repeatPenalty: 1.3, penaltyLastN: 32, frequencyPenalty: 0.5, presencePenalty: 0.5, typicalP: 0.9, dryMultiplier: 0.8 });
    assert.equal(typeof text, 'string');

    await s.reset();
    await s.ask({ prompt: 'Look.', media: [fx.image], maxTokens: 2 });
    const usage = await s.lastAsk();
    assert.equal(usage.mediaItems, 1);
    assert.ok(usage.mediaTokens > 0 && usage.promptTokens > 0);
    assert.equal(usage.promptPositions, usage.promptTokens + usage.mediaPositions);
  } finally {
    await s.close();
  }
});

test('speed and memory options reach the library: flashAttn, kvTypeK/V, nUbatch, useMlock', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, flashAttn: 'on', nUbatch: 64, useMlock: false });
  try {
    assert.equal(typeof (await s.ask({ prompt: 'hello', media: [fx.image], maxTokens: 2 })), 'string');
  } finally {
    await s.close();
  }
  // A quantized V cache needs flash attention: the library refuses it with flash attention off.
  await assert.rejects(Session.create({ model: fx.model, nThreads: 1, flashAttn: 'off', kvTypeV: 'q8_0' }), (err) => err.status.name === 'MM_ERR_INVALID_ARGUMENT');
  await assert.rejects(Session.create({ model: fx.model, kvTypeK: 'q5_1' }), { name: 'TypeError', message: /f16, q8_0, q4_0/ });
});

test('info, memory, countTokens', async () => {
  const info = await seeing.info();
  assert.equal(info.nCtx, 1024);
  assert.equal(info.supportsVision, true);
  assert.equal(info.marker, seeing.marker);
  const memory = await seeing.memory();
  assert.ok(memory.modelHost > 0 && memory.kvHost > 0 && memory.projectorHost > 0, JSON.stringify(memory));
  assert.equal(memory.sharedBy, 1);
  const positions = await seeing.countTokens({ prompt: QUESTION, media: [fx.seeing.image('red')] });
  assert.ok(positions > 10, `${positions} positions`);
});

test('fork shares the model and can copy the conversation', async () => {
  await seeing.reset();
  await seeing.ask({ prompt: QUESTION, media: [fx.seeing.image('red')], temperature: 0 });
  const models = loadedModels();
  const fork = await seeing.fork({ copyConversation: true, nCtx: 2048 });
  try {
    assert.equal(loadedModels(), models, 'nothing is loaded again');
    assert.equal((await fork.memory()).sharedBy, 2);
    assert.equal((await fork.info()).nCtx, 2048);
    assert.ok((await fork.info()).nPast > 0, 'the conversation was copied');
    assert.equal(await fork.ask({ prompt: QUESTION, media: [fx.seeing.image('blue')], temperature: 0 }), 'blue');
  } finally {
    await fork.close();
  }
  assert.equal((await seeing.memory()).sharedBy, 1);
});

test('saveState and loadState carry a conversation to another session', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-')), 'chat.mmstate');
  await seeing.reset();
  await seeing.ask({ prompt: QUESTION, media: [fx.seeing.image('red')], temperature: 0 });
  const saved = (await seeing.info()).nPast;
  await seeing.saveState(file);
  const other = await Session.create({ model: fx.seeing.model, mmproj: fx.seeing.mmproj, nThreads: 1, nCtx: 1024 });
  try {
    await other.loadState(file);
    assert.equal((await other.info()).nPast, saved);
  } finally {
    await other.close();
    fs.rmSync(path.dirname(file), { recursive: true });
  }
});
