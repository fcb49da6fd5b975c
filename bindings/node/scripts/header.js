'use strict';
// A parser for the C header that cbindgen writes (include/mm_session.h): it reads the shapes
// cbindgen emits (defines, enums, opaque structs, structs, callback typedefs and functions, each
// after its doc comment) into a plain description of the ABI, which scripts/gen-abi.js writes to
// lib/abi.json. It is not a general C parser: a shape it does not know fails loudly.

/** Doc comment text without the comment markers, lines joined. */
function cleanDoc(raw) {
  return raw
    .split('\n')
    .map((line) => line.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\s*\*\/\s*$/, '').trim())
    .filter((line) => line !== '')
    .join(' ');
}

/**
 * Splits `text` into items, each with the doc comment just before it: [{ doc, code }], where
 * code runs up to the next doc comment.
 */
function withDocs(text) {
  const items = [];
  const re = /\/\*\*([\s\S]*?)\*\//g;
  let last = 0;
  let doc = '';
  for (let m; (m = re.exec(text)) !== null; ) {
    items.push({ doc, code: text.slice(last, m.index) });
    doc = cleanDoc(m[1]);
    last = re.lastIndex;
  }
  items.push({ doc, code: text.slice(last) });
  return items;
}

/**
 * A C type as written in a declaration: { base, baseConst, pointers, count? }. `const struct
 * mm_media *` is { base: 'mm_media', baseConst: true, pointers: 1 }; `const char *const *` is
 * { base: 'char', baseConst: true, pointers: 2 }.
 */
function parseDecl(decl) {
  const m = /^(.*?)(\w+)\s*(?:\[(\d+)\])?$/.exec(decl.trim());
  if (!m) throw new Error(`cannot parse declaration: ${decl}`);
  const type = parseType(m[1]);
  if (m[3] !== undefined) type.count = Number(m[3]);
  return { name: m[2], type };
}

function parseType(text) {
  const words = text.replace(/\*/g, ' * ').trim().split(/\s+/).filter((w) => w !== 'struct' && w !== 'enum');
  const stars = words.filter((w) => w === '*').length;
  const firstStar = words.indexOf('*');
  const head = firstStar < 0 ? words : words.slice(0, firstStar);
  const base = head.filter((w) => w !== 'const');
  if (base.length !== 1) throw new Error(`cannot parse type: ${text}`);
  return { base: base[0], baseConst: head.includes('const'), pointers: stars };
}

/** Parameters of a function or callback: "void" or a comma-separated list of declarations. */
function parseParams(text) {
  const t = text.replace(/\s+/g, ' ').trim();
  if (t === 'void' || t === '') return [];
  return t.split(',').map((p) => parseDecl(p));
}

/** Evaluates a #define's value: a number, or an arithmetic expression of earlier defines. */
function evalDefine(expr, defines) {
  const substituted = expr.replace(/[A-Za-z_]\w*/g, (name) => {
    if (!(name in defines)) throw new Error(`#define refers to unknown ${name}`);
    return String(defines[name]);
  });
  if (!/^[\d\s()+\-*/]+$/.test(substituted)) throw new Error(`#define value is not arithmetic: ${expr}`);
  return Function(`"use strict"; return (${substituted});`)();
}

function parseEnum(name, body, doc) {
  const members = [];
  for (const { doc: mdoc, code } of withDocs(body)) {
    for (const m of code.matchAll(/(\w+)\s*=\s*(-?\d+)/g)) members.push({ name: m[1], value: Number(m[2]), doc: mdoc });
  }
  return { name, doc, members };
}

function parseStruct(name, body, doc) {
  const fields = [];
  for (const { doc: fdoc, code } of withDocs(body)) {
    const decls = code.split(';').map((d) => d.trim()).filter((d) => d !== '');
    decls.forEach((decl, i) => fields.push({ ...parseDecl(decl), doc: i === 0 ? fdoc : '' }));
  }
  return { name, doc, fields };
}

/** Parses the header text into { version, defines, enums, opaques, callbacks, structs, functions }. */
function parseHeader(text) {
  const abi = { defines: {}, enums: [], opaques: [], callbacks: [], structs: [], functions: [] };
  // Struct and enum bodies hold doc comments of their own: take them out first, whole.
  const bodies = [];
  const flat = text.replace(/typedef (struct|enum) (\w+) \{([\s\S]*?)\n\} \2;/g, (_, kind, name, body) => {
    bodies.push({ kind, name, body });
    return `@@BODY${bodies.length - 1}@@;`;
  });
  for (const { doc: chunkDoc, code } of withDocs(flat)) {
    // The doc comment belongs to the first item after it; items without one get ''.
    let doc = chunkDoc;
    const take = () => {
      const d = doc;
      doc = '';
      return d;
    };
    for (const line of code.split('\n')) {
      const define = /^#define (MM_\w+) (.+)$/.exec(line.trim());
      if (define) abi.defines[define[1]] = evalDefine(define[2], abi.defines);
    }
    const readers = [
      [/@@BODY(\d+)@@/g, (m) => {
        const { kind, name, body } = bodies[Number(m[1])];
        if (kind === 'enum') abi.enums.push(parseEnum(name, body, take()));
        else abi.structs.push(parseStruct(name, body, take()));
      }],
      [/typedef struct (\w+) \1;/g, (m) => abi.opaques.push({ name: m[1], doc: take() })],
      [/typedef ([\w\s*]+?)\s*\(\*(\w+)\)\(([\s\S]*?)\);/g, (m) => {
        abi.callbacks.push({ name: m[2], ret: parseType(m[1]), params: parseParams(m[3]), doc: take() });
      }],
      [/^[ \t]*((?:const |enum |struct )*\w+(?:\s*\*)*)\s*\b(mm_\w+)\(([\s\S]*?)\);/gm, (m) => {
        abi.functions.push({ name: m[2], ret: parseType(m[1]), params: parseParams(m[3]), doc: take() });
      }],
    ];
    // In the order they stand in the header.
    const items = readers.flatMap(([re, read]) => [...code.matchAll(re)].map((m) => ({ at: m.index, read: () => read(m) })));
    for (const item of items.sort((a, b) => a.at - b.at)) item.read();
  }
  // Every typedef and every function declaration must have been read: a shape this parser does
  // not know fails here rather than leave an export or a type out.
  const typedefs = (text.match(/^typedef /gm) || []).length;
  const read = abi.enums.length + abi.structs.length + abi.opaques.length + abi.callbacks.length;
  if (typedefs !== read) throw new Error(`the header has ${typedefs} typedefs, the parser read ${read}`);
  const externC = text.slice(text.indexOf('extern "C" {'));
  const declared = (externC.match(/^[^\s#/*].*\bmm_\w+\(/gm) || []).length;
  if (declared !== abi.functions.length) throw new Error(`the header declares ${declared} functions, the parser read ${abi.functions.length}`);
  const d = abi.defines;
  abi.version = { major: d.MM_VERSION_MAJOR, minor: d.MM_VERSION_MINOR, patch: d.MM_VERSION_PATCH, number: d.MM_VERSION_NUMBER };
  for (const key of ['major', 'minor', 'patch', 'number']) {
    if (!Number.isInteger(abi.version[key])) throw new Error(`the header has no version ${key}`);
  }
  return abi;
}

module.exports = { parseHeader };
