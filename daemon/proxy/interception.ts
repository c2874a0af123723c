/**
 * The certificate authority the egress proxy signs with when it must see inside a TLS
 * connection: only for a host a session's vault credential is bound to, so the credential
 * can be added there (everything else is tunnelled untouched). The CA's key lives in the
 * daemon's data dir, which no sandbox sees; its certificate is trusted inside the
 * sandboxes of sessions with credentials (see sandbox/host/proxy-env.ts).
 *
 * node:crypto makes the keys; node-forge builds and signs the certificates, which
 * node:crypto cannot (it reads X.509, it does not issue it).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import forge from 'node-forge';

const DAY = 24 * 3600 * 1000;
/** Leaf certificates are made per host and kept for the daemon's life, at most this many. */
const MAX_LEAVES = 1000;

function rsaKeys(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

function serial(): string {
  // Positive: the first bit clear.
  return `0${randomBytes(15).toString('hex')}`;
}

export class InterceptionCa {
  private ca: { cert: forge.pki.Certificate; certPem: string; key: forge.pki.rsa.PrivateKey } | undefined;
  /** One key for every leaf: made once, kept in memory only. */
  private leafKeys: { privateKey: string; publicKey: forge.pki.PublicKey } | undefined;
  private readonly leaves = new Map<string, SecureContext>();

  constructor(private readonly dir: string) {}

  /** The CA certificate (PEM), made on first use and kept in the data dir. */
  certificate(): string {
    return this.load().certPem;
  }

  /** A TLS context presenting a certificate for `host`, signed by the CA. */
  contextFor(host: string): SecureContext {
    let context = this.leaves.get(host);
    if (context) return context;
    const ca = this.load();
    this.leafKeys ??= (() => {
      const keys = rsaKeys();
      return { privateKey: keys.privateKey, publicKey: forge.pki.publicKeyFromPem(keys.publicKey) };
    })();
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.leafKeys.publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() - DAY);
    cert.validity.notAfter = new Date(Date.now() + 30 * DAY);
    cert.setSubject([{ name: 'commonName', value: host.slice(0, 64) }]);
    cert.setIssuer(ca.cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }] },
    ]);
    cert.sign(ca.key, forge.md.sha256.create());
    context = createSecureContext({ key: this.leafKeys.privateKey, cert: forge.pki.certificateToPem(cert) });
    if (this.leaves.size >= MAX_LEAVES) this.leaves.delete(this.leaves.keys().next().value!);
    this.leaves.set(host, context);
    return context;
  }

  private load(): NonNullable<InterceptionCa['ca']> {
    if (this.ca) return this.ca;
    const keyFile = join(this.dir, 'ca.key');
    const certFile = join(this.dir, 'ca.pem');
    if (!existsSync(keyFile) || !existsSync(certFile)) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const keys = rsaKeys();
      const cert = forge.pki.createCertificate();
      cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
      cert.serialNumber = serial();
      cert.validity.notBefore = new Date(Date.now() - DAY);
      cert.validity.notAfter = new Date(Date.now() + 3650 * DAY);
      const name = [{ name: 'commonName', value: `agentd egress proxy CA ${randomBytes(4).toString('hex')}` }];
      cert.setSubject(name);
      cert.setIssuer(name);
      cert.setExtensions([
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ]);
      cert.sign(forge.pki.privateKeyFromPem(keys.privateKey), forge.md.sha256.create());
      writeFileSync(keyFile, keys.privateKey, { mode: 0o600 });
      chmodSync(keyFile, 0o600);
      writeFileSync(certFile, forge.pki.certificateToPem(cert), { mode: 0o644 });
    }
    const certPem = readFileSync(certFile, 'utf8');
    this.ca = { cert: forge.pki.certificateFromPem(certPem), certPem, key: forge.pki.privateKeyFromPem(readFileSync(keyFile, "utf8")) as forge.pki.rsa.PrivateKey };
    return this.ca;
  }
}
