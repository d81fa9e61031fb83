// providers.test.mjs: the official `openai` SDK against the real
// polyglot-gw binary proxying to real-provider types: an
// `openai-compatible` provider and an `anthropic` provider whose base_urls
// are fake upstreams in this process (fake_upstream.mjs). Covers the
// relay of whole and streamed answers, usage, tool calls, the SDK's own
// retry on a relayed 429, and Anthropic translated behind the OpenAI
// frontdoor.
//   POLYGLOT_GW=build/polyglot-gw node --test tests/e2e/
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startGateway, drainChat } from './helpers.mjs';
import {
  ANTHROPIC_TEXT, ANTHROPIC_USAGE, OPENAI_TEXT, OPENAI_USAGE, TOOL_ARGS, WEATHER_TOOL as weatherTool,
  startAnthropicFake, startOpenAIFake,
} from './fake_upstream.mjs';

// max_retries: 0 so a 429 reaches the client as it is (the SDK retries).
function config(openaiURL, anthropicURL) {
  return `
server: {host: 127.0.0.1, port: 8080, workers: 2, shutdown_timeout: 5s}
providers:
  - name: compat
    type: openai-compatible
    base_url: ${openaiURL}/v1
    api_key: sk-fake-compat
    max_retries: 0
    timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 20s}
  - name: claude
    type: anthropic
    base_url: ${anthropicURL}
    api_key: sk-ant-fake
    max_retries: 0
    timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 20s}
routing:
  rules:
    - {model_prefix: fake-, provider: compat}
    - {model_prefix: claude-, provider: claude}
apps:
  - {name: openai-api, frontdoor: openai, path: /openai}
logging: {level: warn, format: json}
`;
}

describe('openai SDK through polyglot-gw to real-provider types', () => {
  let oai;
  let ant;
  let gw;
  let client;

  before(async () => {
    oai = await startOpenAIFake();
    ant = await startAnthropicFake();
    gw = await startGateway(config(oai.url, ant.url));
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0, timeout: 15000 });
  });

  after(async () => {
    if (gw) {
      const r = await gw.stop();
      assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}: ${gw.output()}`);
    }
    if (oai) await oai.close();
    if (ant) await ant.close();
  });

  beforeEach(() => {
    oai.reset();
    ant.reset();
  });

  test('create (non-stream): content, usage, what the upstream received, overhead header', async () => {
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello through the gateway' },
    ];
    const { data, response } = await client.chat.completions
      .create({ model: 'fake-gpt', messages, temperature: 0.25 })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'fake-gpt');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, OPENAI_TEXT.join(''));
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.equal(data.usage.prompt_tokens, OPENAI_USAGE.prompt_tokens);
    assert.equal(data.usage.completion_tokens, OPENAI_USAGE.completion_tokens);
    assert.equal(data.usage.total_tokens, OPENAI_USAGE.total_tokens);

    const overhead = response.headers.get('x-polyglot-overhead-us');
    assert.ok(overhead !== null, 'x-polyglot-overhead-us is present');
    assert.match(overhead, /^\d+$/);
    // Rate-limit headers from the upstream are relayed.
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '99');

    assert.equal(oai.requests.length, 1);
    const got = oai.requests[0];
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/v1/chat/completions');
    assert.equal(got.headers.authorization, 'Bearer sk-fake-compat');
    assert.equal(got.body.model, 'fake-gpt');
    assert.equal(got.body.temperature, 0.25);
    assert.ok(!got.body.stream, 'a non-stream request stays non-stream upstream');
    assert.deepEqual(
      got.body.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content
        : m.content.map((p) => p.text).join('')]),
      [['system', 'be brief'], ['user', 'hello through the gateway']],
    );
  });

  test('stream: true with include_usage: content and one usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const r = await drainChat(stream);
    assert.equal(r.content, OPENAI_TEXT.join(''));
    assert.equal(r.finish, 'stop');
    assert.ok(r.chunks >= OPENAI_TEXT.length + 2, `only ${r.chunks} chunks`);
    assert.equal(r.ids.size, 1, 'every chunk carries the same id');
    assert.equal(r.usageChunks, 1);
    assert.equal(r.usage.prompt_tokens, OPENAI_USAGE.prompt_tokens);
    assert.equal(r.usage.completion_tokens, OPENAI_USAGE.completion_tokens);
    assert.equal(r.usage.total_tokens, OPENAI_USAGE.total_tokens);
    assert.equal(oai.requests.length, 1);
    assert.equal(oai.requests[0].body.stream, true);
  });

  test('stream: true without include_usage: no usage chunk reaches the client', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'stream please, no usage' }],
      stream: true,
    });
    const r = await drainChat(stream);
    assert.equal(r.content, OPENAI_TEXT.join(''));
    assert.equal(r.finish, 'stop');
    assert.equal(r.usageChunks, 0);
    assert.equal(r.usage, null);
    assert.equal(oai.requests.length, 1);
  });

  test('chat.completions.stream + finalChatCompletion() with a tool call', async () => {
    const stream = client.chat.completions.stream({
      model: 'fake-gpt',
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
    assert.equal(call.id, 'call_fake1');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), JSON.parse(TOOL_ARGS));
    assert.ok(argDeltas >= 2, `arguments arrive as several deltas (${argDeltas})`);

    // The tool definition reached the upstream intact.
    const sent = oai.requests[0].body;
    assert.equal(sent.stream, true);
    assert.equal(sent.tools.length, 1);
    assert.equal(sent.tools[0].function.name, 'get_weather');
    assert.deepEqual(sent.tools[0].function.parameters, weatherTool.function.parameters);
  });

  test('relayed 429: the SDK retries (maxRetries 2) and gets the answer', async () => {
    const rl = {
      status: 429,
      headers: { 'retry-after': '0' },
      body: { error: { message: 'Rate limit reached (fake)', type: 'requests', code: 'rate_limit_exceeded' } },
    };
    oai.script([rl, rl]);
    const sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 2, timeout: 15000 });
    const res = await sdk.chat.completions.create({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'retry me' }],
    });
    assert.equal(res.choices[0].message.content, OPENAI_TEXT.join(''));
    assert.equal(oai.requests.length, 3, 'two 429s and the answer, one upstream request per SDK attempt');
  });

  test('relayed 429 with SDK maxRetries 0: APIError 429 with retry-after', async () => {
    oai.script([{
      status: 429,
      headers: { 'retry-after': '7', 'x-ratelimit-remaining-requests': '0' },
      body: { error: { message: 'Rate limit reached (fake)', type: 'requests', code: 'rate_limit_exceeded' } },
    }]);
    await assert.rejects(
      client.chat.completions.create({ model: 'fake-gpt', messages: [{ role: 'user', content: 'no retry' }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.status, 429);
        assert.equal(err.headers.get('retry-after'), '7');
        assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
        assert.match(err.message, /Rate limit reached \(fake\)/);
        return true;
      },
    );
    assert.equal(oai.requests.length, 1, 'max_retries: 0 means the gateway did not retry');
  });

  test('anthropic provider behind the OpenAI frontdoor: create', async () => {
    const res = await client.chat.completions.create({
      model: 'claude-fake',
      messages: [
        { role: 'system', content: 'you are a fake' },
        { role: 'user', content: 'hello anthropic' },
      ],
      max_tokens: 321,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(res.choices[0].message.content, ANTHROPIC_TEXT.join(''));
    assert.equal(res.choices[0].finish_reason, 'stop');
    assert.equal(res.usage.prompt_tokens, ANTHROPIC_USAGE.input_tokens);
    assert.equal(res.usage.completion_tokens, ANTHROPIC_USAGE.output_tokens);
    assert.equal(res.usage.total_tokens, ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.output_tokens);

    assert.equal(ant.requests.length, 1);
    const got = ant.requests[0];
    assert.equal(got.url, '/v1/messages');
    assert.equal(got.headers['x-api-key'], 'sk-ant-fake');
    assert.equal(got.headers['anthropic-version'], '2023-06-01');
    assert.equal(got.body.model, 'claude-fake');
    assert.equal(got.body.max_tokens, 321);
    // The system message moves to the top-level `system` of the Messages API.
    const system = typeof got.body.system === 'string' ? got.body.system
      : got.body.system.map((p) => p.text).join('');
    assert.equal(system, 'you are a fake');
    assert.equal(got.body.messages.length, 1);
    assert.equal(got.body.messages[0].role, 'user');
    assert.equal(oai.requests.length, 0);
  });

  test('anthropic provider behind the OpenAI frontdoor: stream', async () => {
    const stream = await client.chat.completions.create({
      model: 'claude-fake',
      messages: [{ role: 'user', content: 'stream from anthropic' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const r = await drainChat(stream);
    assert.equal(r.content, ANTHROPIC_TEXT.join(''));
    assert.equal(r.finish, 'stop');
    assert.equal(r.ids.size, 1);
    assert.equal(r.usageChunks, 1);
    assert.equal(r.usage.prompt_tokens, ANTHROPIC_USAGE.input_tokens);
    assert.equal(r.usage.completion_tokens, ANTHROPIC_USAGE.output_tokens);
    assert.equal(ant.requests.length, 1);
    assert.equal(ant.requests[0].body.stream, true);
    // No token limit in the request: the provider's default is sent.
    assert.equal(ant.requests[0].body.max_tokens, 4096);
  });
});
