// helpers.mjs: starts the real polyglot-gw binary for the e2e tests.
// Picks a free port (the binary cannot report an ephemeral one), writes a
// temp config, waits until GET /health answers, and stops it with SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// The binary under test: $POLYGLOT_GW, else ../../build/polyglot-gw.
export const GW = process.env.POLYGLOT_GW
  ? path.resolve(process.env.POLYGLOT_GW)
  : path.resolve(here, '../../build/polyglot-gw');

// A port that was free a moment ago: bind :0, read it, close.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Temp dirs of this test process, removed when it exits (a gateway may
// still be reading its config while a test ends, so not before).
const tempDirs = [];
process.on('exit', () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Writes text to a fresh temp file; returns its path.
export function writeTemp(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-e2e-'));
  tempDirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

// Starts the gateway with configText on a free port and resolves once
// /health says ok. Returns {proc, port, baseURL, output(), stop()}.
export async function startGateway(configText, { timeoutMs = 10000 } = {}) {
  const port = await freePort();
  const file = writeTemp('config.yaml', configText);
  const proc = spawn(GW, ['--config', file, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let early = null;
  exited.then((r) => { early = r; });

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (early) {
      throw new Error(`polyglot-gw exited early (${JSON.stringify(early)}): ${out}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      const body = await res.json();
      if (res.status === 200 && body.status === 'ok') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`polyglot-gw did not become healthy on ${port}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    proc,
    port,
    baseURL: `http://127.0.0.1:${port}/openai/v1`,
    output: () => out,
    // SIGTERM, then the exit status (SIGKILL after killAfterMs).
    async stop(killAfterMs = 10000) {
      if (early) return early;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

// Reads an OpenAI chat stream to its end: {content, chunks, usage,
// usageChunks, finish, ids}. Every chunk must be a chat.completion.chunk.
export async function drainChat(stream) {
  let content = '';
  let usage = null;
  let finish = null;
  let chunks = 0;
  let usageChunks = 0;
  const ids = new Set();
  for await (const chunk of stream) {
    chunks++;
    ids.add(chunk.id);
    if (chunk.object !== 'chat.completion.chunk') {
      throw new Error(`not a chat.completion.chunk: ${JSON.stringify(chunk)}`);
    }
    if (chunk.usage) { usage = chunk.usage; usageChunks++; }
    if (chunk.choices.length === 0) continue;
    content += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  return { content, usage, usageChunks, finish, chunks, ids };
}
