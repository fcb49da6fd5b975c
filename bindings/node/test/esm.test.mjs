// The ES module entry gives the same objects as the CommonJS one (one library, one pool), also
// through the package's own name (its "exports" map).
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from '../index.mjs';
import byName, { Session as NamedSession } from 'mm-session';

const require = createRequire(import.meta.url);
const cjs = require('..');

test('named and default exports match the CommonJS entry', () => {
  for (const key of Object.keys(cjs)) assert.equal(esm[key], cjs[key], key);
  assert.equal(esm.default, cjs);
  assert.equal(byName, cjs);
  assert.equal(NamedSession, cjs.Session);
  assert.equal(typeof esm.Session.create, 'function');
});
