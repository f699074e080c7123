/**
 * Unit tests for team authentication (daemon/team/auth.ts): key derivation, proofs, constant-time
 * comparison, the nonce cache, and reading the secret file (temp files).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NonceCache, clientProof, deriveKey, newNonce, proofEquals, readSecretFile, serverProof } from '../../daemon/team/auth';

const SECRET = Buffer.from('correct horse battery staple 0123456789');

describe('team auth: keys and proofs', () => {
  const key = deriveKey(SECRET, 'acme');
  const cn = newNonce();
  const sn = newNonce();

  it('derives 32 bytes with HKDF-SHA256 (salt strata-team-v1, info team)', () => {
    assert.equal(key.length, 32);
    const expected = Buffer.from(crypto.hkdfSync('sha256', SECRET, 'strata-team-v1', 'acme', 32));
    assert.ok(key.equals(expected));
    assert.ok(deriveKey(SECRET, 'acme').equals(key), 'deterministic');
    assert.ok(!deriveKey(SECRET, 'acme2').equals(key), 'bound to the team');
    assert.ok(!deriveKey(Buffer.from('another secret entirely, 1234567'), 'acme').equals(key));
    assert.throws(() => deriveKey(Buffer.alloc(0), 'acme'), /empty/);
  });

  it('makes fresh 64-hex nonces', () => {
    const ns = new Set(Array.from({ length: 100 }, newNonce));
    assert.equal(ns.size, 100);
    for (const n of ns) assert.match(n, /^[0-9a-f]{64}$/);
  });

  it('a proof verifies with the same key and inputs', () => {
    const sp = serverProof(key, 'acme', cn, sn, 'srv', 'cli');
    assert.match(sp, /^[0-9a-f]{64}$/);
    assert.ok(proofEquals(sp, serverProof(deriveKey(SECRET, 'acme'), 'acme', cn, sn, 'srv', 'cli')));
    const cp = clientProof(key, 'acme', sn, cn, 'cli', 'srv');
    assert.ok(proofEquals(cp, clientProof(deriveKey(SECRET, 'acme'), 'acme', sn, cn, 'cli', 'srv')));
  });

  it('fails with another secret, team, nonce or agent id', () => {
    const sp = serverProof(key, 'acme', cn, sn, 'srv', 'cli');
    const other = deriveKey(Buffer.from('not the team secret at all!!!!!'), 'acme');
    assert.ok(!proofEquals(sp, serverProof(other, 'acme', cn, sn, 'srv', 'cli')), 'secret');
    assert.ok(!proofEquals(sp, serverProof(deriveKey(SECRET, 'beta'), 'beta', cn, sn, 'srv', 'cli')), 'team (and key)');
    assert.ok(!proofEquals(sp, serverProof(key, 'beta', cn, sn, 'srv', 'cli')), 'team (same key)');
    assert.ok(!proofEquals(sp, serverProof(key, 'acme', newNonce(), sn, 'srv', 'cli')), 'client nonce');
    assert.ok(!proofEquals(sp, serverProof(key, 'acme', cn, newNonce(), 'srv', 'cli')), 'server nonce');
    assert.ok(!proofEquals(sp, serverProof(key, 'acme', sn, cn, 'srv', 'cli')), 'nonces swapped');
    assert.ok(!proofEquals(sp, serverProof(key, 'acme', cn, sn, 'srv2', 'cli')), 'server id');
    assert.ok(!proofEquals(sp, serverProof(key, 'acme', cn, sn, 'srv', 'cli2')), 'client id');
  });

  it('a server proof never validates as a client proof (no reflection)', () => {
    // the same positional values in both: only the role differs
    assert.ok(!proofEquals(serverProof(key, 'acme', cn, sn, 'x', 'y'), clientProof(key, 'acme', cn, sn, 'x', 'y')));
    // what a reflecting attacker would try: hand the server's own proof back as the client's
    const sp = serverProof(key, 'acme', cn, sn, 'srv', 'cli');
    assert.ok(!proofEquals(sp, clientProof(key, 'acme', sn, cn, 'cli', 'srv')));
    // a server talking to itself (equal ids, equal nonces) still gets different proofs per role
    assert.ok(!proofEquals(serverProof(key, 'acme', cn, cn, 'a', 'a'), clientProof(key, 'acme', cn, cn, 'a', 'a')));
  });

  it('encodes fields unambiguously (moving a boundary changes the proof)', () => {
    assert.ok(!proofEquals(serverProof(key, 'acme', 'ab', 'c', 's', 'c'), serverProof(key, 'acme', 'a', 'bc', 's', 'c')));
    assert.ok(!proofEquals(serverProof(key, 'ac', 'me', 'x', 's', 'c'), serverProof(key, 'acm', 'e', 'x', 's', 'c')));
  });
});

describe('team auth: proofEquals', () => {
  const a = 'ab'.repeat(32);
  it('is true for equal hex strings, false for different ones', () => {
    assert.equal(proofEquals(a, 'ab'.repeat(32)), true);
    assert.equal(proofEquals(a, 'ab'.repeat(31) + 'ac'), false);
    assert.equal(proofEquals(a, 'ac' + 'ab'.repeat(31)), false);
  });
  it('is false on a length mismatch, non-hex, odd length, empty or non-string input', () => {
    assert.equal(proofEquals(a, a.slice(0, 62)), false);
    assert.equal(proofEquals(a.slice(0, 62), a), false);
    assert.equal(proofEquals(a + 'ab', a), false);
    assert.equal(proofEquals('zz'.repeat(32), 'zz'.repeat(32)), false, 'equal but not hex');
    assert.equal(proofEquals('AB'.repeat(32), 'AB'.repeat(32)), false, 'uppercase is not what proofs look like');
    assert.equal(proofEquals('abc', 'abc'), false, 'odd length');
    assert.equal(proofEquals('', ''), false);
    assert.equal(proofEquals(undefined as unknown as string, a), false);
    assert.equal(proofEquals(a, 42 as unknown as string), false);
  });
  it('compares with crypto.timingSafeEqual', () => {
    const original = crypto.timingSafeEqual;
    let calls = 0;
    (crypto as { timingSafeEqual: typeof original }).timingSafeEqual = (x, y) => {
      calls++;
      return original(x, y);
    };
    try {
      proofEquals(a, a);
      proofEquals(a, 'cd'.repeat(32));
    } finally {
      (crypto as { timingSafeEqual: typeof original }).timingSafeEqual = original;
    }
    assert.equal(calls, 2);
  });
});

describe('team auth: NonceCache', () => {
  it('detects a replay within the ttl', () => {
    const c = new NonceCache(1000, 10, () => 0);
    assert.equal(c.seen('n1'), false);
    assert.equal(c.seen('n1'), true);
    assert.equal(c.seen('n2'), false);
  });

  it('forgets a nonce after the ttl', () => {
    let t = 0;
    const c = new NonceCache(1000, 10, () => t);
    c.seen('n1');
    t = 999;
    assert.equal(c.seen('n1'), true);
    t = 1000;
    assert.equal(c.seen('n1'), false, 'expired: recorded afresh');
    t = 1500;
    assert.equal(c.seen('n1'), true);
  });

  it('does not keep an expired nonce alive behind a younger entry after the clock stepped back', () => {
    let t = 1000;
    const c = new NonceCache(1000, 10, () => t);
    c.seen('first'); // expires at 2000
    t = 0;
    c.seen('second'); // expires at 1000, queued behind 'first'
    t = 1500;
    assert.equal(c.seen('second'), false);
    assert.equal(c.seen('first'), true);
  });

  it('purges expired nonces so memory follows the ttl', () => {
    let t = 0;
    const c = new NonceCache(100, 1000, () => t);
    for (let i = 0; i < 50; i++) c.seen(`a${i}`);
    t = 200;
    c.seen('b');
    assert.equal(c.size, 1);
  });

  it('holds at most max nonces, forgetting the oldest', () => {
    const c = new NonceCache(1_000_000, 3, () => 0);
    for (const n of ['n1', 'n2', 'n3', 'n4']) assert.equal(c.seen(n), false);
    assert.equal(c.size, 3);
    assert.equal(c.seen('n4'), true);
    assert.equal(c.seen('n2'), true);
    assert.equal(c.seen('n1'), false, 'evicted as the oldest');
    for (let i = 0; i < 10_000; i++) c.seen(`x${i}`);
    assert.equal(c.size, 3);
  });

  it('refuses nonsense limits', () => {
    assert.throws(() => new NonceCache(0, 10), /ttlMs/);
    assert.throws(() => new NonceCache(10, 0), /max/);
  });
});

describe('team auth: readSecretFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-secret-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const write = (name: string, content: string | Buffer, mode: number): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, content);
    fs.chmodSync(f, mode);
    return f;
  };

  it('reads a 0600 file, dropping one trailing newline', () => {
    const f = write('s', 'abcdefghijklmnop-secret\n', 0o600);
    assert.equal(readSecretFile(f).toString(), 'abcdefghijklmnop-secret');
    const g = write('t', 'abcdefghijklmnop-secret\r\n', 0o400);
    assert.equal(readSecretFile(g).toString(), 'abcdefghijklmnop-secret');
    const bin = crypto.randomBytes(32);
    assert.ok(readSecretFile(write('b', bin, 0o600)).equals(bin[31] === 0x0a ? bin.subarray(0, 31) : bin));
  });

  it('refuses a file readable by group or others, naming the file and chmod 600', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o601]) {
      const f = write(`m${mode.toString(8)}`, 'abcdefghijklmnop-secret', mode);
      assert.throws(
        () => readSecretFile(f),
        (e: Error) => e.message.includes(f) && e.message.includes('chmod 600') && e.message.includes(`0${mode.toString(8)}`),
        mode.toString(8),
      );
    }
  });

  it('refuses an empty or short secret', () => {
    assert.throws(() => readSecretFile(write('e', '', 0o600)), /is empty/);
    assert.throws(() => readSecretFile(write('n', '\n', 0o600)), /is empty/);
    assert.throws(() => readSecretFile(write('s', '0123456789abcde\n', 0o600)), /too short \(15 bytes\)/);
    assert.equal(readSecretFile(write('ok', '0123456789abcdef\n', 0o600)).length, 16);
  });

  it('refuses a missing file or a directory with the path in the message', () => {
    const missing = path.join(dir, 'nope');
    assert.throws(
      () => readSecretFile(missing),
      (e: Error) => e.message.includes(missing),
    );
    const d = path.join(dir, 'd');
    fs.mkdirSync(d, { mode: 0o700 });
    assert.throws(() => readSecretFile(d), /not a regular file/);
  });
});
