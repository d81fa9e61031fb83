// fake_upstream.mjs: fake OpenAI and Anthropic upstreams for the e2e tests,
// node `http` servers on 127.0.0.1:0 inside the test process. They answer
// like the real APIs (whole JSON bodies and SSE streams), record every
// request they receive, and can be scripted to answer the next requests
// with fixed statuses (e.g. 429 + retry-after) before the normal answer.
// The TLS variants serve the same answers over https: HTTP/2 (with
// HTTP/1.1 allowed, as real providers do) or HTTP/1.1 only.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';

// What the fakes say unless a request asks for something else.
export const OPENAI_TEXT = ['The fake ', 'upstream ', 'says ', 'hello ', 'in pieces.'];
export const OPENAI_USAGE = { prompt_tokens: 17, completion_tokens: 5, total_tokens: 22 };
export const ANTHROPIC_TEXT = ['Claude-shaped ', 'fake ', 'answer.'];
export const ANTHROPIC_USAGE = { input_tokens: 23, output_tokens: 7 };
export const TOOL_ARGS = '{"city":"Paris","days":3,"metric":true}';
// A tool the fakes' answers fit (TOOL_ARGS are its arguments).
export const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, metric: { type: 'boolean' } },
      required: ['city', 'days', 'metric'],
    },
  },
};

// The server a fake runs: plain http, or with tls: {key, cert} https
// over HTTP/2 (http2: true, HTTP/1.1 still allowed) or HTTP/1.1.
function createServer(listener, { tls, http2: h2 } = {}) {
  if (!tls) return http.createServer(listener);
  if (h2) return http2.createSecureServer({ ...tls, allowHTTP1: true }, listener);
  return https.createServer(tls, listener);
}

// Starts a server whose normal answer is handler(req, body, res); returns
// {port, url, requests, script(list), close()}. `requests` holds one
// {method, url, httpVersion, headers, body} per request (body parsed as
// JSON when it is JSON). script([{status, headers, body}, ...]) makes the
// next requests get those answers in order, then the handler again.
// server: createServer's options, plus requireVersion ('2.0', '1.1'): a
// request over another HTTP version gets a 505 error instead.
async function startFake(handler, serverOpts = {}) {
  const requests = [];
  const queue = [];
  const sockets = new Set();
  const server = createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      let body = raw;
      try { body = JSON.parse(raw); } catch { /* keep the text */ }
      requests.push({
        method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, body,
      });
      const want = serverOpts.requireVersion;
      if (want && req.httpVersion !== want) {
        res.writeHead(505, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          error: { message: `fake: wants HTTP/${want}, got HTTP/${req.httpVersion}`, type: 'invalid_request_error' },
        }));
        return;
      }
      const scripted = queue.shift();
      if (scripted) {
        res.writeHead(scripted.status, {
          'content-type': 'application/json',
          ...(scripted.headers ?? {}),
        });
        res.end(JSON.stringify(scripted.body ?? {}));
        return;
      }
      handler(req, body, res);
    });
  }, serverOpts);
  // Every TCP connection, so close() can end them all (an HTTP/2 server
  // has no closeAllConnections, and its sessions would keep it open).
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `${serverOpts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    script(list) { queue.push(...list); },
    reset() { requests.length = 0; queue.length = 0; },
    close() {
      for (const sock of sockets) sock.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function notFound(res, what) {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: `fake: no route ${what}`, type: 'invalid_request_error' } }));
}

// (No Connection header: HTTP/2 forbids it, and HTTP/1.1 keeps the
// connection open without one.)
function sse(res) {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
  });
}

// True when the request offers a function tool and the last user message
// mentions it: the fake then calls it instead of answering in text.
function wantsTool(body) {
  if (!Array.isArray(body.tools) || body.tools.length === 0) return null;
  const tool = body.tools[0];
  return tool.function?.name ?? tool.name ?? null;
}

// ---- OpenAI Chat Completions ----------------------------------------

function openaiHandler(req, body, res) {
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    notFound(res, `${req.method} ${req.url}`);
    return;
  }
  const id = 'chatcmpl-fake' + Math.random().toString(36).slice(2, 10);
  const created = 1700000000;
  const model = body.model;
  const tool = wantsTool(body);

  if (!body.stream) {
    const message = tool
      ? {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_fake1', type: 'function', function: { name: tool, arguments: TOOL_ARGS } }],
        }
      : { role: 'assistant', content: OPENAI_TEXT.join('') };
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-ratelimit-remaining-requests': '99',
    });
    res.end(JSON.stringify({
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: tool ? 'tool_calls' : 'stop' }],
      usage: OPENAI_USAGE,
    }));
    return;
  }

  sse(res);
  const chunk = (choices, extra = {}) =>
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`);
  chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
  if (tool) {
    chunk([{
      index: 0,
      delta: { tool_calls: [{ index: 0, id: 'call_fake1', type: 'function', function: { name: tool, arguments: '' } }] },
      finish_reason: null,
    }]);
    // The arguments in several pieces, split inside tokens on purpose.
    for (const piece of ['{"city":"Pa', 'ris","days"', ':3,"metric":', 'true}']) {
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null }]);
    }
    chunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]);
  } else {
    for (const piece of OPENAI_TEXT) {
      chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
    }
    chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]);
  }
  if (body.stream_options?.include_usage) chunk([], { usage: OPENAI_USAGE });
  res.end('data: [DONE]\n\n');
}

// server: see startFake ({tls: {key, cert}, http2, requireVersion}).
export function startOpenAIFake(server = {}) {
  return startFake(openaiHandler, server);
}

// ---- Anthropic Messages ---------------------------------------------

// What the fake's count_tokens answers, whatever the input: a number no
// local estimate would give for the tests' short inputs.
export const ANTHROPIC_COUNT = 4321;

// The Anthropic fake's tool call: a short text block, then a tool_use
// block (index 1, so index mapping is exercised) whose input streams as
// input_json_delta pieces split inside tokens.
export const ANTHROPIC_TOOL_ID = 'toolu_fake1';
export const ANTHROPIC_TOOL_TEXT = 'Let me check.';
const ANTHROPIC_TOOL_PIECES = ['{"city":"Pa', 'ris","days"', ':3,"metric":', 'true}'];

// Unlike the OpenAI fake, a model that has its answer does not call again:
// the tool is called when tools are offered and the last user message
// carries no tool_result yet. Returns the first tool's name or null.
function anthropicWantsTool(body) {
  const tool = wantsTool(body);
  const last = Array.isArray(body.messages) ? body.messages[body.messages.length - 1] : null;
  const answered = Array.isArray(last?.content) && last.content.some((b) => b.type === 'tool_result');
  return answered ? null : tool;
}

// An Anthropic SSE answer: message_start (input usage), what blocks(event)
// writes, message_delta (stop reason, output usage), message_stop.
function anthropicStream(res, { id, model, usage, stopReason }, blocks) {
  sse(res);
  const event = (name, data) => res.write(`event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`);
  event('message_start', {
    message: {
      id, type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null,
      usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
    },
  });
  blocks(event);
  event('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  });
  event('message_stop', {});
  res.end();
}

function anthropicToolUse(res, body, id, model, tool) {
  const usage = { input_tokens: ANTHROPIC_USAGE.input_tokens, output_tokens: 31 };
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      id, type: 'message', role: 'assistant', model,
      content: [
        { type: 'text', text: ANTHROPIC_TOOL_TEXT },
        { type: 'tool_use', id: ANTHROPIC_TOOL_ID, name: tool, input: JSON.parse(TOOL_ARGS) },
      ],
      stop_reason: 'tool_use', stop_sequence: null, usage,
    }));
    return;
  }
  anthropicStream(res, { id, model, usage, stopReason: 'tool_use' }, (event) => {
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ANTHROPIC_TOOL_TEXT } });
    event('content_block_stop', { index: 0 });
    event('content_block_start', {
      index: 1, content_block: { type: 'tool_use', id: ANTHROPIC_TOOL_ID, name: tool, input: {} },
    });
    for (const partial_json of ANTHROPIC_TOOL_PIECES) {
      event('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json } });
    }
    event('content_block_stop', { index: 1 });
  });
}

function anthropicHandler(req, body, res) {
  if (req.method === 'POST' && req.url === '/v1/messages/count_tokens') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ input_tokens: ANTHROPIC_COUNT }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/messages') {
    notFound(res, `${req.method} ${req.url}`);
    return;
  }
  const id = 'msg_fake' + Math.random().toString(36).slice(2, 10);
  const model = body.model;
  const tool = anthropicWantsTool(body);
  if (tool) {
    anthropicToolUse(res, body, id, model, tool);
    return;
  }

  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      id, type: 'message', role: 'assistant', model,
      content: [{ type: 'text', text: ANTHROPIC_TEXT.join('') }],
      stop_reason: 'end_turn', stop_sequence: null,
      usage: ANTHROPIC_USAGE,
    }));
    return;
  }

  anthropicStream(res, { id, model, usage: ANTHROPIC_USAGE, stopReason: 'end_turn' }, (event) => {
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    event('ping', {});
    for (const text of ANTHROPIC_TEXT) {
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
    }
    event('content_block_stop', { index: 0 });
  });
}

export function startAnthropicFake() {
  return startFake(anthropicHandler);
}
