'use strict';
// The C ABI this package was generated for (lib/abi.json, from include/mm_session.h by
// scripts/gen-abi.js), with the rules of lib/rules.js applied.

const { rules } = require('./rules');

module.exports = rules(require('./abi.json'));
