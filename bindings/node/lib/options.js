'use strict';
// JavaScript options to C structs and C structs to JavaScript results, by the rules of
// lib/rules.js: option `nCtx` is field `n_ctx`, `model` is `model_path`, an array sets its count,
// an enum takes its member's name ('drop_oldest'). Values are checked by their C type, so a typo
// or a wrong type is a TypeError here rather than a surprise in the library.

const { fileURLToPath } = require('node:url');
const A = require('./abi');
const { scalarKind, callbackParams, camel, INT_RANGES } = require('./rules');

const optionTables = new Map();

/** Map(option name -> entry) of an input struct. */
function optionTable(structName) {
  if (!optionTables.has(structName)) {
    optionTables.set(structName, new Map(A.optionFields(structName).map((e) => [e.option, e])));
  }
  return optionTables.get(structName);
}

const enumTables = new Map();

function enumTable(name) {
  if (!enumTables.has(name)) enumTables.set(name, A.enumNames(name));
  return enumTables.get(name);
}

/** An enum member's value from its JavaScript name ('drop_oldest') or its number. */
function enumValue(name, value, where) {
  const { byName, byValue } = enumTable(name);
  if (typeof value === 'string' && byName.has(value.toLowerCase())) return byName.get(value.toLowerCase());
  if (Number.isInteger(value) && byValue.has(value)) return value;
  throw new TypeError(`${where}: ${JSON.stringify(value)} is not one of ${[...byName.keys()].join(', ')}`);
}

/** A scalar checked against its C type. */
function scalar(type, value, where) {
  const kind = scalarKind(type);
  const ok = {
    int: () => Number.isInteger(value) && value >= INT_RANGES[type.base][0] && value <= INT_RANGES[type.base][1],
    float: () => typeof value === 'number' && !Number.isNaN(value),
    bool: () => typeof value === 'boolean',
    string: () => typeof value === 'string' || value === null,
  }[kind];
  if (!ok) throw new TypeError(`${where}: this option cannot be set from JavaScript`);
  if (!ok()) throw new TypeError(`${where}: expected ${kind === 'int' ? `an integer (${type.base})` : `a ${kind}`}, got ${describe(value)}`);
  return value;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `a ${value.constructor?.name || 'object'}` : `${typeof value} ${String(value)}`;
}

/**
 * The C fields of `structName` for `options`; `special` converts elements of arrays of the
 * structs it names (media, messages). Every key must be an option of the struct.
 */
function toStruct(structName, options, where, special = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}: expected an options object, got ${describe(options)}`);
  const table = optionTable(structName);
  if (!A.functions.has(`${structName}_default`)) {
    // No defaults to fall back on (an element of an array, such as a logit bias): all fields.
    const missing = [...table.keys()].filter((key) => options[key] === undefined);
    if (missing.length > 0) throw new TypeError(`${where}: missing ${missing.join(', ')}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const entry = table.get(key);
    if (!entry) throw new TypeError(`${where}: unknown option ${key} (known: ${[...table.keys()].join(', ')})`);
    const at = `${where}: ${key}`;
    const { field } = entry;
    if (entry.count) {
      const items = field.type.base === 'char' && typeof value === 'string' ? [value] : value;
      if (!Array.isArray(items)) throw new TypeError(`${at}: expected an array, got ${describe(value)}`);
      const base = field.type.base;
      const convert = (v, i) => {
        if (base === 'char') return scalar({ base, baseConst: true, pointers: 1 }, v, `${at}[${i}]`);
        if (!A.structs.has(base)) return scalar({ base, pointers: 0 }, v, `${at}[${i}]`);
        return special[base] ? special[base](v, `${at}[${i}]`) : toStruct(base, v, `${at}[${i}]`, special);
      };
      out[field.name] = items.length ? items.map(convert) : null;
      out[entry.count] = items.length;
      // A parallel array (message_ext for messages): one entry per element, NULL when all are empty.
      const fill = entry.parallel && special[entry.parallel.type.base];
      if (fill) {
        const entries = items.map((v, i) => fill(v, `${at}[${i}]`));
        out[entry.parallel.name] = entries.some((e) => Object.values(e).some((x) => x !== null)) ? entries : null;
      }
    } else if (entry.enumName) {
      out[field.name] = enumValue(entry.enumName, value, at);
    } else if (entry.json && value !== null && typeof value === 'object') {
      out[field.name] = JSON.stringify(value);
    } else {
      out[field.name] = scalar(field.type, value, at);
    }
  }
  return out;
}

const utf8 = new TextDecoder();

/**
 * A JavaScript result from a struct the library filled: camelCase keys, enums by name, a
 * string given with its length as `text` and its exact `bytes` (lib/worker.js read them).
 */
function fromStruct(structName, raw) {
  const out = {};
  for (const { field, key, enumName, withBytes } of A.resultFields(structName)) {
    const value = raw[field.name];
    if (withBytes) {
      out[key] = utf8.decode(value);
      out.bytes = value;
    } else {
      out[key] = enumName ? (enumTable(enumName).byValue.get(value) ?? value) : value;
    }
  }
  return out;
}

/**
 * The arguments of a callback, as lib/worker.js posted them, for the user's function: structs
 * (and arrays of them) as results.
 */
function callbackArgs(cb, args) {
  const params = callbackParams(cb);
  return args.map((value, i) => {
    const { base, pointers } = params[i].param.type;
    if (pointers !== 1 || !A.structs.has(base)) return value;
    return Array.isArray(value) ? value.map((v) => fromStruct(base, v)) : fromStruct(base, value);
  });
}

const MEDIA_KIND = (name) => enumValue('mm_media_kind', name, 'media kind');

/** Bytes of a view, copied into a buffer of their own (sent to the pool thread by transfer). */
function ownBytes(view, where) {
  if (view instanceof ArrayBuffer) return new Uint8Array(view.slice(0));
  if (!ArrayBuffer.isView(view)) throw new TypeError(`${where}: expected a Buffer or typed array, got ${describe(view)}`);
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/**
 * One media item as the C struct: { path }, { data } (the bytes of a PNG, JPEG, WAV, ... file),
 * { rgb, width, height } (raw pixels, 3 bytes each) or { pcm } (mono float samples at the
 * projector's rate); a string is a path.
 */
function toMedia(item, where) {
  if (typeof item === 'string') return { kind: MEDIA_KIND('file'), path: item };
  if (item === null || typeof item !== 'object') throw new TypeError(`${where}: expected a media item, got ${describe(item)}`);
  const keys = ['path', 'data', 'rgb', 'pcm'].filter((k) => item[k] !== undefined);
  if (keys.length !== 1) throw new TypeError(`${where}: a media item has one of path, data, rgb, pcm (got ${keys.join(', ') || 'none'})`);
  switch (keys[0]) {
    case 'path':
      return { kind: MEDIA_KIND('file'), path: scalar({ base: 'char', baseConst: true, pointers: 1 }, item.path, `${where}.path`) };
    case 'data': {
      const data = ownBytes(item.data, `${where}.data`);
      return { kind: MEDIA_KIND('encoded'), data, size: data.length };
    }
    case 'rgb': {
      const data = ownBytes(item.rgb, `${where}.rgb`);
      const width = scalar({ base: 'uint32_t', pointers: 0 }, item.width, `${where}.width`);
      const height = scalar({ base: 'uint32_t', pointers: 0 }, item.height, `${where}.height`);
      return { kind: MEDIA_KIND('rgb'), data, size: data.length, width, height };
    }
    default: {
      if (!(item.pcm instanceof Float32Array)) throw new TypeError(`${where}.pcm: expected a Float32Array, got ${describe(item.pcm)}`);
      const data = ownBytes(item.pcm, `${where}.pcm`);
      return { kind: MEDIA_KIND('pcm_f32'), data, size: data.length };
    }
  }
}

/** A media item from an OpenAI `image_url` URL: a data: URI, a file: URL, or a path. */
function mediaFromUrl(url, where) {
  if (typeof url !== 'string') throw new TypeError(`${where}: expected a URL string, got ${describe(url)}`);
  const data = /^data:[^,]*?;base64,(.*)$/s.exec(url);
  if (data) return { data: Buffer.from(data[1], 'base64') };
  if (url.startsWith('data:')) throw new TypeError(`${where}: only base64 data: URIs are supported`);
  if (url.startsWith('file:')) return { path: fileURLToPath(url) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new TypeError(`${where}: ${url.split(':')[0]} URLs are not fetched; pass the bytes as a data: URI or { data }`);
  return { path: url };
}

/**
 * One chat message as the C struct. `content` is a string or OpenAI content parts: { type:
 * 'text', text }, { type: 'image_url', image_url: { url } }, { type: 'input_audio',
 * input_audio: { data } } (base64). Media parts stand in the text as the session's marker, so
 * they reach the model where they appear among the parts.
 */
function toMessage(message, where, marker) {
  if (message === null || typeof message !== 'object') throw new TypeError(`${where}: expected a message, got ${describe(message)}`);
  const role = scalar({ base: 'char', baseConst: true, pointers: 1 }, message.role, `${where}.role`);
  const { content } = message;
  if (typeof content === 'string') return { role, text: content, media: null, n_media: 0 };
  // An assistant message that only calls tools has none (OpenAI gives null).
  if (content === null || content === undefined) return { role, text: '', media: null, n_media: 0 };
  if (!Array.isArray(content)) throw new TypeError(`${where}.content: expected a string, an array of parts or null, got ${describe(content)}`);
  const texts = [];
  const media = [];
  content.forEach((part, i) => {
    const at = `${where}.content[${i}]`;
    if (part?.type === 'text') {
      texts.push(scalar({ base: 'char', baseConst: true, pointers: 1 }, part.text, `${at}.text`));
      return;
    }
    let item;
    if (part?.type === 'image_url') item = mediaFromUrl(typeof part.image_url === 'string' ? part.image_url : part.image_url?.url, `${at}.image_url`);
    else if (part?.type === 'input_audio') item = { data: Buffer.from(String(part.input_audio?.data ?? ''), 'base64') };
    else throw new TypeError(`${at}: unknown content part type ${JSON.stringify(part?.type)} (text, image_url, input_audio)`);
    media.push(toMedia(item, at));
    texts.push(marker);
  });
  return { role, text: texts.join('\n'), media: media.length ? media : null, n_media: media.length };
}

const STRING = { base: 'char', baseConst: true, pointers: 1 };

/**
 * A message's tool call fields as the C struct (mm_message_ext): each field under its OpenAI
 * name (`tool_calls`, `tool_call_id`, `name`, `reasoning_content`) or in camelCase
 * (`toolCalls`, ...), not both. `tool_calls` is an array of OpenAI calls ({ id, type:
 * 'function', function: { name, arguments } }, arguments JSON text or an object to serialize),
 * or that array as JSON text.
 */
function toMessageExt(message, where) {
  const out = {};
  for (const field of A.structs.get('mm_message_ext').fields) {
    const key = camel(field.name);
    const snake = message[field.name];
    const camelValue = message[key];
    if (snake !== undefined && camelValue !== undefined && key !== field.name) throw new TypeError(`${where}: give ${field.name} or ${key}, not both`);
    const value = snake ?? camelValue ?? null;
    const at = `${where}.${snake !== undefined ? field.name : key}`;
    if (field.name === 'tool_calls' && value !== null && typeof value !== 'string') {
      if (!Array.isArray(value)) throw new TypeError(`${at}: expected an array of tool calls or its JSON text, got ${describe(value)}`);
      out[field.name] = value.length ? JSON.stringify(value.map((call, i) => toolCall(call, `${at}[${i}]`))) : null;
    } else {
      out[field.name] = scalar(STRING, value, at);
    }
  }
  return out;
}

/** One OpenAI tool call, its arguments as JSON text (an object is serialized). */
function toolCall(call, where) {
  if (call === null || typeof call !== 'object' || call.function === null || typeof call.function !== 'object') {
    throw new TypeError(`${where}: expected { id, type: 'function', function: { name, arguments } }, got ${describe(call)}`);
  }
  const args = call.function.arguments;
  return {
    ...call,
    type: call.type ?? 'function',
    function: { ...call.function, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) },
  };
}

/**
 * `toolChoice` as the library takes it: 'auto', 'none', 'required', a tool's name, or OpenAI's
 * { type: 'function', function: { name } } (the name).
 */
function toolChoice(value, where) {
  if (typeof value === 'string' || value === null) return value;
  if (value && typeof value === 'object' && value.type === 'function' && typeof value.function?.name === 'string') return value.function.name;
  throw new TypeError(`${where}: toolChoice: expected 'auto', 'none', 'required', a tool's name or { type: 'function', function: { name } }, got ${describe(value)}`);
}

/** The buffers of a converted request, to transfer to the pool thread instead of copying. */
function transferList(params) {
  const list = [];
  const visit = (v) => {
    if (v instanceof Uint8Array) list.push(v.buffer);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(params);
  return list;
}

module.exports = { toStruct, fromStruct, callbackArgs, toMedia, toMessage, toMessageExt, toolChoice, transferList, enumValue };
