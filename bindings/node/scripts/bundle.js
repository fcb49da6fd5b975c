#!/usr/bin/env node
'use strict';
// Copies libmm_session into this package (native/<platform>-<arch>/), so that a package made
// with `npm pack` afterwards carries the library and needs no install of it:
//
//   node scripts/bundle.js [library]     default: the library the package would load now

const fs = require('node:fs');
const path = require('node:path');
const { findLibrary, bundledDir, FILE_NAME } = require('../lib/find');

const packageDir = path.join(__dirname, '..');
const target = path.join(bundledDir(packageDir), FILE_NAME);
const source = process.argv[2] || findLibrary({ packageDir }).file;
if (path.resolve(source) === target) {
  console.log(`${target} is already the bundled copy`);
} else {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(source, target);
  console.log(`bundled ${source} as ${path.relative(process.cwd(), target)}`);
}
