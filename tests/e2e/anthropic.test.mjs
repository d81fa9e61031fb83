// anthropic.test.mjs: the official `@anthropic-ai/sdk` against the real
// polyglot-gw binary through its Anthropic frontdoor (the `/anthropic`
// app): the mock provider (create, stream + finalMessage, countTokens,
// models.list), an `openai-compatible` provider whose base_url is the JS
// fake OpenAI upstream (text, stream, a tool_use / tool_result round trip
// checked on what the upstream received), the SDK's error classes for a
// 400 (no max_tokens) and a 404 (unknown model); and an `anthropic`
// provider whose base_url is the JS fake Anthropic upstream (passthrough:
// create, stream, countTokens forwarded).
//   POLYGLOT_GW=build/polyglot-gw node --test tests/e2e/
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

import { startGateway } from './helpers.mjs';
import {
  ANTHROPIC_COUNT, ANTHROPIC_TEXT, ANTHROPIC_USAGE, OPENAI_TEXT, OPENAI_USAGE,
  startAnthropicFake, startOpenAIFake,
} from './fake_upstream.mjs';

// Rule-only routing (no default_provider): an unknown model is a 404.
// The models listed by the Anthropic frontdoor come from `models:` here.
function config(openaiURL) {
  return `
server: {host: 127.0.0.1, port: 8080, workers: 2, shutdown_timeout: 5s}
providers:
  - name: mock
    type: mock
    models: [mock-echo, mock-other]
    mock: {reply: echo, chunks: 4, chunk_delay: 10ms}
  - name: compat
    type: openai-compatible
    base_url: ${openaiURL}/v1
    api_key: sk-fake-compat
    max_retries: 0
    timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 20s}
routing:
  rules:
    - {model_prefix: mock-, provider: mock}
    - {model_prefix: fake-, provider: compat}
apps:
  - {name: anthropic-api, frontdoor: anthropic, path: /anthropic}
logging: {level: warn, format: json}
`;
}

const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer' }, metric: { type: 'boolean' } },
    required: ['city', 'days', 'metric'],
  },
};

const WEATHER_INPUT = { city: 'Paris', days: 3, metric: true };

function textOf(message) {
  return message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

describe('@anthropic-ai/sdk through polyglot-gw', () => {
  let oai;
  let gw;
  let client;
  let anthropicBase;

  before(async () => {
    oai = await startOpenAIFake();
    gw = await startGateway(config(oai.url));
    anthropicBase = `http://127.0.0.1:${gw.port}/anthropic`;
    client = new Anthropic({ baseURL: anthropicBase, apiKey: 'unused', maxRetries: 0, timeout: 15000 });
  });

  after(async () => {
    if (gw) {
      const r = await gw.stop();
      assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}: ${gw.output()}`);
    }
    if (oai) await oai.close();
  });

  beforeEach(() => {
    oai.reset();
  });

  // ---- mock provider ------------------------------------------------

  test('mock: messages.create echoes with usage and end_turn', async () => {
    const msg = await client.messages.create({
      model: 'mock-echo',
      max_tokens: 64,
      system: 'be brief',
      messages: [{ role: 'user', content: 'hello from the anthropic sdk' }],
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match(msg.id, /^msg_./);
    assert.equal(msg.model, 'mock-echo');
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.content[0].text, 'hello from the anthropic sdk');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(typeof msg.usage.input_tokens, 'number');
    assert.equal(typeof msg.usage.output_tokens, 'number');
    assert.ok(msg.usage.input_tokens > 0, `input_tokens ${msg.usage.input_tokens}`);
    assert.ok(msg.usage.output_tokens > 0, `output_tokens ${msg.usage.output_tokens}`);
  });

  test('mock: messages.stream + finalMessage, text arrives in several deltas', async () => {
    const stream = client.messages.stream({
      model: 'mock-echo',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'one two three four five six' }],
    });
    const deltas = [];
    const events = new Set();
    stream.on('text', (t) => deltas.push(t));
    stream.on('streamEvent', (e) => events.add(e.type));
    const msg = await stream.finalMessage();
    assert.equal(textOf(msg), 'one two three four five six');
    assert.equal(deltas.join(''), 'one two three four five six');
    assert.ok(deltas.length > 1, `expected several text deltas, got ${deltas.length}`);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.model, 'mock-echo');
    assert.ok(msg.usage.output_tokens > 0);
    for (const t of ['message_start', 'content_block_start', 'content_block_delta',
      'content_block_stop', 'message_delta', 'message_stop']) {
      assert.ok(events.has(t), `stream had no ${t} event (got ${[...events]})`);
    }
  });

  test('mock: messages.countTokens gives a positive estimate that grows with the input', async () => {
    const small = await client.messages.countTokens({
      model: 'mock-echo',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const big = await client.messages.countTokens({
      model: 'mock-echo',
      system: 'You are a careful assistant that answers in full sentences.',
      messages: [{ role: 'user', content: 'Please describe the weather in Paris over the next three days.' }],
      tools: [weatherTool],
    });
    assert.equal(typeof small.input_tokens, 'number');
    assert.ok(small.input_tokens > 0, `input_tokens ${small.input_tokens}`);
    assert.ok(big.input_tokens > small.input_tokens, `${big.input_tokens} > ${small.input_tokens}`);
  });

  test('models.list: the configured models in Anthropic shape', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.type, 'model');
      assert.equal(typeof m.display_name, 'string');
      assert.equal(typeof m.created_at, 'string');
      ids.push(m.id);
    }
    assert.ok(ids.includes('mock-echo'), `ids ${ids}`);
    assert.ok(ids.includes('mock-other'), `ids ${ids}`);
  });

  // ---- openai-compatible provider (JS fake OpenAI upstream) -----------

  test('openai-compatible: messages.create text, usage, what the upstream received', async () => {
    const msg = await client.messages.create({
      model: 'fake-gpt',
      max_tokens: 100,
      system: 'be brief',
      messages: [{ role: 'user', content: 'hello via the anthropic frontdoor' }],
    });
    assert.equal(textOf(msg), OPENAI_TEXT.join(''));
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.model, 'fake-gpt');
    assert.equal(msg.usage.input_tokens, OPENAI_USAGE.prompt_tokens);
    assert.equal(msg.usage.output_tokens, OPENAI_USAGE.completion_tokens);

    assert.equal(oai.requests.length, 1);
    const got = oai.requests[0];
    assert.equal(got.url, '/v1/chat/completions');
    assert.equal(got.headers.authorization, 'Bearer sk-fake-compat');
    assert.equal(got.body.model, 'fake-gpt');
    assert.ok(!got.body.stream, 'a non-stream request stays non-stream upstream');
    const flat = got.body.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content
      : m.content.map((p) => p.text).join('')]);
    assert.deepEqual(flat, [['system', 'be brief'], ['user', 'hello via the anthropic frontdoor']]);
  });

  test('openai-compatible: messages.stream + finalMessage', async () => {
    const stream = client.messages.stream({
      model: 'fake-gpt',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'stream please' }],
    });
    const deltas = [];
    stream.on('text', (t) => deltas.push(t));
    const msg = await stream.finalMessage();
    assert.equal(textOf(msg), OPENAI_TEXT.join(''));
    assert.equal(deltas.join(''), OPENAI_TEXT.join(''));
    assert.ok(deltas.length > 1, `expected several text deltas, got ${deltas.length}`);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(oai.requests.length, 1);
    assert.equal(oai.requests[0].body.stream, true);
  });

  test('openai-compatible: tool_use round trip (create, then tool_result back upstream)', async () => {
    const question = { role: 'user', content: 'What is the weather in Paris?' };
    const first = await client.messages.create({
      model: 'fake-gpt',
      max_tokens: 200,
      tools: [weatherTool],
      messages: [question],
    });
    assert.equal(first.stop_reason, 'tool_use');
    const uses = first.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1);
    const use = uses[0];
    assert.equal(use.name, 'get_weather');
    assert.equal(use.id, 'call_fake1');
    assert.deepEqual(use.input, WEATHER_INPUT);

    // The tool went upstream in OpenAI's function shape.
    const up1 = oai.requests[0].body;
    assert.equal(up1.tools.length, 1);
    assert.equal(up1.tools[0].type, 'function');
    assert.equal(up1.tools[0].function.name, 'get_weather');
    assert.deepEqual(up1.tools[0].function.parameters.required, ['city', 'days', 'metric']);

    oai.reset();
    // The fake answers with a tool call whenever tools are offered: send
    // the result without tools so it answers in text.
    const second = await client.messages.create({
      model: 'fake-gpt',
      max_tokens: 200,
      messages: [
        question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21C' }] },
      ],
    });
    assert.equal(textOf(second), OPENAI_TEXT.join(''));
    assert.equal(second.stop_reason, 'end_turn');

    assert.equal(oai.requests.length, 1);
    const msgs = oai.requests[0].body.messages;
    const asst = msgs.find((m) => m.role === 'assistant');
    assert.ok(asst, `no assistant message upstream: ${JSON.stringify(msgs)}`);
    assert.equal(asst.tool_calls.length, 1);
    assert.equal(asst.tool_calls[0].id, 'call_fake1');
    assert.equal(asst.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(asst.tool_calls[0].function.arguments), WEATHER_INPUT);
    const tool = msgs.find((m) => m.role === 'tool');
    assert.ok(tool, `no role: tool message upstream: ${JSON.stringify(msgs)}`);
    assert.equal(tool.tool_call_id, 'call_fake1');
    const toolText = typeof tool.content === 'string' ? tool.content
      : tool.content.map((p) => p.text).join('');
    assert.equal(toolText, 'sunny, 21C');
    // Order: user question, assistant tool call, tool result.
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'tool']);
  });

  test('openai-compatible: streamed tool_use, input parsed from the pieces', async () => {
    const stream = client.messages.stream({
      model: 'fake-gpt',
      max_tokens: 200,
      tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    const msg = await stream.finalMessage();
    assert.equal(msg.stop_reason, 'tool_use');
    const use = msg.content.find((b) => b.type === 'tool_use');
    assert.ok(use, `no tool_use block: ${JSON.stringify(msg.content)}`);
    assert.equal(use.id, 'call_fake1');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, WEATHER_INPUT);
  });

  // ---- errors ---------------------------------------------------------

  test('400: a request without max_tokens is a BadRequestError in Anthropic shape', async () => {
    // max_tokens is required in the SDK's types only; at runtime it sends
    // the body as given, so the gateway's own check answers.
    await assert.rejects(
      client.messages.create({
        model: 'mock-echo',
        messages: [{ role: 'user', content: 'no max_tokens' }],
      }),
      (err) => {
        assert.ok(err instanceof Anthropic.APIError, `not an APIError: ${err}`);
        assert.ok(err instanceof Anthropic.BadRequestError);
        assert.equal(err.status, 400);
        assert.equal(err.error.type, 'error');
        assert.equal(err.error.error.type, 'invalid_request_error');
        assert.match(err.error.error.message, /max_tokens/);
        return true;
      },
    );
    // The same over raw fetch: JSON error body and status.
    const res = await fetch(`${anthropicBase}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'mock-echo', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type'), /application\/json/);
    const body = await res.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('404: an unknown model is a NotFoundError, stream or not, and nothing goes upstream', async () => {
    const req = {
      model: 'no-such-model',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    };
    const check = (err) => {
      assert.ok(err instanceof Anthropic.APIError, `not an APIError: ${err}`);
      assert.ok(err instanceof Anthropic.NotFoundError);
      assert.equal(err.status, 404);
      assert.equal(err.error.error.type, 'not_found_error');
      return true;
    };
    await assert.rejects(client.messages.create(req), check);
    await assert.rejects(client.messages.stream(req).finalMessage(), check);
    assert.equal(oai.requests.length, 0);
  });
});

// ---- anthropic-type provider: passthrough --------------------------------

describe('@anthropic-ai/sdk through polyglot-gw to an anthropic provider (passthrough)', () => {
  let ant;
  let gw;
  let client;

  before(async () => {
    ant = await startAnthropicFake();
    gw = await startGateway(`
server: {host: 127.0.0.1, port: 8080, workers: 2, shutdown_timeout: 5s}
providers:
  - name: claude
    type: anthropic
    base_url: ${ant.url}
    api_key: sk-ant-fake
    max_retries: 0
    timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 20s}
routing:
  rules:
    - {model_exact: fast, provider: claude, model: claude-sonnet-4-20250514}
    - {model_prefix: claude-, provider: claude}
apps:
  - {name: anthropic-api, frontdoor: anthropic, path: /anthropic}
logging: {level: warn, format: json}
`);
    client = new Anthropic({
      baseURL: `http://127.0.0.1:${gw.port}/anthropic`, apiKey: 'unused', maxRetries: 0, timeout: 15000,
    });
  });

  after(async () => {
    if (gw) {
      const r = await gw.stop();
      assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}: ${gw.output()}`);
    }
    if (ant) await ant.close();
  });

  beforeEach(() => {
    ant.reset();
  });

  // A document block and cache_control: nothing the gateway translates,
  // all of it for the upstream to read.
  const content = [
    {
      type: 'document',
      source: { type: 'text', media_type: 'text/plain', data: 'The sky is blue.' },
      title: 'facts',
      citations: { enabled: true },
      cache_control: { type: 'ephemeral' },
    },
    { type: 'text', text: 'What colour is the sky?' },
  ];

  test('messages.create: the upstream reads the SDK body (model rewritten), the SDK reads the upstream answer', async () => {
    const msg = await client.messages.create(
      { model: 'fast', max_tokens: 64, messages: [{ role: 'user', content }] },
      { headers: { 'anthropic-beta': 'pdfs-2024-09-25' } },
    );
    assert.match(msg.id, /^msg_fake/); // the upstream's own id: not re-encoded
    assert.equal(msg.model, 'claude-sonnet-4-20250514');
    assert.equal(textOf(msg), ANTHROPIC_TEXT.join(''));
    assert.deepEqual(msg.usage, ANTHROPIC_USAGE);
    assert.equal(ant.requests.length, 1);
    const rq = ant.requests[0];
    assert.equal(rq.url, '/v1/messages');
    assert.equal(rq.headers['x-api-key'], 'sk-ant-fake');
    assert.equal(rq.headers['anthropic-version'], '2023-06-01');
    assert.equal(rq.headers['anthropic-beta'], 'pdfs-2024-09-25');
    assert.equal(rq.body.model, 'claude-sonnet-4-20250514');
    assert.deepEqual(rq.body.messages, [{ role: 'user', content }]);
    assert.equal(rq.body.max_tokens, 64);
  });

  test('messages.stream + finalMessage: the upstream events in order', async () => {
    const stream = client.messages.stream({
      model: 'claude-sonnet-4-20250514', max_tokens: 64, messages: [{ role: 'user', content }],
    });
    const types = [];
    stream.on('streamEvent', (ev) => types.push(ev.type));
    const deltas = [];
    stream.on('text', (t) => deltas.push(t));
    const msg = await stream.finalMessage();
    assert.deepEqual(deltas, ANTHROPIC_TEXT);
    assert.match(msg.id, /^msg_fake/);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.output_tokens, ANTHROPIC_USAGE.output_tokens);
    // (The SDK does not surface ping events.)
    assert.deepEqual(types.filter((t) => t !== 'ping'), [
      'message_start', 'content_block_start',
      ...ANTHROPIC_TEXT.map(() => 'content_block_delta'),
      'content_block_stop', 'message_delta', 'message_stop',
    ]);
    assert.equal(ant.requests[0].body.stream, true);
    assert.deepEqual(ant.requests[0].body.messages, [{ role: 'user', content }]);
  });

  test('messages.countTokens: forwarded to the provider, its count relayed', async () => {
    const r = await client.messages.countTokens({
      model: 'fast', messages: [{ role: 'user', content }],
    });
    assert.equal(r.input_tokens, ANTHROPIC_COUNT);
    assert.equal(ant.requests.length, 1);
    const rq = ant.requests[0];
    assert.equal(rq.url, '/v1/messages/count_tokens');
    assert.equal(rq.headers['x-api-key'], 'sk-ant-fake');
    assert.equal(rq.body.model, 'claude-sonnet-4-20250514');
    assert.deepEqual(rq.body.messages, [{ role: 'user', content }]);
  });
});
