'use strict';
// The koffi declarations of every type and function of the C API, made from lib/abi.json (the
// parse of include/mm_session.h), never written out by hand. Each thread that calls the
// library (the main thread and the pool's workers) loads this module once.

const koffi = require('koffi');
const A = require('./abi');
const { findLibrary } = require('./find');

/** koffi types by C name: opaque handles, callback prototypes and structs. */
const types = new Map();

function named(base) {
  if (A.enums.has(base)) return 'int32_t';
  if (types.has(base)) return types.get(base);
  return base;
}

/** The koffi type of a struct field. */
function fieldType(type) {
  const { base, baseConst, pointers, count } = type;
  if (count !== undefined) return koffi.array(named(base), count);
  if (pointers === 0) return A.callbacks.has(base) ? koffi.pointer(types.get(base)) : named(base);
  if (pointers === 1 && base === 'char') return baseConst ? 'const char *' : 'void *';
  if (pointers === 1) return base === 'void' ? 'void *' : koffi.pointer(named(base));
  if (pointers === 2 && base === 'char' && baseConst) return 'const char **';
  throw new Error(`mm-session: no koffi type for a field of type ${JSON.stringify(type)}`);
}

/**
 * The koffi type of a function parameter. What the library writes through a pointer (`T *`
 * that is not a handle) is in/out: the caller passes [value] or an object and reads it back.
 * A `char **` receives a string the caller frees: it stays a raw pointer.
 */
function paramType(type) {
  const { base, baseConst, pointers } = type;
  if (pointers === 1 && !baseConst && base !== 'void' && base !== 'char' && !A.opaques.has(base)) {
    return koffi.inout(koffi.pointer(named(base)));
  }
  if (pointers === 2 && A.opaques.has(base)) return koffi.out(koffi.pointer(koffi.pointer(types.get(base))));
  if (pointers === 2 && base === 'char' && !baseConst) return koffi.out(koffi.pointer('void *'));
  return fieldType(type);
}

function returnType(type) {
  return type.pointers === 0 ? named(type.base) : fieldType(type);
}

/**
 * Declares the opaque handles, then the callbacks and structs, each after the types it refers
 * to (a struct holds callbacks, a callback takes structs).
 */
function declareTypes() {
  for (const { name } of A.abi.opaques) types.set(name, koffi.opaque(name));
  const pending = [
    ...A.abi.callbacks.map((cb) => ({ name: cb.name, uses: [cb.ret, ...cb.params.map((p) => p.type)], declare: () => koffi.proto(cb.name, returnType(cb.ret), cb.params.map((p) => fieldType(p.type))) })),
    ...A.abi.structs.map((s) => ({ name: s.name, uses: s.fields.map((f) => f.type), declare: () => koffi.struct(s.name, Object.fromEntries(s.fields.map((f) => [f.name, fieldType(f.type)]))) })),
  ];
  const known = (t) => types.has(t.base) || !(A.structs.has(t.base) || A.callbacks.has(t.base));
  while (pending.length > 0) {
    const ready = pending.findIndex((item) => item.uses.every(known));
    if (ready < 0) throw new Error(`mm-session: types that refer to each other: ${pending.map((i) => i.name).join(', ')}`);
    const [item] = pending.splice(ready, 1);
    types.set(item.name, item.declare());
  }
}

function declareFunctions(lib) {
  const fns = {};
  for (const f of A.abi.functions) fns[f.name] = lib.func(f.name, returnType(f.ret), f.params.map((p) => paramType(p.type)));
  return fns;
}

/**
 * Refuses a library this package was not generated for: another major version, another minor
 * version while the major is 0, or an older library than the header.
 */
function checkVersion(fns, file) {
  const have = fns.mm_version_number();
  const want = A.abi.version;
  const major = Math.floor(have / 10000);
  const minor = Math.floor(have / 100) % 100;
  if (major !== want.major || (major === 0 && minor !== want.minor) || have < want.number) {
    throw new Error(
      `mm-session: ${file} is version ${fns.mm_version()}, but this package was generated from the header of ` +
        `${want.major}.${want.minor}.${want.patch}`,
    );
  }
}

const library = findLibrary();
declareTypes();
const fns = declareFunctions(koffi.load(library.file));
checkVersion(fns, library.file);

/** The NUL-terminated string at `ptr` (a library-owned `char *`), freed with mm_string_free. */
function takeString(ptr) {
  if (ptr === null) return null;
  try {
    return koffi.decode(ptr, 'char', -1);
  } finally {
    fns.mm_string_free(ptr);
  }
}

module.exports = { koffi, types, fns, library, takeString };
