'use strict';
// Where the library comes from, in order: MM_SESSION_LIB, a copy bundled in the package, the
// prebuilt platform package (@mm-session/<platform>-<arch>[-<libc>]), the installed prefix
// (pkg-config), the repository's target/release. Each case runs in a process of its own, on a
// copy of the package made outside the repository where needed.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { bundledDir, platformPackageName, FILE_NAME } = require('../lib/find');

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

/**
 * A copy of the package outside the repository (each entry of its node_modules linked), its
 * package.json given `optionalDependencies` when told (as `make npm-pack` writes them).
 */
function copyPackage({ optionalDependencies } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-node-pkg-'));
  for (const entry of ['package.json', 'index.js', 'lib', 'scripts']) fs.cpSync(path.join(PACKAGE, entry), path.join(dir, entry), { recursive: true });
  if (optionalDependencies) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, optionalDependencies }));
  }
  fs.mkdirSync(path.join(dir, 'node_modules'));
  for (const entry of fs.readdirSync(path.join(PACKAGE, 'node_modules'))) {
    fs.symlinkSync(path.join(PACKAGE, 'node_modules', entry), path.join(dir, 'node_modules', entry));
  }
  return dir;
}

/** Installs into the copy at `dir` a platform package as `make npm-pack` makes it: its file. */
function installPlatformPackage(dir) {
  const pkgDir = path.join(dir, 'node_modules', ...platformPackageName().split('/'));
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({ name: platformPackageName(), version: PACKAGE_VERSION, main: './index.js' }));
  fs.writeFileSync(path.join(pkgDir, 'index.js'), "module.exports = { file: require('node:path').join(__dirname, 'libmm_session.so'), dir: __dirname };\n");
  fs.symlinkSync(BUILT, path.join(pkgDir, FILE_NAME));
  return path.join(pkgDir, FILE_NAME);
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
    // This copy lists no platform package (as on a platform with none prebuilt): the error says
    // that the one this machine would need does not exist.
    assert.ok(missing.includes(`There is no prebuilt platform package for ${process.platform}-${process.arch}`), missing);
    assert.ok(missing.includes(`${platformPackageName()} does not exist (prebuilt: none)`), missing);

    const pc = pkgConfigDir(path.dirname(BUILT));
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, PKG_CONFIG_PATH: pc }), { source: 'pkg-config', file: BUILT, version: PACKAGE_VERSION });

    execFileSync(process.execPath, [path.join(dir, 'scripts', 'bundle.js')], { env: { ...process.env, MM_SESSION_LIB: BUILT } });
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, PKG_CONFIG_PATH: pc }), { source: 'bundled', file: path.join(bundledDir(dir), FILE_NAME), version: PACKAGE_VERSION });
    fs.rmSync(pc, { recursive: true });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('the platform package comes after MM_SESSION_LIB and the bundled copy, before pkg-config', () => {
  const name = platformPackageName();
  const dir = copyPackage({ optionalDependencies: { [name]: PACKAGE_VERSION } });
  const pc = pkgConfigDir(path.dirname(BUILT));
  try {
    // Listed but not installed (npm skipped the optional dependency): the error names it.
    const missing = loadedFrom(dir, NO_SOURCES).error;
    assert.match(missing, /libmm_session not found/);
    assert.ok(missing.includes(`The platform package ${name} (an optional dependency) is not installed`), missing);

    const file = installPlatformPackage(dir);
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, PKG_CONFIG_PATH: pc }), { source: 'platform-package', file, version: PACKAGE_VERSION });
    assert.deepEqual(loadedFrom(dir, { ...NO_SOURCES, MM_SESSION_LIB: BUILT }), { source: 'MM_SESSION_LIB', file: BUILT, version: PACKAGE_VERSION });

    execFileSync(process.execPath, [path.join(dir, 'scripts', 'bundle.js')], { env: { ...process.env, MM_SESSION_LIB: BUILT } });
    assert.deepEqual(loadedFrom(dir, NO_SOURCES), { source: 'bundled', file: path.join(bundledDir(dir), FILE_NAME), version: PACKAGE_VERSION });
  } finally {
    fs.rmSync(dir, { recursive: true });
    fs.rmSync(pc, { recursive: true });
  }
});

test('the platform package name: platform, architecture and, on Linux, the C library', () => {
  assert.equal(platformPackageName({ platform: 'linux', arch: 'x64', libc: 'gnu' }), '@mm-session/linux-x64-gnu');
  assert.equal(platformPackageName({ platform: 'linux', arch: 'arm64', libc: 'musl' }), '@mm-session/linux-arm64-musl');
  assert.equal(platformPackageName({ platform: 'darwin', arch: 'arm64' }), '@mm-session/darwin-arm64');
});
