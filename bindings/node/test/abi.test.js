'use strict';
// The FFI comes from the header, and stays true to it: the committed lib/abi.json and
// lib/abi.d.ts are what include/mm_session.h gives; koffi's struct layouts equal the C
// compiler's (sizeof and offsetof of every field); every function of the header is bound; and a
// field appended to a struct becomes a typed option without a line of binding code.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { generate, DEFAULT_HEADER, TARGETS } = require('../scripts/gen-abi');
const { parseHeader } = require('../scripts/header');
const { rules, callbackParams } = require('../lib/rules');
const A = require('../lib/abi');
const { koffi, types, fns } = require('../lib/ffi');

const HEADER = fs.readFileSync(DEFAULT_HEADER, 'utf8');

test('lib/abi.json, lib/abi.d.ts and index.mjs are what include/mm_session.h gives (npm run gen)', () => {
  const generated = generate(HEADER);
  for (const [key, file] of Object.entries(TARGETS)) assert.equal(fs.readFileSync(file, 'utf8'), generated[key], `${file} is stale`);
});

test('struct layouts: koffi agrees with the C compiler on every size and offset', () => {
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "mm_session.h"', 'int main(void) {'];
  for (const s of A.abi.structs) {
    lines.push(`  printf("%s %zu\\n", "${s.name}", sizeof(struct ${s.name}));`);
    for (const f of s.fields) lines.push(`  printf("%s.%s %zu\\n", "${s.name}", "${f.name}", offsetof(struct ${s.name}, ${f.name}));`);
  }
  lines.push('  return 0;', '}');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-layout-'));
  try {
    fs.writeFileSync(path.join(dir, 'layout.c'), lines.join('\n'));
    execFileSync('cc', ['-std=c99', '-I', path.dirname(DEFAULT_HEADER), '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
    const c = new Map(execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    for (const s of A.abi.structs) {
      const t = types.get(s.name);
      assert.equal(koffi.sizeof(t), c.get(s.name), `sizeof ${s.name}`);
      for (const f of s.fields) assert.equal(koffi.offsetof(t, f.name), c.get(`${s.name}.${f.name}`), `offsetof ${s.name}.${f.name}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('every function the header declares is bound, and the library exports it', () => {
  const declared = [...HEADER.matchAll(/\b(mm_\w+)\(/g)].map((m) => m[1]).filter((n) => !A.callbacks.has(n));
  for (const name of new Set(declared)) assert.equal(typeof fns[name], 'function', name);
  assert.equal(Object.keys(fns).length, A.abi.functions.length);
});

test('a field appended to a struct is an option, and a new export a function, typed, with no binding code', () => {
  // What a later version of the header may look like: a float, an enum named in its doc, a
  // string, an array of a new struct and one of floats with their counts, appended to
  // mm_ask_params; and a new export that takes nothing.
  const next = HEADER.replace(
    /(typedef struct mm_ask_params \{[\s\S]*?)(\n\} mm_ask_params;)/,
    `$1
  /**
   * XTC probability (default 0: off).
   */
  float xtc_probability;
  /**
   * An \`mm_overflow\` for something else.
   */
  int32_t other_overflow;
  /**
   * A name. Borrowed.
   */
  const char *adapter_name;
  const struct mm_adapter *adapters;
  size_t n_adapters;
  const float *shares;
  size_t n_shares;$2`,
  ).replace(
    'size_t mm_live_sessions(void);',
    'size_t mm_live_sessions(void);\n\n/**\n * The GPUs the library sees.\n */\nsize_t mm_gpu_count(void);',
  ).replace(
    'typedef struct mm_ask_params {',
    'typedef struct mm_adapter {\n  const char *path;\n  float scale;\n} mm_adapter;\n\ntypedef struct mm_ask_params {',
  );
  const r = rules(parseHeader(next));
  const options = new Map(r.optionFields('mm_ask_params').map((e) => [e.option, e]));
  assert.equal(options.get('xtcProbability').field.type.base, 'float');
  assert.equal(options.get('otherOverflow').enumName, 'mm_overflow');
  assert.equal(options.get('adapterName').field.type.base, 'char');
  assert.equal(options.get('adapters').count, 'n_adapters');
  assert.ok(!options.has('nAdapters'), 'a count is set from its array');
  const { dts } = generate(next);
  assert.match(dts, /xtcProbability\?: number;/);
  assert.match(dts, /otherOverflow\?: Overflow;/);
  assert.match(dts, /adapterName\?: string;/);
  assert.match(dts, /adapters\?: Adapter\[\];/);
  assert.match(dts, /export interface Adapter \{\n {2}path: string;\n {2}scale: number;\n\}/);
  assert.equal(options.get('shares').count, 'n_shares');
  assert.match(dts, /shares\?: number\[\];/);
  // A new export that takes nothing is a function of the package, typed and named in index.mjs.
  assert.ok(r.moduleFunctions().some((f) => f.name === 'gpuCount'));
  assert.ok(!r.moduleFunctions().some((f) => f.name === 'lastError'), 'not mm_last_error: errors carry their messages');
  assert.match(dts, /\/\*\* The GPUs the library sees. \*\/\nexport declare function gpuCount\(\): number;/);
  assert.match(generate(next).esm, /export const \{ [^}]*\bgpuCount\b[^}]* \} = cjs;/);
});

test('a header shape the parser does not know fails loudly', () => {
  assert.throws(() => parseHeader(HEADER.replace('typedef struct mm_session mm_session;', 'typedef union mm_session mm_session;')), /typedefs/);
  assert.throws(() => parseHeader(HEADER.replace('size_t mm_live_sessions(void);', '__attribute__((deprecated)) size_t mm_live_sessions(void);')), /functions/);
});

test('version 4 shapes: a parallel array, bool callbacks as options, a string with its length', () => {
  const options = new Map(A.optionFields('mm_ask_params').map((e) => [e.option, e]));
  // message_ext has one entry per message: no option of its own, messages fill it.
  assert.ok(!options.has('messageExt'));
  assert.equal(options.get('messages').parallel.name, 'message_ext');
  assert.equal(A.parallelArrays('mm_ask_params').get('messages').type.base, 'mm_message_ext');
  // tools is JSON text (an array serializes), reasoning an enum, parallelToolCalls a flag.
  assert.equal(options.get('tools').json, true);
  assert.equal(options.get('reasoning').enumName, 'mm_reasoning');
  assert.equal(options.get('parallelToolCalls').field.type.base, 'bool');
  // Callbacks are options but those the binding consumes (on_text is stream()).
  assert.deepEqual(A.callbackOptions('mm_ask_params').map((c) => c.option), ['onToken', 'onReasoning', 'onToolCall']);
  assert.deepEqual(A.callbackOptions('mm_session_params'), [], 'progress_callback is onProgress');
  // A text callback gives its text, not the length that follows it; a delta comes as a struct.
  assert.deepEqual(callbackParams(A.callbacks.get('mm_text_callback')).map((p) => p.param.name), ['text']);
  assert.deepEqual(callbackParams(A.callbacks.get('mm_tool_call_callback')).map((p) => p.param.name), ['delta']);
  const { dts } = generate(HEADER);
  assert.match(dts, /onReasoning\?: \(text: string\) => void;/);
  assert.match(dts, /onToolCall\?: \(delta: ToolCallDelta\) => void;/);
  assert.match(dts, /export interface ToolCallDelta \{\n {2}readonly index: number;\n {2}readonly id: string;\n {2}readonly name: string;\n {2}readonly arguments: string;\n\}/);
  assert.doesNotMatch(dts, /messageExt|interface MessageExt|Return false to stop/);
  assert.match(dts, /'tool_calls'/);
});
