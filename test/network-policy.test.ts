/** The network policy as a pure function: patterns, precedence, presets, exact names, and which addresses count as internal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideHost, isInternalAddress, namedExactly } from '../daemon/proxy/network-policy.js';
import { NetworkPolicy, parseHostPattern as parsePattern } from '../protocol/index.js';

describe('network policy', () => {
  it('reads host, *.suffix, host:port, host:* and [v6]:port, and refuses anything else', () => {
    assert.deepEqual(parsePattern('GitHub.com.'), { host: 'github.com', port: undefined });
    assert.deepEqual(parsePattern('*.npmjs.org'), { host: '*.npmjs.org', port: undefined });
    assert.deepEqual(parsePattern('localhost:8080'), { host: 'localhost', port: 8080 });
    assert.deepEqual(parsePattern('example.com:*'), { host: 'example.com', port: '*' });
    assert.deepEqual(parsePattern('[::1]:443'), { host: '::1', port: 443 });
    for (const bad of ['a.*.com', 'exa*mple.com', 'host:0', 'host:70000', 'http://x.com', 'github.com/me', 'me@github.com', 'a b', '']) {
      assert.equal(parsePattern(bad), undefined, bad);
      // The wire contract refuses it where it is given: a deny entry that matched nothing would let the host through.
      const parsed = NetworkPolicy.safeParse({ default: 'allow', deny: [bad] });
      assert.ok(!parsed.success && parsed.error.issues[0]!.message.startsWith('not a host pattern'), bad);
    }
  });

  it('lets deny win, allows only 80 and 443 for a pattern without a port, and matches subdomains only with *.', () => {
    const policy = { default: 'ask' as const, allow: ['github.com', '*.npmjs.org', 'api.example.com:8443'], deny: ['gist.github.com', '*.evil.npmjs.org'] };
    const verdict = (host: string, port: number) => decideHost(policy, [], [], host, port).decision;
    assert.equal(verdict('github.com', 443), 'allow');
    assert.equal(verdict('github.com', 22), 'ask');
    assert.equal(verdict('registry.npmjs.org', 443), 'allow');
    assert.equal(verdict('npmjs.org', 443), 'ask', '*. is subdomains, not the name itself');
    assert.equal(verdict('x.evil.npmjs.org', 443), 'deny');
    assert.equal(verdict('gist.github.com', 443), 'deny');
    assert.equal(verdict('api.example.com', 8443), 'allow');
    assert.equal(verdict('api.example.com', 443), 'ask');
    assert.equal(verdict('notgithub.com', 443), 'ask');
    assert.equal(decideHost({ default: 'deny', deny: ['*'] }, ['example.com:443'], ['example.com:443'], 'example.com', 443).decision, 'deny', 'deny wins over answers and bindings');
  });

  it('takes presets by name and hosts answers added, saying which rule decided', () => {
    const preset = decideHost({ default: 'deny', presets: ['package-registries'] }, [], [], 'registry.npmjs.org', 443);
    assert.deepEqual(preset, { decision: 'allow', reason: 'preset package-registries ("registry.npmjs.org")' });
    const answered = decideHost({ default: 'deny' }, ['example.org:443'], [], 'example.org', 443);
    assert.deepEqual(answered, { decision: 'allow', reason: 'answered allow always ("example.org:443")', answered: true });
    assert.equal(decideHost({ default: 'deny' }, [], [], 'example.org', 443).reason, 'default deny');
  });

  it('lets internal addresses through only for a host named exactly, a binding, or an address literal a person allowed', () => {
    const policy = { default: 'allow' as const, allow: ['localhost:8080', '*.internal'] };
    const verdict = { decision: 'allow' as const, reason: '' };
    assert.equal(namedExactly(policy, [], verdict, 'localhost', 8080), true);
    assert.equal(namedExactly(policy, [], verdict, 'localhost', 8081), false);
    assert.equal(namedExactly(policy, [], verdict, 'db.internal', 443), false, 'a wildcard never names a host exactly');
    assert.equal(namedExactly(policy, ['127.0.0.1:9000'], verdict, '127.0.0.1', 9000), true);
    assert.equal(namedExactly(policy, [], { ...verdict, answered: true }, '10.0.0.5', 80), true);
    assert.equal(namedExactly(policy, [], { ...verdict, answered: true }, 'example.com', 80), false, 'an answer for a name does not cover what it resolves to');
  });

  it('counts loopback, private, link-local, CGNAT, multicast, mapped and NAT64 addresses as internal, and public ones not', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '0.0.0.0', '10.1.2.3', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254', '224.0.0.1', '255.255.255.255', '::', '::1', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', 'not-an-address']) {
      assert.equal(isInternalAddress(address), true, address);
    }
    for (const address of ['203.0.113.80', '8.8.8.8', '140.82.112.3', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(isInternalAddress(address), false, address);
  });
});
