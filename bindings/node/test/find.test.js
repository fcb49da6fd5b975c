'use strict';
// Where the library comes from, in order: MM_SESSION_LIB, a copy bundled in the package, the
// installed prefix (pkg-config), the repository's target/release. Each case runs in a process
// of its own, on a copy of the package made outside the repository where needed.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { bundledDir, FILE_NAME } = require('../lib/find');

const PACKAGE = path.join(__dirname, '..');
/** The library's version is the package's (the release keeps them equal). */
const PACKAGE_VERSION = require('../package.json').version;
const BUILT = path.join(PACKAGE, '..', '..', 'target', 'release', FILE_NAME);

/** The { source, file } the package at `dir` loads, with `env`; or the error it throws. */
function loadedFrom(dir, env) {
  const script = `try { const m = require(${JSON.stringify(dir)}); console.log(JSON.stringify({ ...m.library, version: m.version() })); } catch (e) { console.log(JSON.stringify({ error: e.message })); }`;
  const cleanEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(cleanEnv)) if (v === undefined) delete cleanEnv[k];
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: cleanEnv, encoding: 'utf8' }));
}

/** A copy of the package outside the repository (its node_modules linked). */
function copyPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-pkg-'));
  for (const entry of ['package.json', 'index.js', 'lib', 'scripts']) fs.cpSync(path.join(PACKAGE, entry), path.join(dir, entry), { recursive: true });
  fs.symlinkSync(path.join(PACKAGE, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** A pkg-config directory whose mm-session.pc names `libdir`. */
function pkgConfigDir(libdir) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-pc-'));
  fs.writeFileSync(path.join(dir, 'mm-session.pc'), `libdir=${libdir}\n\nName: mm-session\nDescription: test\nVersion: ${PACKAGE_VERSION}\nLibs: -L\${libdir} -lmm_session\n`);
  return dir;
}

const NO_SOURCES = { MM_SESSION_LIB: undefined, PKG_CONFIG_PATH: '/nonexistent', PKG_CONFIG_LIBDIR: '/nonexistent' };

test('in the repository: target/release', () => {
  assert.deepEqual(loadedFrom(PACKAGE, NO_SOURCES), { source: 'repository', file: BUILT, version: PACKAGE_VERSION });
});

test('MM_SESSION_LIB comes first; a wrong one is an error, not a fall back', () => {
  const link = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-lib-')), FILE_NAME);
  fs.symlinkSync(BUILT, link);
  assert.deepEqual(loadedFrom(PACKAGE, { ...NO_SOURCES, MM_SESSION_LIB: link }), { source: 'MM_SESSION_LIB', file: link, version: PACKAGE_VERSION });
  assert.match(loadedFrom(PACKAGE, { ...NO_SOURCES, MM_SESSION_LIB: '/nonexistent/libmm_session.so' }).error, /MM_SESSION_LIB names \/nonexistent/);
});

test('outside the repository: the bundled copy (npm run bundle), then pkg-config, else an error naming what was tried', () => {
  const dir = copyPackage();
  try {
    const missing = loadedFrom(dir, NO_SOURCES).error;
    assert.match(missing, /libmm_session not found/);
    assert.match(missing, /\(bundled\)/);
    assert.match(missing, /\(repository\)/);

    const pc = pkgConfigDir(path.dirname(BUILT));
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, PKG_CONFIG_PATH: pc }), { source: 'pkg-config', file: BUILT, version: PACKAGE_VERSION });

    execFileSync(process.execPath, [path.join(dir, 'scripts', 'bundle.js')], { env: { ...process.env, MM_SESSION_LIB: BUILT } });
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, PKG_CONFIG_PATH: pc }), { source: 'bundled', file: path.join(bundledDir(dir), FILE_NAME), version: PACKAGE_VERSION });
    fs.rmSync(pc, { recursive: true });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
