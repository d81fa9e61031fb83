// tls.test.mjs: https upstreams, the libcurl path of lib/upstream. The
// official `openai` SDK talks to the real polyglot-gw binary, whose
// `openai-compatible` providers point at fake OpenAI upstreams in this
// process serving https with a certificate from a CA made at test time
// (certs.mjs, openssl CLI): one over HTTP/2 (node's http2 secure server,
// HTTP/1.1 allowed; the fake refuses any request that is not HTTP/2), one
// HTTP/1.1-only. The gateway trusts that CA through the provider's
// `tls.ca_file` alone; a provider without it (system CA store) and one
// trusting another CA must fail with a 502 naming the certificate, and the
// gateway's one worker keeps serving afterwards.
//   POLYGLOT_GW=build/polyglot-gw node --test tests/e2e/
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { makeCerts, removeCerts } from './certs.mjs';
import { startGateway, drainChat } from './helpers.mjs';
import {
  OPENAI_TEXT, OPENAI_USAGE, TOOL_ARGS, WEATHER_TOOL, startOpenAIFake,
} from './fake_upstream.mjs';

// workers: 1, so "keeps serving" is about the very worker that failed.
function config({ h2URL, h1URL, caFile, otherCaFile }) {
  const common = `
    api_key: sk-fake-tls
    max_retries: 0
    timeouts: {connect: 5s, first_byte: 5s, idle: 5s, total: 20s}`;
  return `
server: {host: 127.0.0.1, port: 8080, workers: 1, shutdown_timeout: 5s}
providers:
  - name: h2
    type: openai-compatible
    base_url: ${h2URL}/v1
    tls: {ca_file: ${caFile}}${common}
  - name: h1
    type: openai-compatible
    base_url: ${h1URL}/v1
    tls: {ca_file: ${caFile}}${common}
  - name: untrusted
    type: openai-compatible
    base_url: ${h2URL}/v1${common}
  - name: wrong-ca
    type: openai-compatible
    base_url: ${h1URL}/v1
    tls: {ca_file: ${otherCaFile}}${common}
routing:
  rules:
    - {model_prefix: h2-, provider: h2}
    - {model_prefix: h1-, provider: h1}
    - {model_prefix: untrusted-, provider: untrusted}
    - {model_prefix: wrong-ca-, provider: wrong-ca}
apps:
  - {name: openai-api, frontdoor: openai, path: /openai}
logging: {level: warn, format: json}
`;
}

describe('openai SDK through polyglot-gw to https upstreams', () => {
  let certs;
  let otherCerts;
  let h2;
  let h1;
  let gw;
  let client;

  before(async () => {
    certs = makeCerts();
    otherCerts = makeCerts('another e2e CA');
    const tls = { key: certs.key, cert: certs.cert };
    h2 = await startOpenAIFake({ tls, http2: true, requireVersion: '2.0' });
    h1 = await startOpenAIFake({ tls, requireVersion: '1.1' });
    gw = await startGateway(config({
      h2URL: h2.url, h1URL: h1.url, caFile: certs.caFile, otherCaFile: otherCerts.caFile,
    }));
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0, timeout: 15000 });
  });

  after(async () => {
    if (gw) {
      const r = await gw.stop();
      assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}: ${gw.output()}`);
    }
    if (h2) await h2.close();
    if (h1) await h1.close();
    removeCerts(certs);
    removeCerts(otherCerts);
  });

  beforeEach(() => {
    h2.reset();
    h1.reset();
  });

  test('HTTP/2 over TLS: create (non-stream)', async () => {
    assert.ok(h2.url.startsWith('https://127.0.0.1:'));
    const res = await client.chat.completions.create({
      model: 'h2-gpt',
      messages: [{ role: 'user', content: 'hello over h2' }],
    });
    assert.equal(res.choices[0].message.content, OPENAI_TEXT.join(''));
    assert.equal(res.choices[0].finish_reason, 'stop');
    assert.equal(res.usage.total_tokens, OPENAI_USAGE.total_tokens);
    assert.equal(h2.requests.length, 1);
    const got = h2.requests[0];
    assert.equal(got.httpVersion, '2.0');
    assert.equal(got.url, '/v1/chat/completions');
    assert.equal(got.headers.authorization, 'Bearer sk-fake-tls');
    assert.equal(got.body.model, 'h2-gpt');
  });

  test('HTTP/2 over TLS: stream with usage, and a streamed tool call', async () => {
    const stream = await client.chat.completions.create({
      model: 'h2-gpt',
      messages: [{ role: 'user', content: 'stream over h2' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const r = await drainChat(stream);
    assert.equal(r.content, OPENAI_TEXT.join(''));
    assert.equal(r.finish, 'stop');
    assert.equal(r.usage.completion_tokens, OPENAI_USAGE.completion_tokens);

    const tools = client.chat.completions.stream({
      model: 'h2-gpt',
      messages: [{ role: 'user', content: 'call get_weather' }],
      tools: [WEATHER_TOOL],
    });
    const final = await tools.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), JSON.parse(TOOL_ARGS));

    assert.equal(h2.requests.length, 2);
    for (const got of h2.requests) {
      assert.equal(got.httpVersion, '2.0');
      assert.equal(got.body.stream, true);
    }
  });

  test('HTTP/1.1 over TLS: create and stream', async () => {
    const res = await client.chat.completions.create({
      model: 'h1-gpt',
      messages: [{ role: 'user', content: 'hello over https/1.1' }],
    });
    assert.equal(res.choices[0].message.content, OPENAI_TEXT.join(''));
    const r = await drainChat(await client.chat.completions.create({
      model: 'h1-gpt',
      messages: [{ role: 'user', content: 'stream over https/1.1' }],
      stream: true,
    }));
    assert.equal(r.content, OPENAI_TEXT.join(''));
    assert.equal(r.finish, 'stop');
    assert.equal(r.usage, null, 'no usage chunk: the client did not ask');
    assert.equal(h1.requests.length, 2);
    for (const got of h1.requests) assert.equal(got.httpVersion, '1.1');
  });

  for (const [model, why] of [
    ['untrusted-gpt', 'no tls.ca_file: the system CA store does not know the test CA'],
    ['wrong-ca-gpt', 'tls.ca_file names another CA'],
  ]) {
    test(`untrusted certificate (${why}): 502 naming the certificate, then the worker still serves`, async () => {
      for (const stream of [false, true]) {
        await assert.rejects(
          client.chat.completions.create({
            model,
            messages: [{ role: 'user', content: 'must not arrive' }],
            stream,
          }),
          (err) => {
            assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
            assert.equal(err.status, 502);
            assert.equal(err.type, 'server_error');
            assert.match(err.message, /could not be reached/);
            assert.match(err.message, /certificate/i);
            assert.doesNotMatch(err.message, /sk-fake-tls/);
            return true;
          },
        );
      }
      // The TLS handshake failed: no request reached either fake.
      assert.equal(h2.requests.length + h1.requests.length, 0);

      const res = await client.chat.completions.create({
        model: 'h2-gpt',
        messages: [{ role: 'user', content: 'still there?' }],
      });
      assert.equal(res.choices[0].message.content, OPENAI_TEXT.join(''));
      assert.equal(h2.requests.length, 1);
    });
  }
});
