// cli.test.mjs: the polyglot-gw command line: --check on a bad and a good
// config, and hash-key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';

import { GW, writeTemp } from './helpers.mjs';

const GOOD = `
server: {host: 127.0.0.1, port: 8080}
providers:
  - {name: mock, type: mock}
routing: {default_provider: mock}
apps:
  - {name: openai-api, frontdoor: openai, path: /openai, default_model: mock-echo}
`;

// Two problems: a misspelt key (with a suggestion) and a bad duration.
const BAD = `
server: {host: 127.0.0.1, port: 8080, header_timeout: soon}
providers:
  - {name: mock, type: mock}
routing: {default_provider: mock}
apps:
  - {name: openai-api, fronddoor: openai, path: /openai}
`;

function run(args) {
  return spawnSync(GW, args, { encoding: 'utf8', timeout: 10000 });
}

test('--check exits 1 and names every problem of a bad config', () => {
  const file = writeTemp('bad.yaml', BAD);
  const r = run(['--check', '--config', file]);
  assert.equal(r.error, undefined, String(r.error));
  const all = r.stdout + r.stderr;
  assert.equal(r.status, 1, all);
  assert.match(all, /apps\[0\]\.fronddoor/);
  assert.match(all, /frontdoor/);
  assert.match(all, /server\.header_timeout/);
});

test('--check exits 0 for a good config', () => {
  const file = writeTemp('good.yaml', GOOD);
  const r = run(['--check', '--config', file]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('--check exits 1 for a missing file', () => {
  const r = run(['--check', '--config', '/nonexistent/polyglot.yaml']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /nonexistent/);
});

test('hash-key prints the SHA-256 hex of its argument', () => {
  const r = run(['hash-key', 'abc']);
  assert.equal(r.status, 0, r.stderr);
  const want = crypto.createHash('sha256').update('abc').digest('hex');
  assert.equal(want, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(r.stdout.trim(), want);
});
