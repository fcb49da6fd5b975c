'use strict';
// The rules that turn a description of the C ABI (scripts/header.js's parse of
// include/mm_session.h, kept in lib/abi.json) into the JavaScript API: option names, enum names,
// arrays with their counts, which structs go in and which come out. The FFI declarations, the
// option mapping and the generated TypeScript types all follow them, so a field added to a C
// struct is an option (and a typed one) without a line written for it.

const INT_RANGES = {
  int8_t: [-(2 ** 7), 2 ** 7 - 1], uint8_t: [0, 2 ** 8 - 1],
  int16_t: [-(2 ** 15), 2 ** 15 - 1], uint16_t: [0, 2 ** 16 - 1],
  int32_t: [-(2 ** 31), 2 ** 31 - 1], uint32_t: [0, 2 ** 32 - 1],
  int64_t: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], uint64_t: [0, Number.MAX_SAFE_INTEGER],
  size_t: [0, Number.MAX_SAFE_INTEGER],
};

/**
 * The callback fields the binding consumes itself, not options: `on_text` is what stream()
 * yields, `progress_callback` is Session.create's onProgress.
 */
const BINDING_CALLBACKS = new Set(['on_text', 'progress_callback']);

/** C name to JavaScript name: n_ctx -> nCtx. */
function camel(name) {
  return name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/** The option name of a field: camelCase, and `_path` dropped (model_path -> model). */
function optionName(field) {
  return camel(field.name.replace(/_path$/, ''));
}

/** Fields the caller never sets: the version tag and reserved padding. */
function isInternal(field) {
  return field.name === 'struct_size' || /^reserved\d*$/.test(field.name);
}

/** Whether a field is an untyped pointer (the user data of callbacks). */
function isVoidPointer(field) {
  return field.type.base === 'void' && field.type.pointers === 1;
}

/**
 * The arrays of a struct or parameter list: a pointer `x` followed by its count `size_t n_x`.
 * Returns Map(pointer name -> count name).
 */
function arrayPairs(decls) {
  const pairs = new Map();
  decls.forEach((d, i) => {
    const next = decls[i + 1];
    if (d.type.pointers > 0 && next && next.name === `n_${d.name}` && next.type.base === 'size_t' && next.type.pointers === 0) {
      pairs.set(d.name, next.name);
    }
  });
  return pairs;
}

/**
 * The strings of a struct given with their length: a `const char *x` followed by `size_t len`.
 * Their bytes are read exactly (the text may end inside a UTF-8 character). Returns a Set of names.
 */
function stringsWithLength(fields) {
  const names = new Set();
  fields.forEach((f, i) => {
    const next = fields[i + 1];
    if (scalarKind(f.type) === 'string' && next && next.name === 'len' && next.type.base === 'size_t' && next.type.pointers === 0) names.add(f.name);
  });
  return names;
}

/**
 * The array a function writes for its caller: a pointer `x` to numbers followed by `size_t
 * capacity`, with the count in `size_t *out_n_x`. Returns { array, capacity, count } (parameter
 * indexes) or null.
 */
function arrayOutput(fn) {
  const array = fn.params.findIndex((p, i) => p.type.pointers === 1 && !p.type.baseConst && scalarKind({ ...p.type, pointers: 0 }) !== null && fn.params[i + 1]?.name === 'capacity');
  if (array < 0) return null;
  const count = fn.params.findIndex((p) => p.name === `out_n_${fn.params[array].name}` && p.type.pointers === 1);
  return count < 0 ? null : { array, capacity: array + 1, count };
}

/**
 * The parameters of a callback that reach JavaScript, with their indexes among its parameters:
 * [{ param, index }], without the user data, the counts of arrays (an array comes whole) and
 * the length that follows a string (`const char *text, size_t len`: the string is whole).
 */
function callbackParams(cb) {
  const counts = new Set(arrayPairs(cb.params).values());
  const lengths = stringsWithLength(cb.params);
  return cb.params
    .map((param, index) => ({ param, index }))
    .filter(({ param, index }) => !(param.type.base === 'void' && param.type.pointers === 1) && !counts.has(param.name) && !(index > 0 && lengths.has(cb.params[index - 1].name)));
}

/** Whether a string field holds JSON text (its doc comment says so). */
function isJsonText(field) {
  return field.type.base === 'char' && field.type.pointers === 1 && /\bJSON text\b/.test(field.doc || '');
}

/** The JavaScript kind of a scalar C type: 'int', 'float', 'bool', 'string', or null. */
function scalarKind(type) {
  if (type.pointers === 0 && type.base in INT_RANGES) return 'int';
  if (type.pointers === 0 && (type.base === 'float' || type.base === 'double')) return 'float';
  if (type.pointers === 0 && type.base === 'bool') return 'bool';
  if (type.pointers === 1 && type.base === 'char' && type.baseConst) return 'string';
  return null;
}

/** The common underscore-separated prefix of an enum's members (MM_STOP_ of MM_STOP_EOG). */
function enumPrefix(e) {
  const split = e.members.map((m) => m.name.split('_'));
  let n = 0;
  while (split.every((w) => w.length > n + 1 && w[n] === split[0][n])) n++;
  return split[0].slice(0, n).join('_') + '_';
}

/** The rules applied to one ABI description (the parse of one header). */
function rules(abi) {
  const structs = new Map(abi.structs.map((s) => [s.name, s]));
  const enums = new Map(abi.enums.map((e) => [e.name, e]));
  const callbacks = new Map(abi.callbacks.map((c) => [c.name, c]));
  const opaques = new Set(abi.opaques.map((o) => o.name));
  const functions = new Map(abi.functions.map((f) => [f.name, f]));

  /**
   * An enum's members by JavaScript name (lower case, without the common prefix: 'eog' for
   * MM_STOP_EOG) and by value.
   */
  function enumNames(name) {
    const e = enums.get(name);
    const prefix = enumPrefix(e);
    const byName = new Map();
    const byValue = new Map();
    for (const m of e.members) {
      const js = m.name.slice(prefix.length).toLowerCase();
      byName.set(js, m.value);
      byValue.set(m.value, js);
    }
    return { byName, byValue };
  }

  /**
   * The enum a field holds: its C type, or for an integer field the enum its doc comment names
   * ("An `mm_overflow`", "(an `mm_stop_reason`)"). null when none.
   */
  function fieldEnum(field) {
    if (enums.has(field.type.base) && field.type.pointers === 0) return field.type.base;
    const m = /\b[Aa]n? `(mm_\w+)`/.exec(field.doc || '');
    return m && enums.has(m[1]) && scalarKind(field.type) === 'int' ? m[1] : null;
  }

  /** Whether a field is a callback (a function pointer typedef). */
  function isCallback(field) {
    return callbacks.has(field.type.base) && field.type.pointers === 0;
  }

  /**
   * The parallel arrays of a struct: a pointer to structs with no count of its own whose doc
   * says it has "`n_x` entries", for the array `x` (`message_ext`, one entry per message of
   * `messages`). They are no options: the binding fills them from the elements of their array.
   * Returns Map(array name -> parallel field).
   */
  function parallelArrays(structName) {
    const { fields } = structs.get(structName);
    const pairs = arrayPairs(fields);
    const parallel = new Map();
    for (const f of fields) {
      const m = /`(n_\w+)` entries/.exec(f.doc || '');
      if (!m || f.type.pointers !== 1 || !structs.has(f.type.base) || pairs.has(f.name)) continue;
      const array = [...pairs].find(([, count]) => count === m[1]);
      if (array) parallel.set(array[0], f);
    }
    return parallel;
  }

  /**
   * The fields of an input struct that are options: [{ field, option, enumName, count,
   * parallel, json }], without the version tag, the padding, callbacks and their user data, the
   * counts of arrays (`count` names the count field an array sets from its length) and the
   * parallel arrays (`parallel` is the one an array fills too). A string whose doc says it holds
   * "JSON text" also takes a value to serialize (json).
   */
  function optionFields(structName) {
    const s = structs.get(structName);
    const pairs = arrayPairs(s.fields);
    const counts = new Set(pairs.values());
    const parallel = parallelArrays(structName);
    const parallelNames = new Set([...parallel.values()].map((f) => f.name));
    return s.fields
      .filter((f) => !isInternal(f) && !isCallback(f) && !isVoidPointer(f) && !counts.has(f.name) && !parallelNames.has(f.name))
      .map((f) => ({ field: f, option: optionName(f), enumName: fieldEnum(f), count: pairs.get(f.name) || null, parallel: parallel.get(f.name) || null, json: isJsonText(f) }));
  }

  /**
   * The fields of an output struct that a result shows: [{ field, key, enumName, withBytes }].
   * A string given with its length shows as `text` and `bytes` (withBytes), without the length.
   */
  function resultFields(structName) {
    const { fields } = structs.get(structName);
    const sized = stringsWithLength(fields);
    return fields
      .filter((f, i) => !isInternal(f) && !(i > 0 && sized.has(fields[i - 1].name)))
      .map((f) => ({ field: f, key: camel(f.name), enumName: fieldEnum(f), withBytes: sized.has(f.name) }));
  }

  /**
   * The callback fields of a struct that are options: [{ field, callback, option }] (on_token
   * -> onToken, on_tool_call -> onToolCall), all but those the binding consumes itself
   * (BINDING_CALLBACKS: on_text is stream(), progress_callback is onProgress). The option's
   * function only receives: a bool callback's answer (go on or stop) comes from the binding
   * (a stream's consumer, a signal), never from what the function returns.
   */
  function callbackOptions(structName) {
    return structs
      .get(structName)
      .fields.filter((f) => isCallback(f) && !BINDING_CALLBACKS.has(f.name))
      .map((f) => ({ field: f, callback: callbacks.get(f.type.base), option: camel(f.name) }));
  }

  /**
   * The structs callers fill (passed as `const T *`, and what they point to) and those the
   * library fills (passed as `T *`, or to callbacks).
   */
  function structRoles() {
    const input = new Set();
    const output = new Set();
    const mark = (set, name) => {
      if (!structs.has(name) || set.has(name)) return;
      set.add(name);
      for (const f of structs.get(name).fields) mark(set, f.type.base);
    };
    for (const fn of abi.functions) {
      for (const p of fn.params) if (p.type.pointers === 1) mark(p.type.baseConst ? input : output, p.type.base);
    }
    for (const cb of abi.callbacks) for (const p of cb.params) mark(output, p.type.base);
    return { input, output };
  }

  /**
   * The functions that become the package's own (version, liveSessions, ...): those that take
   * nothing and return a number, a flag or a string, named without `mm_` in camelCase. Not
   * mm_last_error: calls run on pool threads, and their errors carry their messages.
   */
  function moduleFunctions() {
    return abi.functions
      .filter((fn) => fn.params.length === 0 && fn.name !== 'mm_last_error' && scalarKind(fn.ret) !== null)
      .map((fn) => ({ fn, name: camel(fn.name.replace(/^mm_/, '')) }));
  }

  return {
    abi, structs, enums, callbacks, opaques, functions, moduleFunctions,
    enumNames, fieldEnum, isCallback, parallelArrays, optionFields, resultFields, callbackOptions, structRoles,
  };
}

module.exports = { rules, camel, optionName, isInternal, arrayPairs, stringsWithLength, callbackParams, arrayOutput, scalarKind, INT_RANGES };
