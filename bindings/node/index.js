'use strict';
// mm-session for Node.js: multimodal llama.cpp sessions (a text model and its projector behind
// one handle) with promises, async iteration and explicit disposal. The calls that block run
// on threads of the package's own, so the event loop never waits for a model.

const { Session } = require('./lib/session');
const { MmError } = require('./lib/errors');
const { setLogger } = require('./lib/log');
const { fns, library } = require('./lib/ffi');
const A = require('./lib/abi');

/**
 * The library's functions that take nothing and return a value, by the rules of lib/rules.js:
 * version(), versionNumber(), liveSessions(), loadedModels(), and any such export a later
 * header adds (lib/abi.d.ts types them, with the header's doc comments).
 */
const moduleFunctions = Object.fromEntries(
  A.moduleFunctions().map(({ fn, name }) => [
    name,
    () => {
      const value = fns[fn.name]();
      return typeof value === 'bigint' ? Number(value) : value;
    },
  ]),
);

const { major, minor, patch } = A.abi.version;

module.exports = {
  Session,
  MmError,
  setLogger,
  ...moduleFunctions,
  /** The header's constants (MM_SEED_DEFAULT, MM_MAX_IMAGE_PIXELS, ...). */
  constants: Object.freeze({ ...A.abi.defines }),
  /** The version of the header this package was generated from. */
  HEADER_VERSION: `${major}.${minor}.${patch}`,
  /** Where the library was loaded from: { source, file } (see lib/find.js). */
  library: Object.freeze({ ...library }),
};
