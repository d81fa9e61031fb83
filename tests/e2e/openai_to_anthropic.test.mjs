// openai_to_anthropic.test.mjs: tool calls translated both ways (issue 4).
// The official `openai` SDK talks to the real polyglot-gw binary, whose
// `anthropic` provider points at the fake Anthropic upstream in this
// process (fake_upstream.mjs). That fake answers a tool offer with a text
// block and then a tool_use block whose input streams as input_json_delta
// pieces split inside tokens; once the last user turn carries a
// tool_result, it answers in text.
//   - chat.completions.stream + finalChatCompletion(): the tool call comes
//     back as OpenAI tool_calls (index 0 although the Anthropic block was
//     index 1), its arguments parse to the expected object, and the
//     arguments arrived as several deltas;
//   - the round trip: the SDK's assistant tool_calls + a `tool` message go
//     upstream as Anthropic tool_use and tool_result blocks with the same id.
//   POLYGLOT_GW=build/polyglot-gw node --test tests/e2e/
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startGateway } from './helpers.mjs';
import {
  ANTHROPIC_TEXT, ANTHROPIC_TOOL_ID, ANTHROPIC_TOOL_TEXT, TOOL_ARGS, WEATHER_TOOL as weatherTool,
  startAnthropicFake,
} from './fake_upstream.mjs';

function config(anthropicURL) {
  return `
server: {host: 127.0.0.1, port: 8080, workers: 2, shutdown_timeout: 5s}
providers:
  - name: claude
    type: anthropic
    base_url: ${anthropicURL}
    api_key: sk-ant-fake
    max_retries: 0
    timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 20s}
routing:
  rules:
    - {model_prefix: claude-, provider: claude}
apps:
  - {name: openai-api, frontdoor: openai, path: /openai}
logging: {level: warn, format: json}
`;
}

const question = { role: 'user', content: 'What is the weather in Paris for 3 days?' };

describe('openai SDK through polyglot-gw to an anthropic provider: tools', () => {
  let ant;
  let gw;
  let client;

  before(async () => {
    ant = await startAnthropicFake();
    gw = await startGateway(config(ant.url));
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0, timeout: 15000 });
  });

  after(async () => {
    if (gw) {
      const r = await gw.stop();
      assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}: ${gw.output()}`);
    }
    if (ant) await ant.close();
  });

  beforeEach(() => ant.reset());

  test('chat.completions.stream + finalChatCompletion(): streamed tool_use becomes tool_calls', async () => {
    const stream = client.chat.completions.stream({
      model: 'claude-fake',
      messages: [question],
      tools: [weatherTool],
      max_tokens: 300,
    });
    let argDeltas = 0;
    const indexes = new Set();
    stream.on('chunk', (chunk) => {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) indexes.add(tc.index);
    });
    stream.on('tool_calls.function.arguments.delta', () => { argDeltas++; });
    const final = await stream.finalChatCompletion();

    const choice = final.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, ANTHROPIC_TOOL_TEXT);
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.id, ANTHROPIC_TOOL_ID);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), JSON.parse(TOOL_ARGS));
    assert.deepEqual([...indexes], [0], 'one tool call, OpenAI index 0');
    assert.ok(argDeltas >= 2, `arguments arrive as several deltas (${argDeltas})`);

    // Upstream: a streamed Anthropic request with the tool in its shape.
    assert.equal(ant.requests.length, 1);
    const sent = ant.requests[0].body;
    assert.equal(sent.stream, true);
    assert.equal(sent.max_tokens, 300);
    assert.equal(sent.tools.length, 1);
    assert.equal(sent.tools[0].name, 'get_weather');
    assert.equal(sent.tools[0].description, 'Weather for a city');
    assert.deepEqual(sent.tools[0].input_schema, weatherTool.function.parameters);
  });

  test('tool result round trip: tool_use and tool_result blocks upstream with matching ids', async () => {
    const first = await client.chat.completions.create({
      model: 'claude-fake',
      messages: [question],
      tools: [weatherTool],
    });
    const assistant = first.choices[0].message;
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(assistant.tool_calls[0].id, ANTHROPIC_TOOL_ID);
    assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), JSON.parse(TOOL_ARGS));

    // The SDK's own message object goes back as it came, then the result.
    const second = await client.chat.completions.create({
      model: 'claude-fake',
      messages: [
        question,
        assistant,
        { role: 'tool', tool_call_id: assistant.tool_calls[0].id, content: 'sunny, 21C' },
      ],
      tools: [weatherTool],
    });
    assert.equal(second.choices[0].finish_reason, 'stop');
    assert.equal(second.choices[0].message.content, ANTHROPIC_TEXT.join(''));
    assert.equal(second.choices[0].message.tool_calls, undefined);

    assert.equal(ant.requests.length, 2);
    const msgs = ant.requests[1].body.messages;
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user']);
    const blocks = (m) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content);

    const uses = blocks(msgs[1]).filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1);
    assert.equal(uses[0].id, ANTHROPIC_TOOL_ID);
    assert.equal(uses[0].name, 'get_weather');
    assert.deepEqual(uses[0].input, JSON.parse(TOOL_ARGS));
    const text = blocks(msgs[1]).filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.equal(text, ANTHROPIC_TOOL_TEXT, 'the assistant text before the call is kept');

    const results = blocks(msgs[2]).filter((b) => b.type === 'tool_result');
    assert.equal(results.length, 1);
    assert.equal(results[0].tool_use_id, uses[0].id);
    const out = typeof results[0].content === 'string' ? results[0].content
      : results[0].content.map((b) => b.text).join('');
    assert.equal(out, 'sunny, 21C');
    assert.notEqual(results[0].is_error, true);
  });
});
