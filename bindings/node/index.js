'use strict';
// mm-session for Node.js: multimodal llama.cpp sessions (a text model and its projector behind
// one handle) with promises, async iteration and explicit disposal. The calls that block run
// on threads of the package's own, so the event loop never waits for a model.

const { Session, liveSessions, loadedModels } = require('./lib/session');
const { MmError } = require('./lib/errors');
const { setLogger } = require('./lib/log');
const { fns, library } = require('./lib/ffi');
const A = require('./lib/abi');

/** The version of the library loaded ("0.2.0"). */
function version() {
  return fns.mm_version();
}

/** The same as one number: MAJOR * 10000 + MINOR * 100 + PATCH. */
function versionNumber() {
  return fns.mm_version_number();
}

const { major, minor, patch } = A.abi.version;

module.exports = {
  Session,
  MmError,
  setLogger,
  liveSessions,
  loadedModels,
  version,
  versionNumber,
  /** The header's constants (MM_SEED_DEFAULT, MM_MAX_IMAGE_PIXELS, ...). */
  constants: Object.freeze({ ...A.abi.defines }),
  /** The version of the header this package was generated from. */
  HEADER_VERSION: `${major}.${minor}.${patch}`,
  /** Where the library was loaded from: { source, file } (see lib/find.js). */
  library: Object.freeze({ ...library }),
};
