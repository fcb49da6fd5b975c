'use strict';
// Tool calls and reasoning on the generated models. Their chat template (ChatML) has no tool
// syntax, so the library describes the tools in a generic JSON format; with toolChoice
// 'required' or a tool's name a grammar makes the call, so even random weights give calls whose
// arguments validate against their schema: the checks below hold for every seed.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Session } = require('..');
const { fixtures, rejectsWithStatus } = require('./helpers');

const fx = fixtures();

// The C tests' WEATHER_TOOLS (crates/capi/tests/capi/tools.rs).
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city.',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] }, days: { type: 'integer', minimum: 1, maximum: 9 } },
        required: ['city', 'days'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The time in a time zone.',
      parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false },
    },
  },
];

const QUESTION = [{ role: 'user', content: 'What is the weather in Oslo for the next 3 days?' }];

/** Checks one call against TOOLS' schemas: OpenAI's shape, a made-up id, arguments that validate. */
function validateCall(call, what) {
  assert.equal(call.type, 'function', what);
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/, what);
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather') {
    assert.deepEqual(Object.keys(args), ['city', 'days'], what);
    assert.ok(['Paris', 'Oslo', 'Lima'].includes(args.city), what);
    assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 9, what);
  } else {
    assert.equal(call.function.name, 'get_time', what);
    assert.deepEqual(Object.keys(args), ['zone'], what);
    assert.ok(['UTC', 'CET'].includes(args.zone), what);
  }
}

/** The calls that `onToolCall` deltas make, assembled by index (as the README shows). */
function assembler() {
  const calls = [];
  return {
    calls,
    onToolCall: ({ index, id, name, arguments: piece }) => {
      assert.ok(Number.isInteger(index) && index >= 0, `index ${index}`);
      if (!calls[index]) {
        assert.ok(id !== '' && name !== '', 'a call first appears with its id and name');
        calls[index] = { id, type: 'function', function: { name, arguments: '' } };
      } else {
        assert.deepEqual([id, name], ['', ''], 'id and name come once');
      }
      calls[index].function.arguments += piece;
    },
  };
}


let s;
test.before(async () => {
  // The fixture's tokenizer spells most text byte by byte: the tools' description is long.
  s = await Session.create({ model: fx.model, mmproj: fx.mmproj, nThreads: 1, nCtx: 4096 });
});
test.after(() => s.close());

test("toolChoice 'required': one well-formed call, stop reason tool_calls, for 5 seeds", async () => {
  for (let seed = 1; seed <= 5; seed++) {
    const reply = await s.respond(QUESTION, { tools: TOOLS, toolChoice: 'required', temperature: 1, seed, maxTokens: 256 });
    const what = `seed ${seed}: ${JSON.stringify(reply.message)}`;
    assert.equal(reply.stopReason, 'tool_calls', what);
    assert.equal(reply.info.stopReason, 'tool_calls', what);
    assert.equal(reply.info.toolCalls, 1, what);
    assert.equal(reply.toolCalls.length, 1, what);
    validateCall(reply.toolCalls[0], what);
    assert.equal(reply.text, '', 'the text is the content only');
    assert.equal(reply.message.role, 'assistant');
    assert.equal(reply.message.content, null, 'an answer that only calls tools has no content');
    assert.deepEqual(reply.message.tool_calls, reply.toolCalls);
    assert.equal(reply.reasoningContent, '');
    // The figures of the same request, and the message the session keeps of it.
    assert.deepEqual(await s.lastAsk(), reply.info);
    assert.deepEqual(await s.lastMessage(), reply.message);
  }
});

test('toolChoice naming a function: a call to it, by name or in OpenAI form', async () => {
  for (const [toolChoice, name] of [
    ['get_time', 'get_time'],
    [{ type: 'function', function: { name: 'get_weather' } }, 'get_weather'],
  ]) {
    for (let seed = 1; seed <= 3; seed++) {
      const reply = await s.respond(QUESTION, { tools: TOOLS, toolChoice, temperature: 1, seed, maxTokens: 256 });
      const what = `${name}, seed ${seed}: ${JSON.stringify(reply.message)}`;
      assert.equal(reply.stopReason, 'tool_calls', what);
      assert.equal(reply.toolCalls.length, 1, what);
      assert.equal(reply.toolCalls[0].function.name, name, what);
      validateCall(reply.toolCalls[0], what);
    }
  }
  // tools as JSON text work as the array does.
  const reply = await s.respond(QUESTION, { tools: JSON.stringify(TOOLS), toolChoice: 'get_time', temperature: 1, seed: 9, maxTokens: 256 });
  assert.equal(reply.toolCalls[0].function.name, 'get_time');
});

test('streamed tool call deltas assemble, by index, into the calls of the answer', async () => {
  const options = { tools: TOOLS, toolChoice: 'required', temperature: 1, seed: 4, maxTokens: 256 };
  // respond(): the deltas have all come when the promise resolves.
  const viaRespond = assembler();
  const reply = await s.respond(QUESTION, { ...options, onToolCall: viaRespond.onToolCall });
  assert.ok(viaRespond.calls.length > 0);
  assert.deepEqual(viaRespond.calls, reply.toolCalls);
  // stream(): the text pieces (none: the answer is a call), and the deltas alongside.
  const viaStream = assembler();
  const pieces = [];
  for await (const piece of s.stream({ messages: QUESTION, ...options, onToolCall: viaStream.onToolCall })) pieces.push(piece);
  assert.equal(pieces.join(''), '');
  assert.deepEqual(viaStream.calls, reply.toolCalls, 'the same seed, the same call');
  assert.deepEqual((await s.lastMessage()).tool_calls, viaStream.calls);
  assert.equal((await s.lastAsk()).stopReason, 'tool_calls');
});

test('a round trip: the answer\'s message and the tool result go back; the cache is reused', async () => {
  await s.reset();
  const question = { role: 'user', content: [{ type: 'image_url', image_url: fx.image }, { type: 'text', text: 'Which city is this? Get its weather for 2 days.' }] };
  const first = await s.respond([question], { tools: TOOLS, toolChoice: 'get_weather', maxTokens: 256, temperature: 0 });
  assert.equal(first.info.mediaEncoded, 1);
  assert.equal(first.toolCalls.length, 1);
  const [call] = first.toolCalls;
  const chat = [
    question,
    first.message,
    { role: 'tool', tool_call_id: call.id, name: call.function.name, content: JSON.stringify({ sky: 'rain' }) },
    { role: 'user', content: 'Should I take an umbrella?' },
  ];
  // camelCase names, a JSON text of the calls and arguments given as an object render the same.
  const camel = [
    question,
    { role: 'assistant', content: null, toolCalls: [{ id: call.id, function: { name: call.function.name, arguments: JSON.parse(call.function.arguments) } }] },
    { role: 'tool', toolCallId: call.id, name: call.function.name, content: JSON.stringify({ sky: 'rain' }) },
    chat[3],
  ];
  const rendered = await s.applyTemplate({ messages: chat, tools: TOOLS });
  assert.equal(await s.applyTemplate({ messages: camel, tools: TOOLS }), rendered);
  assert.equal(await s.applyTemplate({ messages: [question, { ...first.message, tool_calls: JSON.stringify(first.message.tool_calls) }, ...chat.slice(2)], tools: TOOLS }), rendered);
  assert.ok(rendered.includes(call.id) && rendered.includes('rain'), rendered);
  // The first request's prompt starts the second's: the question and its image stay cached.
  const before = await s.applyTemplate({ messages: [question], tools: TOOLS, toolChoice: 'get_weather' });
  const shared = before.slice(0, before.lastIndexOf('\n', before.length - 2) + 1);
  assert.ok(rendered.startsWith(shared));

  const second = await s.respond(chat, { tools: TOOLS, maxTokens: 4 });
  assert.ok(second.info.positionsReused > 0, JSON.stringify(second.info));
  assert.equal(second.info.mediaEncoded, 0, 'the image is reused from the cache');
  assert.ok(second.info.positionsReused > shared.length / 8, `the question and its image are reused: ${JSON.stringify(second.info)}`);
});

test('a tool result for an unknown tool_call_id is refused', async () => {
  const chat = [
    ...QUESTION,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_a1b2c3d4', type: 'function', function: { name: 'get_time', arguments: '{"zone": "UTC"}' } }] },
    { role: 'tool', tool_call_id: 'call_nobodymadethis', content: '12:00' },
  ];
  await rejectsWithStatus(s.respond(chat, { tools: TOOLS, maxTokens: 4 }), 'MM_ERR_INVALID_ARGUMENT', /call_nobodymadethis.*no earlier assistant message|no earlier assistant message.*call_nobodymadethis/);
  // The right id goes through.
  chat[2] = { ...chat[2], tool_call_id: 'call_a1b2c3d4' };
  assert.equal(typeof (await s.chat(chat, { tools: TOOLS, maxTokens: 4 })), 'string');
});

test('bad tools and tool choices: MM_ERR_INVALID_ARGUMENT from the library, TypeError from the binding', async () => {
  await rejectsWithStatus(s.respond(QUESTION, { tools: 'get_weather', toolChoice: 'required' }), 'MM_ERR_INVALID_ARGUMENT', /tools is not a JSON array/);
  await rejectsWithStatus(s.respond(QUESTION, { tools: { type: 'function' }, toolChoice: 'required' }), 'MM_ERR_INVALID_ARGUMENT', /tools is not a JSON array/);
  await rejectsWithStatus(s.respond(QUESTION, { tools: [{ type: 'retrieval' }] }), 'MM_ERR_INVALID_ARGUMENT', /Unsupported tool type/);
  await rejectsWithStatus(s.respond(QUESTION, { tools: TOOLS, toolChoice: 'get_news' }), 'MM_ERR_INVALID_ARGUMENT', /not among the tools/);
  await rejectsWithStatus(s.respond(QUESTION, { toolChoice: 'required' }), 'MM_ERR_INVALID_ARGUMENT', /tool_choice/);
  await rejectsWithStatus(s.ask({ prompt: 'Hello', tools: TOOLS }), 'MM_ERR_INVALID_ARGUMENT');
  await rejectsWithStatus(s.applyTemplate({ messages: QUESTION, tools: [{ type: 'retrieval' }] }), 'MM_ERR_INVALID_ARGUMENT', /Unsupported tool type/);

  await assert.rejects(s.respond(QUESTION, { tools: TOOLS, toolChoice: 42 }), { name: 'TypeError', message: /toolChoice: expected 'auto'/ });
  await assert.rejects(s.respond(QUESTION, { tools: TOOLS, toolChoice: { type: 'function' } }), { name: 'TypeError', message: /toolChoice/ });
  await assert.rejects(s.respond(QUESTION, { reasoning: 'loud' }), { name: 'TypeError', message: /separate, inline, off/ });
  await assert.rejects(s.respond(QUESTION, { parallelToolCalls: 'yes' }), { name: 'TypeError', message: /parallelToolCalls: expected a bool/ });
  await assert.rejects(s.respond(QUESTION, { onToolCall: 'yes' }), { name: 'TypeError', message: /onToolCall must be a function/ });
  await assert.rejects(s.respond([{ role: 'assistant', content: null, tool_calls: { id: 'x' } }]), { name: 'TypeError', message: /messages\[0\]\.tool_calls: expected an array/ });
  await assert.rejects(s.respond([{ role: 'assistant', tool_calls: [42] }]), { name: 'TypeError', message: /tool_calls\[0\]/ });
  await assert.rejects(s.respond([{ role: 'tool', tool_call_id: 'a', toolCallId: 'a', content: 'x' }]), { name: 'TypeError', message: /tool_call_id or toolCallId, not both/ });
  await assert.rejects(s.respond([{ role: 'tool', toolCallId: 7, content: 'x' }]), { name: 'TypeError', message: /messages\[0\]\.toolCallId: expected a string/ });
  assert.equal(typeof (await s.chat(QUESTION, { maxTokens: 2 })), 'string', 'the session is usable after the refusals');
});

test("toolChoice 'none' and parallelToolCalls reach the library", async () => {
  const none = await s.respond(QUESTION, { tools: TOOLS, toolChoice: 'none', maxTokens: 8, temperature: 0 });
  assert.deepEqual(none.toolCalls, []);
  assert.notEqual(none.stopReason, 'tool_calls');
  assert.equal(typeof none.message.content, 'string');
  // Several calls allowed: still well-formed, each of them.
  for (let seed = 1; seed <= 2; seed++) {
    const reply = await s.respond(QUESTION, { tools: TOOLS, toolChoice: 'required', parallelToolCalls: true, temperature: 1, seed, maxTokens: 400 });
    assert.equal(reply.stopReason, 'tool_calls', JSON.stringify(reply.message));
    assert.ok(reply.toolCalls.length >= 1);
    assert.equal(reply.info.toolCalls, reply.toolCalls.length);
    reply.toolCalls.forEach((call, i) => validateCall(call, `parallel, seed ${seed}, call ${i}`));
  }
});

// A template that shows earlier reasoning as <think>...</think> (as Qwen3's does): llama.cpp's
// chat layer then reads the model's <think> block as reasoning. A grammar writes one.
const THINKING_TEMPLATE =
  "{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' }}" +
  "{%- if message.role == 'assistant' and message.reasoning_content %}{{ '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}{%- endif %}" +
  "{{ (message.content or '') + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{%- if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";
const THOUGHT = { grammar: 'root ::= "<think>\\nabc\\n</think>\\n\\nred"', maxTokens: 64 };

test('reasoning: kept apart and streamed to onReasoning, or left inline; reasoningContent goes back', async () => {
  const t = await Session.create({ model: fx.model, nThreads: 1, nCtx: 2048, chatTemplate: THINKING_TEMPLATE });
  try {
    const hi = [{ role: 'user', content: 'Hi' }];
    const pieces = [];
    const reply = await t.respond(hi, { ...THOUGHT, onReasoning: (text) => pieces.push(text) });
    assert.equal(reply.text, 'red');
    assert.equal(reply.reasoningContent.trim(), 'abc');
    assert.equal(reply.message.reasoning_content, reply.reasoningContent);
    assert.equal(pieces.join(''), reply.reasoningContent, 'the streamed reasoning is the reasoning');
    // stream() yields the content only; the reasoning goes to onReasoning.
    const streamed = [];
    const text = [];
    for await (const piece of t.stream({ messages: hi, ...THOUGHT, onReasoning: (r) => streamed.push(r) })) text.push(piece);
    assert.equal(text.join(''), 'red');
    assert.equal(streamed.join(''), reply.reasoningContent);

    const inline = await t.respond(hi, { ...THOUGHT, reasoning: 'inline' });
    assert.equal(inline.text, '<think>\nabc\n</think>\n\nred');
    assert.equal(inline.reasoningContent, '');

    // 'off' asks the template not to think; an earlier answer's reasoning is shown, by either name.
    assert.ok((await t.applyTemplate({ messages: hi, reasoning: 'off' })).endsWith('<think>\n\n</think>\n\n'));
    const chat = [...hi, { role: 'assistant', content: 'red', reasoning_content: 'because' }, { role: 'user', content: '?' }];
    const rendered = await t.applyTemplate({ messages: chat });
    assert.ok(rendered.includes('<think>\nbecause\n</think>'), rendered);
    assert.equal(await t.applyTemplate({ messages: [...hi, { role: 'assistant', content: 'red', reasoningContent: 'because' }, chat[2]] }), rendered);
    assert.equal(await t.applyTemplate({ messages: [...hi, reply.message, chat[2]] }), rendered.replace('because', reply.reasoningContent));
  } finally {
    await t.close();
  }
});
