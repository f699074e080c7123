/**
 * Mutual challenge-response from a shared team secret. Both sides derive a key from the secret and
 * prove knowledge of it with an HMAC over both fresh nonces, both agent ids, the team and the role;
 * the secret itself never travels. The role is part of the MAC, so a server proof can never be
 * replayed as a client proof (reflection).
 *
 * Handshake (see protocol/team.ts frames):
 *   client → hello {team, agent: clientId, nonce: clientNonce}
 *   server → challenge {team, agent: serverId, nonce: serverNonce, proof: serverProof(...)}
 *   client checks the server proof, then → auth {proof: clientProof(...)}
 *   server checks the client proof → welcome
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

const SALT = 'strata-team-v1';
const DOMAIN = 'strata-team-v1/proof';

/** HKDF-SHA256(secret, salt "strata-team-v1", info team) → 32 bytes. */
export function deriveKey(secret: Buffer, team: string): Buffer {
  if (!Buffer.isBuffer(secret) || secret.length === 0) throw new Error('team secret is empty');
  return Buffer.from(crypto.hkdfSync('sha256', secret, SALT, Buffer.from(team, 'utf8'), 32));
}

/** 32 random bytes as 64 lowercase hex characters. */
export function newNonce(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** HMAC-SHA256 over a domain tag and length-prefixed fields, so no two field lists encode alike. */
function mac(key: Buffer, fields: string[]): string {
  const h = crypto.createHmac('sha256', key);
  const put = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len);
    h.update(b);
  };
  put(DOMAIN);
  for (const f of fields) put(f);
  return h.digest('hex');
}

/** What the server sends in `challenge`. */
export function serverProof(
  key: Buffer,
  team: string,
  clientNonce: string,
  serverNonce: string,
  serverId: string,
  clientId: string,
): string {
  return mac(key, ['server', team, clientNonce, serverNonce, serverId, clientId]);
}

/** What the client sends in `auth`. */
export function clientProof(
  key: Buffer,
  team: string,
  serverNonce: string,
  clientNonce: string,
  clientId: string,
  serverId: string,
): string {
  return mac(key, ['client', team, serverNonce, clientNonce, clientId, serverId]);
}

const HEX = /^(?:[0-9a-f]{2})+$/;

/** Constant-time comparison of two hex proofs; false on a length mismatch or anything not lowercase hex. */
export function proofEquals(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  if (a.length !== b.length || !HEX.test(a) || !HEX.test(b)) return false;
  return crypto.timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * Remembers nonces for `ttlMs` to spot replays. Holds at most `max`: when full, the oldest is
 * forgotten first (bounded memory beats perfect recall; the other side's fresh nonce in every proof
 * already makes a replayed proof useless).
 */
export class NonceCache {
  private readonly entries = new Map<string, number>(); // nonce → expiry, oldest first
  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(ttlMs > 0)) throw new Error(`NonceCache: ttlMs must be positive, got ${ttlMs}`);
    if (!Number.isSafeInteger(max) || max < 1) throw new Error(`NonceCache: max must be a positive integer, got ${max}`);
  }

  /** True if the nonce was already seen within the ttl (a replay); records it otherwise. */
  seen(nonce: string): boolean {
    const t = this.now();
    for (const [n, expiry] of this.entries) {
      if (expiry > t) break;
      this.entries.delete(n);
    }
    const expiry = this.entries.get(nonce);
    if (expiry !== undefined && expiry > t) return true;
    this.entries.delete(nonce);
    this.entries.set(nonce, t + this.ttlMs);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    return false;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Read the team secret. Refuses a file group or others can access (mode & 0o077), a non-regular
 * file, and a secret that is empty or shorter than 16 bytes once one trailing newline is removed.
 */
export function readSecretFile(file: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`cannot read team secret ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`team secret ${file} is not a regular file`);
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      throw new Error(
        `team secret ${file} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${file}`,
      );
    }
    let buf = fs.readFileSync(fd);
    if (buf.length >= 2 && buf[buf.length - 2] === 0x0d && buf[buf.length - 1] === 0x0a) buf = buf.subarray(0, buf.length - 2);
    else if (buf.length >= 1 && buf[buf.length - 1] === 0x0a) buf = buf.subarray(0, buf.length - 1);
    if (buf.length === 0)
      throw new Error(`team secret ${file} is empty; put at least 16 random bytes in it (e.g. openssl rand -hex 32 > ${file})`);
    if (buf.length < 16)
      throw new Error(`team secret ${file} is too short (${buf.length} bytes); use at least 16 (e.g. openssl rand -hex 32 > ${file})`);
    return Buffer.from(buf);
  } finally {
    fs.closeSync(fd);
  }
}
