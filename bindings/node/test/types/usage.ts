// Type-checked by npm run lint (tsconfig.json: tsc --noEmit, strict) and compiled and run by
// test/dispose.test.js: the declarations describe the API as a TypeScript user calls it, and
// `await using` closes a session (compiled to ES2022 and run).
import { Session, MmError, setLogger, liveSessions, type AskInfo, type ChatMessage, type Media, type Reply, type Tool, type ToolCall } from '../..';

async function main(model: string, mmproj: string, image: string): Promise<void> {
  setLogger((level, message) => void `${level}: ${message}`, 'error');
  const media: Media[] = [{ path: image }, image, { rgb: new Uint8Array(12), width: 2, height: 2 }];
  {
    await using s = await Session.create({ model, mmproj, nThreads: 1, onProgress: (f: number) => void f });
    const text: string = await s.ask({ prompt: 'What is this?', media: media.slice(0, 1), maxTokens: 4, stop: ['\n'], overflow: 'drop_oldest' });
    for await (const piece of s.stream({ prompt: text, maxTokens: 2 })) void piece.length;
    const tokens: number[] = await s.tokenize('hello', { parseSpecial: false });
    await s.ask({ prompt: 'x', maxTokens: 2, logitBias: [{ token: tokens[0], bias: -100 }], jsonSchema: { type: 'string' }, nProbs: 2, onToken: (chosen, top) => void [chosen.text, chosen.bytes.length, top.length] });
    const info: AskInfo = await s.lastAsk();
    void info.promptTokens;
    const shared: number = info.mostTogether + info.slotWaitMs + (await s.info()).nParallel + (await s.memory()).contextSharedBy;
    void shared;
    if (info.stopReason === 'eog' || info.stopReason === 'max_tokens') void info.tokensGenerated;
    await s.chat([{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: image } }] }], { maxTokens: 2 });
    const tools: Tool[] = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
    const chat: ChatMessage[] = [{ role: 'user', content: 'call f' }];
    const calls: ToolCall[] = [];
    const reply: Reply = await s.respond(chat, {
      tools, toolChoice: { type: 'function', function: { name: 'f' } }, parallelToolCalls: false, reasoning: 'separate', maxTokens: 64,
      onReasoning: (text) => void text.length,
      onToolCall: ({ index, id, name, arguments: piece }) => {
        calls[index] ??= { id, type: 'function', function: { name, arguments: '' } };
        calls[index].function.arguments += piece;
      },
    });
    if (reply.stopReason === 'tool_calls') {
      chat.push(reply.message);
      for (const call of reply.toolCalls) chat.push({ role: 'tool', tool_call_id: call.id, name: call.function.name, content: JSON.stringify(JSON.parse(call.function.arguments)) });
    }
    chat.push({ role: 'assistant', content: null, toolCalls: [{ id: 'call_1', function: { name: 'f', arguments: {} } }], reasoningContent: 'because' });
    const rendered: string = await s.applyTemplate({ messages: chat, tools: JSON.stringify(tools), toolChoice: 'auto' });
    void [rendered, reply.text, reply.reasoningContent, reply.info.toolCalls, (await s.lastMessage()).tool_calls?.length];
    try {
      await s.ask({ prompt: 'x', media: ['/nonexistent.png'] });
    } catch (e) {
      if (e instanceof MmError) void e.status.name;
    }
  }
  {
    await using batched = await Session.create({ model, nThreads: 1, nParallel: 2 });
    await using fork = await batched.fork();
    await Promise.all([batched.ask({ prompt: 'a', maxTokens: 2 }), fork.ask({ prompt: 'b', maxTokens: 2 })]);
  }
  if (liveSessions() !== 0) throw new Error('await using did not close the session');
  console.log('closed by await using');
}

const [model, mmproj, image] = process.argv.slice(2);
main(model, mmproj, image).catch((e) => {
  console.error(e);
  process.exit(1);
});
