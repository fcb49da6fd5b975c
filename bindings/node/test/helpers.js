'use strict';
// The generated models the tests use (target/release/mm-fixtures), written under the
// repository's build/ on first use: the tiny random pair with an audio projector and the pair
// that sees (build/fixtures-node), and the larger bench pair (build/fixtures-bench).

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const assert = require('node:assert/strict');

const REPO = path.join(__dirname, '..', '..', '..');
const BUILD = process.env.MM_BUILD_DIR || path.join(REPO, 'build');
const TOOL = process.env.MM_FIXTURES_TOOL || path.join(REPO, 'target', 'release', 'mm-fixtures');

function generate(dir, args, marker) {
  if (!fs.existsSync(path.join(dir, marker))) execFileSync(TOOL, [dir, ...args], { stdio: 'ignore' });
  return dir;
}

/** The tiny pair, its audio projector and tone, and the pair that sees: paths by name. */
function fixtures() {
  const dir = generate(path.join(BUILD, 'fixtures-node'), ['--seeing', '--audio'], 'seeing-red.png');
  const at = (name) => path.join(dir, name);
  return {
    dir,
    model: at('tiny-llama.gguf'),
    mmproj: at('tiny-mmproj.gguf'),
    image: at('tiny-image.png'),
    audioMmproj: at('tiny-audio-mmproj.gguf'),
    tone: at('tiny-tone.wav'),
    seeing: { model: at('seeing-llama.gguf'), mmproj: at('seeing-mmproj.gguf'), image: (colour) => at(`seeing-${colour}.png`) },
  };
}

/** The larger random pair for timing (FixtureSpec::bench: 224 px images, 256 positions each). */
function benchFixtures() {
  const dir = generate(path.join(BUILD, 'fixtures-bench'), ['--size', 'bench'], 'tiny-mmproj.gguf');
  return { model: path.join(dir, 'tiny-llama.gguf'), mmproj: path.join(dir, 'tiny-mmproj.gguf'), image: path.join(dir, 'tiny-image.png') };
}

/** Width and height of a PNG file, from its IHDR chunk. */
function pngSize(file) {
  const b = fs.readFileSync(file);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/**
 * Counts the ticks of a `everyMs` interval (10 ms unless told): `ticks` is the count so far.
 * A loop blocked by a synchronous call does not tick while the call runs, however long it
 * takes. stop() returns { ticks, maxGapMs }: the largest gap between two ticks is a figure to
 * print, never to assert (a busy machine delays timers by as much as it likes).
 */
function tickCounter(everyMs = 10) {
  let last = performance.now();
  let maxGapMs = 0;
  let ticks = 0;
  const listeners = new Set();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
    for (const listener of listeners) listener(ticks);
  }, everyMs);
  return {
    get ticks() {
      return ticks;
    },
    /** Calls `listener(ticks)` after each tick. */
    onTick(listener) {
      listeners.add(listener);
    },
    stop() {
      clearInterval(timer);
      maxGapMs = Math.max(maxGapMs, performance.now() - last);
      return { ticks, maxGapMs };
    },
  };
}

/**
 * Counts the turns of the event loop: a chain of setImmediate callbacks, one a turn, until
 * stop(), which returns the count. Nothing else runs between the turns of a free loop, so a
 * call that takes even a millisecond sees many; a synchronous call sees none.
 */
function turnCounter() {
  let turns = 0;
  let handle = setImmediate(function turn() {
    turns++;
    handle = setImmediate(turn);
  });
  return {
    get turns() {
      return turns;
    },
    stop() {
      clearImmediate(handle);
      return turns;
    },
  };
}

// Awaits `promise`, which must reject with an MmError of status `name` (and a message matching
// `messagePattern`, when given); returns the error.
async function rejectsWithStatus(promise, name, messagePattern) {
  const err = await promise.then(
    () => assert.fail(`expected ${name}`),
    (e) => e,
  );
  assert.ok(err instanceof require('..').MmError, `expected an MmError, got ${err}`);
  assert.equal(err.status.name, name);
  assert.equal(typeof err.status.code, 'number');
  if (messagePattern) assert.match(err.message, messagePattern);
  return err;
}

module.exports = { REPO, BUILD, fixtures, benchFixtures, pngSize, tickCounter, turnCounter, rejectsWithStatus };
