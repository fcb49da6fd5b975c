#!/usr/bin/env node
'use strict';
// The package's cheap checks, run by `make test-node` before the tests (npm run lint), with
// what the package already has (no linter of its own):
//
// - `node --check` of every .js, .cjs and .mjs file of the package (not node_modules, build/,
//   native/): each one parses in this Node;
// - `tsc --noEmit -p tsconfig.json`: the declarations (index.d.ts, lib/abi.d.ts) and the
//   TypeScript test program (test/types/usage.ts), strict, with the declarations themselves
//   checked (skipLibCheck off).
//
// Prints what it checked; exits 1 at the first check that fails, with its output.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const PACKAGE = path.join(__dirname, '..');
const SKIP = new Set(['node_modules', 'build', 'native']);
const TSC = path.join(PACKAGE, 'node_modules', 'typescript', 'bin', 'tsc');

/** The package's JavaScript files, relative to it, in a stable order. */
function scripts(dir = PACKAGE) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...scripts(full));
    else if (/\.(c|m)?js$/.test(entry.name)) found.push(path.relative(PACKAGE, full));
  }
  return found;
}

function run(what, args) {
  const r = spawnSync(process.execPath, args, { cwd: PACKAGE, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`lint: ${what} failed\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
}

const files = scripts();
for (const file of files) run(`node --check ${file}`, ['--check', file]);
console.log(`lint: node --check: ${files.length} files parse`);

if (!fs.existsSync(TSC)) {
  process.stderr.write('lint: typescript is not installed (npm ci)\n');
  process.exit(1);
}
run('tsc --noEmit -p tsconfig.json', [TSC, '--noEmit', '-p', path.join(PACKAGE, 'tsconfig.json')]);
const { files: typed } = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'tsconfig.json'), 'utf8'));
console.log(`lint: tsc --noEmit (strict, skipLibCheck off): ${typed.join(', ')} type-check`);
