'use strict';
// Where libmm_session comes from, in order: the MM_SESSION_LIB environment variable, a copy
// bundled in this package (native/<platform>-<arch>/, written by `npm run bundle`), the
// installed prefix (pkg-config), then the build tree of the repository this package sits in.

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const PACKAGE_DIR = path.join(__dirname, '..');
const FILE_NAME = { darwin: 'libmm_session.dylib', win32: 'mm_session.dll' }[process.platform] || 'libmm_session.so';

/** The folder `npm run bundle` copies the library into, for this platform. */
function bundledDir(packageDir = PACKAGE_DIR) {
  return path.join(packageDir, 'native', `${process.platform}-${process.arch}`);
}

/** The libdir pkg-config gives for mm-session, or null (no pkg-config, or not installed). */
function pkgConfigLibdir() {
  try {
    const out = execFileSync('pkg-config', ['--variable=libdir', 'mm-session'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim() || null;
  } catch {
    return null;
  }
}

/** The places searched, in order: [{ source, file }]. */
function candidates({ env = process.env, packageDir = PACKAGE_DIR } = {}) {
  const list = [];
  if (env.MM_SESSION_LIB) list.push({ source: 'MM_SESSION_LIB', file: env.MM_SESSION_LIB });
  list.push({ source: 'bundled', file: path.join(bundledDir(packageDir), FILE_NAME) });
  const libdir = pkgConfigLibdir();
  if (libdir) list.push({ source: 'pkg-config', file: path.join(libdir, FILE_NAME) });
  list.push({ source: 'repository', file: path.join(packageDir, '..', '..', 'target', 'release', FILE_NAME) });
  return list;
}

/**
 * The library to load: { source, file }. MM_SESSION_LIB, when set, must name the library: a
 * wrong path is an error rather than a silent fall back to another copy.
 */
function findLibrary(options) {
  const list = candidates(options);
  if (list[0].source === 'MM_SESSION_LIB' && !fs.existsSync(list[0].file)) {
    throw new Error(`mm-session: MM_SESSION_LIB names ${list[0].file}, which does not exist`);
  }
  const found = list.find((c) => fs.existsSync(c.file));
  if (found) return found;
  throw new Error(
    `mm-session: libmm_session not found; looked at:\n${list.map((c) => `  ${c.file} (${c.source})`).join('\n')}\n` +
      'Set MM_SESSION_LIB, install the library (make install; pkg-config must find mm-session), or build it (make build).',
  );
}

module.exports = { findLibrary, candidates, bundledDir, FILE_NAME };
