'use strict';
// Where libmm_session comes from, in order: the MM_SESSION_LIB environment variable, a copy
// bundled in this package (native/<platform>-<arch>/, written by `npm run bundle`), the
// prebuilt platform package (@mm-session/<platform>-<arch>[-<libc>], an optional dependency
// npm installs only where its os/cpu/libc match), the installed prefix (pkg-config), then the
// build tree of the repository this package sits in.

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const PACKAGE_DIR = path.join(__dirname, '..');
const FILE_NAME = { darwin: 'libmm_session.dylib', win32: 'mm_session.dll' }[process.platform] || 'libmm_session.so';

/** The folder `npm run bundle` copies the library into, for this platform. */
function bundledDir(packageDir = PACKAGE_DIR) {
  return path.join(packageDir, 'native', `${process.platform}-${process.arch}`);
}

/** 'gnu' or 'musl' on Linux (as npm's `libc` field tells them apart), else null. */
function linuxLibc() {
  if (process.platform !== 'linux') return null;
  const header = process.report && process.report.getReport().header;
  return header && header.glibcVersionRuntime ? 'gnu' : 'musl';
}

/**
 * The name of the prebuilt package for this machine: @mm-session/linux-x64-gnu,
 * @mm-session/darwin-arm64, ... (`make npm-pack` makes the Linux x64 glibc one).
 */
function platformPackageName({ platform = process.platform, arch = process.arch, libc = linuxLibc() } = {}) {
  return `@mm-session/${platform}-${arch}${platform === 'linux' ? `-${libc}` : ''}`;
}

/** The platform packages this package lists (its optionalDependencies): names. */
function prebuiltPackages(packageDir = PACKAGE_DIR) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
    return Object.keys(pkg.optionalDependencies || {}).filter((name) => name.startsWith('@mm-session/'));
  } catch {
    return [];
  }
}

/** The library file of the installed platform package `name`, or null when not installed. */
function platformPackageFile(name, packageDir = PACKAGE_DIR) {
  let main;
  try {
    main = require.resolve(name, { paths: [packageDir] });
  } catch {
    return null;
  }
  return require(main).file;
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
  const platformFile = platformPackageFile(platformPackageName(), packageDir);
  if (platformFile) list.push({ source: 'platform-package', file: platformFile });
  const libdir = pkgConfigLibdir();
  if (libdir) list.push({ source: 'pkg-config', file: path.join(libdir, FILE_NAME) });
  list.push({ source: 'repository', file: path.join(packageDir, '..', '..', 'target', 'release', FILE_NAME) });
  return list;
}

/** What the error says about the platform package, installed or not, existing or not. */
function platformPackageAdvice(packageDir) {
  const name = platformPackageName();
  const known = prebuiltPackages(packageDir);
  if (platformPackageFile(name, packageDir)) return `The platform package ${name} is installed but holds no library: reinstall it.`;
  if (known.includes(name)) {
    return `The platform package ${name} (an optional dependency) is not installed: install it at this package's version, without --omit=optional or --no-optional.`;
  }
  const offered = known.length ? known.join(', ') : 'none';
  return `There is no prebuilt platform package for ${process.platform}-${process.arch}${linuxLibc() ? ` (${linuxLibc()} libc)` : ''}: ${name} does not exist (prebuilt: ${offered}).`;
}

/**
 * The library to load: { source, file }. MM_SESSION_LIB, when set, must name the library: a
 * wrong path is an error rather than a silent fall back to another copy.
 */
function findLibrary(options = {}) {
  const list = candidates(options);
  if (list[0].source === 'MM_SESSION_LIB' && !fs.existsSync(list[0].file)) {
    throw new Error(`mm-session: MM_SESSION_LIB names ${list[0].file}, which does not exist`);
  }
  const found = list.find((c) => fs.existsSync(c.file));
  if (found) return found;
  throw new Error(
    `mm-session: libmm_session not found; looked at:\n${list.map((c) => `  ${c.file} (${c.source})`).join('\n')}\n` +
      `${platformPackageAdvice(options.packageDir || PACKAGE_DIR)}\n` +
      'Else set MM_SESSION_LIB, install the library (make install; pkg-config must find mm-session), or build it (make build).',
  );
}

module.exports = { findLibrary, candidates, bundledDir, platformPackageName, prebuiltPackages, FILE_NAME };
