#!/usr/bin/env node
'use strict';
// Per-request time through the Node API against the C library itself, in one process, on the
// bench pair (mm-fixtures --size bench): the same request (one 224 px image, 32 generated
// tokens, greedy) to two sessions of the same files, one asked with Session.ask/stream, the
// other with mm_session_ask called directly through koffi on this thread (no pool thread, no
// wrapper). The cache is emptied before each request (not timed), so each one encodes its
// image and evaluates its prompt. Requests alternate between the two (which goes first
// alternates too); the overhead is the median of the differences between neighbours.
//
//   node bench/bench.js [runs]        prints one line per mode, then node_overhead_pct=X (wall
//                                    time of ask)

const { Session, setLogger } = require('..');
const { fns, takeString } = require('../lib/ffi');
const { benchFixtures } = require('../test/helpers');

const RUNS = Number(process.argv[2] || process.env.RUNS || 21);
const bench = benchFixtures();
const REQUEST = { prompt: 'Describe the picture.', maxTokens: Number(process.env.TOKENS || 32), temperature: 0, grammar: 'root ::= [a-z ] root' };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** A session made and asked with direct koffi calls on this thread: the C library itself. */
function directSession() {
  const params = { ...fns.mm_session_params_default(), model_path: bench.model, mmproj_path: bench.mmproj, n_threads: 1 };
  const out = [null];
  if (fns.mm_session_create(params, out) !== 0) throw new Error(fns.mm_last_error());
  const handle = out[0];
  const defaults = fns.mm_ask_params_default();
  const ask = (onText) => {
    const p = { ...defaults, prompt: REQUEST.prompt, max_tokens: REQUEST.maxTokens, temperature: 0, grammar: REQUEST.grammar, media: [{ kind: 1, path: bench.image }], n_media: 1, on_text: onText || null };
    const text = [null];
    if (fns.mm_session_ask(handle, p, text) !== 0) throw new Error(fns.mm_last_error());
    return takeString(text[0]);
  };
  return { handle, ask, reset: () => fns.mm_session_reset(handle), close: () => fns.mm_session_destroy(handle) };
}

async function main() {
  setLogger(null, 'error');
  const direct = directSession();
  const node = await Session.create({ model: bench.model, mmproj: bench.mmproj, nThreads: 1 });
  const modes = {
    ask: {
      c: () => direct.ask(),
      node: () => node.ask({ ...REQUEST, media: [bench.image] }),
    },
    stream: {
      c: () => {
        const pieces = [];
        direct.ask((_, text) => pieces.push(text) > 0);
        return pieces.join('');
      },
      node: async () => {
        const pieces = [];
        for await (const piece of node.stream({ ...REQUEST, media: [bench.image] })) pieces.push(piece);
        return pieces.join('');
      },
    },
  };
  const results = {};
  for (const [mode, run] of Object.entries(modes)) {
    const wall = { c: [], node: [] };
    const cpu = { c: [], node: [] };
    for (let i = 0; i < RUNS + 1; i++) {
      for (const side of i % 2 === 0 ? ['c', 'node'] : ['node', 'c']) {
        if (side === 'c') direct.reset();
        else await node.reset();
        const cpuStart = process.cpuUsage();
        const started = performance.now();
        const text = await run[side]();
        const ms = performance.now() - started;
        const { user, system } = process.cpuUsage(cpuStart);
        if (text.length < REQUEST.maxTokens / 2) throw new Error(`${mode}/${side}: a short answer (${text.length} characters)`);
        if (i > 0) {
          wall[side].push(ms);
          cpu[side].push((user + system) / 1000);
        }
      }
    }
    // Each Node request against the C request next to it in time: the machine's load drifts
    // less between two neighbours than over the whole run. CPU time (all threads of this
    // process) shows the work the package adds whatever the machine's load.
    const c = median(wall.c);
    const overhead = median(wall.node.map((t, i) => t - wall.c[i]));
    const cpuOverhead = median(cpu.node.map((t, i) => t - cpu.c[i]));
    results[mode] = (overhead / c) * 100;
    console.log(
      `mode=${mode} runs=${RUNS} c_ms=${c.toFixed(2)} node_ms=${median(wall.node).toFixed(2)} overhead_ms=${overhead.toFixed(2)} ` +
        `overhead_pct=${results[mode].toFixed(2)} c_cpu_ms=${median(cpu.c).toFixed(2)} node_cpu_ms=${median(cpu.node).toFixed(2)} ` +
        `cpu_overhead_pct=${((cpuOverhead / median(cpu.c)) * 100).toFixed(2)}`,
    );
  }
  direct.close();
  await node.close();
  console.log(`node_overhead_pct=${results.ask.toFixed(2)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
