'use strict';
// Failures: MmError with the header's status name and number and the library's own message,
// TypeErrors for options the API does not have, cancel and AbortSignal at every stage, and
// calls after close() that reject instead of crashing.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Session, liveSessions } = require('..');
const { fixtures, benchFixtures, rejectsWithStatus } = require('./helpers');

const fx = fixtures();
// Seconds of generation: a grammar that never lets the answer end.
const LONG = { prompt: 'Write a long story.', maxTokens: 3000, grammar: 'root ::= [a-z ] root', seed: 3 };


function tinySession() {
  return Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 4096 });
}

test('create: a missing file, a projector given as the model, and wrong projector sizes', async () => {
  const missing = await rejectsWithStatus(Session.create({ model: '/nonexistent/model.gguf' }), 'MM_ERR_FILE_NOT_FOUND', /nonexistent\/model\.gguf/);
  assert.equal(missing.status.code, 4);
  assert.match(missing.status.description, /not found/);
  assert.equal(missing.name, 'MmError');
  await rejectsWithStatus(Session.create({ model: fx.mmproj, nThreads: 1 }), 'MM_ERR_WRONG_FILE_KIND', /tiny-mmproj\.gguf/);
  await rejectsWithStatus(Session.create({ model: fx.seeing.model, mmproj: fx.mmproj, nThreads: 1 }), 'MM_ERR_PROJECTOR_MISMATCH');
  assert.equal(liveSessions(), 0, 'a failed create leaves nothing behind');
});

test('create: RPC servers and the tensor split reach the library', async () => {
  await rejectsWithStatus(Session.create({ model: fx.model, nThreads: 1, rpcServers: 'host' }), 'MM_ERR_INVALID_ARGUMENT', /rpc_servers/);
  await rejectsWithStatus(Session.create({ model: fx.model, nThreads: 1, tensorSplit: [1, 1, 1] }), 'MM_ERR_INVALID_ARGUMENT', /tensor_split has 3 entries/);
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });
  await rejectsWithStatus(Session.create({ model: fx.model, nThreads: 1, rpcServers: `127.0.0.1:${port}` }), 'MM_ERR_REMOTE', /cannot connect to 127\.0\.0\.1:/);
  await assert.rejects(Session.create({ model: fx.model, tensorSplit: [1, 'a'] }), { name: 'TypeError', message: /tensorSplit\[1\]: expected a float/ });
  assert.equal(liveSessions(), 0);
});

test('ask: media that do not match the markers, or are not images', async () => {
  const s = await tinySession();
  try {
    await rejectsWithStatus(s.ask({ prompt: `${s.marker} and ${s.marker}`, media: [fx.image] }), 'MM_ERR_MEDIA_COUNT');
    await rejectsWithStatus(s.ask({ prompt: 'x', media: [{ data: Buffer.from('not an image') }] }), 'MM_ERR_MEDIA_DECODE');
    await rejectsWithStatus(s.ask({ prompt: 'x', grammar: 'root ::= (' }), 'MM_ERR_INVALID_ARGUMENT', /grammar/i);
    await rejectsWithStatus(s.ask({ prompt: 'x', jsonSchema: '{ not json' }), 'MM_ERR_INVALID_ARGUMENT', /schema|JSON/i);
    await rejectsWithStatus(s.ask({ prompt: 'x', media: [{ rgb: new Uint8Array(10), width: 4, height: 4 }] }), 'MM_ERR_INVALID_ARGUMENT');
    assert.equal(typeof (await s.ask({ prompt: 'still usable?', maxTokens: 2 })), 'string');
  } finally {
    await s.close();
  }
});

test('countTokens of a request that does not fit: MM_ERR_CONTEXT_FULL with the count', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 64 });
  try {
    const err = await rejectsWithStatus(s.countTokens({ prompt: 'word '.repeat(200) }), 'MM_ERR_CONTEXT_FULL');
    assert.ok(err.positions > 64, `positions ${err.positions}`);
  } finally {
    await s.close();
  }
});

test('options the API does not have, or of the wrong type, are TypeErrors', async () => {
  await assert.rejects(Session.create({ model: fx.model, nCtxx: 5 }), { name: 'TypeError', message: /unknown option nCtxx/ });
  await assert.rejects(Session.create({ model: fx.model, nCtx: -1 }), { name: 'TypeError', message: /nCtx: expected an integer \(uint32_t\)/ });
  await assert.rejects(Session.create({ model: 42 }), { name: 'TypeError', message: /model: expected a string/ });
  await assert.rejects(Session.create({}), { name: 'TypeError', message: /model .* is required/ });
  const s = await tinySession();
  try {
    await assert.rejects(s.ask({ prompt: 'x', temperature: '0.5' }), { name: 'TypeError', message: /temperature: expected a float/ });
    await assert.rejects(s.ask({ prompt: 'x', overflow: 'sometimes' }), { name: 'TypeError', message: /fail, drop_oldest/ });
    await assert.rejects(s.ask({ prompt: 'x', media: [{ path: 'a', data: Buffer.alloc(1) }] }), { name: 'TypeError', message: /one of path, data, rgb, pcm/ });
    await assert.rejects(s.ask({ prompt: 'x', media: [{ pcm: [0.1, 0.2] }] }), { name: 'TypeError', message: /Float32Array/ });
    await assert.rejects(s.chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }]), { name: 'TypeError', message: /not fetched/ });
    await assert.rejects(s.chat([{ role: 'user', content: [{ type: 'video', video: {} }] }]), { name: 'TypeError', message: /unknown content part/ });
    await assert.rejects(s.fork({ copyConversation: 'yes' }), { name: 'TypeError', message: /copyConversation: expected a bool/ });
    await assert.rejects(s.ask({ prompt: 'x', logitBias: [{ token: 1 }] }), { name: 'TypeError', message: /logitBias\[0\]: missing bias/ });
    await assert.rejects(s.ask({ prompt: 'x', onToken: 'yes' }), { name: 'TypeError', message: /onToken must be a function/ });
    await assert.rejects(s.tokenize(42), { name: 'TypeError' });
  } finally {
    await s.close();
  }
});

test('enum options take their names: overflow drop_oldest', async () => {
  const s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 128 });
  try {
    const long = 'word '.repeat(40);
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: long }, { role: 'assistant', content: long },
      { role: 'user', content: long }, { role: 'assistant', content: long },
      { role: 'user', content: 'Last question?' },
    ];
    await rejectsWithStatus(s.chat(messages, { maxTokens: 2 }), 'MM_ERR_CONTEXT_FULL');
    await s.chat(messages, { maxTokens: 2, overflow: 'drop_oldest' });
    assert.ok((await s.lastAsk()).messagesDropped > 0);
  } finally {
    await s.close();
  }
});

test('cancel() stops a running ask: MM_ERR_CANCELLED, and the session stays usable', async (t) => {
  const s = await tinySession();
  try {
    // Cancelled once its first token has reached JavaScript: the call is known to be running.
    let tokens = 0;
    const pending = s.ask({ ...LONG, onToken: () => tokens++ === 0 && s.cancel() });
    const err = await rejectsWithStatus(pending, 'MM_ERR_CANCELLED');
    assert.doesNotMatch(err.message, /before it started/);
    t.diagnostic(`${tokens} tokens reached JavaScript, the cancel made at the first`);
    // It stopped where the cancel reached it, not at the end: the tokens that came after the
    // cancel are those generated while it was on its way (a handful), far from maxTokens.
    assert.ok(tokens > 0 && tokens < LONG.maxTokens / 2, `${tokens} tokens of ${LONG.maxTokens}`);
    assert.equal(typeof (await s.ask({ prompt: 'again', maxTokens: 2 })), 'string');
  } finally {
    await s.close();
  }
});

test('cancel() reaches calls made before it: queued, just started, or running', async () => {
  const s = await tinySession();
  try {
    const first = s.ask(LONG);
    const second = s.ask(LONG);
    s.cancel();
    await rejectsWithStatus(first, 'MM_ERR_CANCELLED');
    await rejectsWithStatus(second, 'MM_ERR_CANCELLED', /cancelled before it started/);
    // Cancels that land while the call is on its way to the library, or just inside it.
    for (const delayMs of [0, 0, 1, 1, 2, 3, 5, 8]) {
      const pending = s.ask(LONG);
      setTimeout(() => s.cancel(), delayMs);
      await rejectsWithStatus(pending, 'MM_ERR_CANCELLED');
    }
    const after = s.ask({ prompt: 'a call made after the cancel runs', maxTokens: 2 });
    assert.equal(typeof (await after), 'string');
  } finally {
    await s.close();
  }
});

test('an AbortSignal cancels an ask, a stream and a create, rejecting with its reason', async () => {
  const s = await tinySession();
  try {
    await assert.rejects(s.ask({ ...LONG, signal: AbortSignal.timeout(50) }), { name: 'TimeoutError' });

    const controller = new AbortController();
    let pieces = 0;
    await assert.rejects(async () => {
      for await (const _ of s.stream({ ...LONG, signal: controller.signal })) if (++pieces === 5) controller.abort(new Error('enough'));
    }, { message: 'enough' });
    assert.ok(pieces >= 5);

    await assert.rejects(s.ask({ prompt: 'x', signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(typeof (await s.ask({ prompt: 'still usable', maxTokens: 2 })), 'string');
  } finally {
    await s.close();
  }
  // The bench pair takes long enough to load for the abort to land during the load.
  const bench = benchFixtures();
  const controller = new AbortController();
  const created = Session.create({ model: bench.model, mmproj: bench.mmproj, nThreads: 1, onProgress: () => controller.abort(), signal: controller.signal });
  await assert.rejects(created, { name: 'AbortError' });
  assert.equal(liveSessions(), 0, 'a cancelled create frees what it loaded');
});

test('every call after close() rejects with MM_ERR_INVALID_HANDLE; closing twice is safe', async () => {
  const s = await tinySession();
  const fork = await s.fork();
  await s.close();
  await s.close();
  assert.equal(s.closed, true);
  const file = path.join(os.tmpdir(), 'mm-node-closed.mmstate');
  const calls = {
    ask: () => s.ask({ prompt: 'x' }),
    stream: () => s.stream({ prompt: 'x' }).next(),
    chat: () => s.chat([{ role: 'user', content: 'x' }]),
    countTokens: () => s.countTokens({ prompt: 'x' }),
    fork: () => s.fork(),
    info: () => s.info(),
    memory: () => s.memory(),
    lastAsk: () => s.lastAsk(),
    reset: () => s.reset(),
    saveState: () => s.saveState(file),
    loadState: () => s.loadState(file),
  };
  for (const [name, call] of Object.entries(calls)) {
    await rejectsWithStatus(call(), 'MM_ERR_INVALID_HANDLE', new RegExp(`Session\\.${name}: the session is closed`));
  }
  s.cancel();
  assert.equal(fs.existsSync(file), false);
  assert.equal(await fork.ask({ prompt: 'the fork outlives its parent', maxTokens: 2 }).then((t) => typeof t), 'string');
  await fork.close();
  assert.equal(liveSessions(), 0);
});

test('close() during an ask cancels it; calls queued behind it reject', async () => {
  const s = await tinySession();
  let generating;
  const started = new Promise((resolve) => (generating = resolve));
  const running = s.ask({ ...LONG, onToken: () => generating() });
  const queued = s.info();
  await Promise.race([started, running.catch(() => {})]);
  const closing = s.close();
  await rejectsWithStatus(running, 'MM_ERR_CANCELLED');
  await rejectsWithStatus(queued, 'MM_ERR_INVALID_HANDLE');
  await closing;
  assert.equal(liveSessions(), 0);
});

test('Session cannot be constructed directly', () => {
  assert.throws(() => new Session(), { name: 'TypeError', message: /Session\.create/ });
});

test('a temporary file is not left behind by a failed save', async () => {
  const s = await tinySession();
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-'));
    await rejectsWithStatus(s.saveState(dir), 'MM_ERR_IO', /directory/);
    assert.deepEqual(fs.readdirSync(dir), []);
    fs.rmdirSync(dir);
  } finally {
    await s.close();
  }
});
