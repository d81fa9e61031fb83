// chat.test.mjs: the official `openai` SDK against the real polyglot-gw
// binary with the mock provider: completions (plain, streamed, with a
// tool), models, the SDK's error classes, and a clean SIGTERM exit.
//   POLYGLOT_GW=build/polyglot-gw node --test tests/e2e/
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startGateway } from './helpers.mjs';

// Rule-only routing (no default_provider): an unknown model is a 404.
const CONFIG = `
server: {host: 127.0.0.1, port: 8080, workers: 2, shutdown_timeout: 5s}
providers:
  - name: mock
    type: mock
    models: [mock-echo]
    mock: {reply: echo, chunks: 8, chunk_delay: 20ms}
routing:
  rules: [{model_prefix: mock, provider: mock}]
apps:
  - {name: openai-api, frontdoor: openai, path: /openai, default_model: mock-echo}
logging: {level: warn, format: json}
`;

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        days: { type: 'integer' },
        metric: { type: 'boolean' },
        note: { type: 'string' },
      },
      required: ['city', 'days', 'metric'],
    },
  },
};

describe('openai SDK against polyglot-gw', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway(CONFIG);
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'test', maxRetries: 0, timeout: 15000 });
  });

  after(async () => {
    if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) {
      gw.proc.kill('SIGKILL');
    }
  });

  test('chat.completions.create (non-stream)', async () => {
    const res = await client.chat.completions.create({
      model: 'mock-echo',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello from the sdk' },
      ],
    });
    assert.match(res.id, /^chatcmpl-./);
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'mock-echo');
    assert.equal(res.choices.length, 1);
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(res.choices[0].message.content, 'hello from the sdk');
    assert.equal(res.choices[0].finish_reason, 'stop');
    // Words: "be brief" + "hello from the sdk" in, the echo out.
    assert.equal(res.usage.prompt_tokens, 6);
    assert.equal(res.usage.completion_tokens, 4);
    assert.equal(res.usage.total_tokens, 10);
  });

  test('chat.completions.create with stream: true', async () => {
    const text = 'a streamed answer arrives in several small pieces';
    const stream = await client.chat.completions.create({
      model: 'mock-echo',
      messages: [{ role: 'user', content: text }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let first = true;
    let finish = null;
    let usage = null;
    let chunks = 0;
    const ids = new Set();
    for await (const chunk of stream) {
      chunks++;
      ids.add(chunk.id);
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices.length === 0) continue;
      const choice = chunk.choices[0];
      if (first) {
        assert.equal(choice.delta.role, 'assistant');
        first = false;
      }
      content += choice.delta.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(content, text);
    assert.equal(finish, 'stop');
    assert.ok(chunks >= 4, `only ${chunks} chunks`);
    assert.equal(ids.size, 1, 'every chunk carries the same id');
    assert.ok(usage, 'include_usage sends a usage chunk');
    assert.equal(usage.completion_tokens, 8);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  test('chat.completions.stream with a tool + finalChatCompletion()', async () => {
    const stream = client.chat.completions.stream({
      model: 'mock-echo',
      messages: [{ role: 'user', content: 'what does get_weather say for Paris?' }],
      tools: [weatherTool],
    });
    let argDeltas = 0;
    stream.on('tool_calls.function.arguments.delta', () => { argDeltas++; });
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.ok(call.id && call.id.length > 0);
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(args, { city: 'mock', days: 1, metric: true });
    assert.ok(argDeltas >= 1, 'arguments arrive as deltas');
  });

  test('tool call without streaming', async () => {
    const res = await client.chat.completions.create({
      model: 'mock-echo',
      messages: [{ role: 'user', content: 'anything' }],
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const call = res.choices[0].message.tool_calls[0];
    assert.equal(res.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock', days: 1, metric: true });
  });

  test('models.list()', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
      ids.push(m.id);
    }
    assert.ok(ids.includes('mock-echo'), `models: ${ids.join(',')}`);
  });

  test('a bad request is an APIError with status 400', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'mock-echo' }), // no messages
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.status, 400);
        assert.equal(err.type, 'invalid_request_error');
        assert.ok(err.message.length > 0);
        assert.ok(err.headers.get('x-request-id'), 'errors carry X-Request-ID');
        return true;
      },
    );
  });

  test('invalid JSON is a 400 with param null', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "mock-echo", "messages": [',
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.type, 'invalid_request_error');
    assert.ok('param' in body.error);
    assert.equal(body.error.param, null);
  });

  test('an unknown model is an APIError with status 404', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'gpt-does-not-exist',
        messages: [{ role: 'user', content: 'hi' }],
      }),
      (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `not a NotFoundError: ${err}`);
        assert.equal(err.status, 404);
        assert.equal(err.code, 'model_not_found');
        return true;
      },
    );
  });

  test('SIGTERM stops the gateway with exit status 0', async () => {
    // A stream in flight when the signal arrives (8 chunks, 20 ms apart)
    // still completes: SIGTERM drains before exiting.
    const slow = await client.chat.completions.create({
      model: 'mock-echo',
      messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
      stream: true,
    });
    const it = slow[Symbol.asyncIterator]();
    const firstChunk = await it.next();
    assert.equal(firstChunk.done, false);
    const stopped = gw.stop();
    let content = firstChunk.value.choices[0]?.delta?.content ?? '';
    for (let r = await it.next(); !r.done; r = await it.next()) {
      content += r.value.choices[0]?.delta?.content ?? '';
    }
    assert.equal(content, 'one two three four five six seven eight');
    const { code, signal } = await stopped;
    assert.equal(signal, null, `killed by ${signal}; output: ${gw.output()}`);
    assert.equal(code, 0, `exit ${code}; output: ${gw.output()}`);
  });
});
