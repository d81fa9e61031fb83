// certs.mjs: a throwaway certificate authority and a server certificate
// for 127.0.0.1 / localhost, made at test time with the `openssl` CLI
// (Debian package openssl, listed in scripts/install-deps.sh) in a fresh
// temp folder. Node has no API that issues X.509 certificates.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// What OpenSSL 3's verification (curl's) wants: CA:TRUE with keyCertSign
// on the CA; the server's names in subjectAltName (the common name is not
// looked at).
const CA_EXT = [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
];
const SERVER_EXT = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1, DNS:localhost',
  'authorityKeyIdentifier = keyid',
].join('\n');
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

// A CA named `name` and a server certificate it signed, valid one day.
// Returns {dir, caFile, ca, key, cert} (the last three as PEM text).
export function makeCerts(name = 'polyglot e2e test CA') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-e2e-tls-'));
  fs.writeFileSync(path.join(dir, 'server.ext'), SERVER_EXT + '\n');
  openssl(['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '1', '-subj', `/CN=${name}`, '-config', '/dev/null',
    ...CA_EXT.flatMap((e) => ['-addext', e])], dir);
  openssl(['req', '-new', ...EC_KEY, '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1', '-config', '/dev/null'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem'], dir);
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    ca: read('ca.pem'),
    key: read('server.key'),
    cert: read('server.pem'),
  };
}

export function removeCerts(c) {
  if (c) fs.rmSync(c.dir, { recursive: true, force: true });
}
