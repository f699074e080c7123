/**
 * Who speaks: each agent (and relay) has its own Ed25519 key pair, and its id is the fingerprint of
 * the public key, as Syncthing's device ids are. Events, presence and chunks are signed at their
 * origin over a canonical encoding that names the team, and checked by every node that receives
 * them, so a node can forward what it could not have forged. The team secret (auth.ts) still
 * decides who may connect at all.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Frame, Presence, TeamEvent, canonicalJson } from '../../protocol/team';

const ID_DOMAIN = 'strata-agent-id-v1';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of buf) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** The id of a public key: 160 bits of SHA-256 as 32 base32 characters in groups of 8. */
export function agentIdOf(rawKey: Buffer): string {
  const h = crypto.createHash('sha256').update(ID_DOMAIN).update(rawKey).digest().subarray(0, 20);
  return base32(h).match(/.{8}/g)!.join('-');
}

export const AGENT_KEY_ID_RE = /^[A-Z2-7]{8}(?:-[A-Z2-7]{8}){3}$/;

/** The bytes a signature covers: a domain, the team, and the canonical JSON of the rest. */
function signedBytes(domain: string, team: string, body: unknown): Buffer {
  return Buffer.from(`${domain}\n${team}\n${canonicalJson(body)}`, 'utf8');
}

function without<T extends object, K extends keyof T>(o: T, k: K): Omit<T, K> {
  const copy = { ...o };
  delete copy[k];
  return copy;
}

export type Chunk = Extract<Frame, { t: 'chunk' }>;

export const eventBytes = (team: string, ev: Omit<TeamEvent, 'sig'>) =>
  signedBytes('strata-event-v1', team, without(ev as TeamEvent, 'sig'));
export const presenceBytes = (team: string, p: Omit<Presence, 'sig'>) =>
  signedBytes('strata-presence-v1', team, without(p as Presence, 'sig'));
export const chunkBytes = (team: string, c: Omit<Chunk, 'sig'>) =>
  signedBytes('strata-chunk-v1', team, without(without(c as Chunk, 'sig'), 'data'));
/** What each side of the handshake signs: its role, the team, both nonces and both ids (as the proofs do). */
export const handshakeBytes = (role: 'server' | 'client', team: string, fields: string[]) =>
  signedBytes('strata-handshake-v2', team, [role, ...fields]);

/** A key pair and the id derived from it. */
export class Identity {
  readonly id: string;
  /** The raw public key, base64url (what frames carry). */
  readonly key: string;

  constructor(private readonly privateKey: crypto.KeyObject) {
    // The raw key is the end of the SPKI encoding. Not through a JWK export: in Node 20 that holds
    // the key's lock while it allocates, and a GC there ran a finished KeyGenJob's destructor,
    // which waits for the same lock: a test process froze with that stack.
    const raw = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
    this.key = raw.toString('base64url');
    this.id = agentIdOf(raw);
  }

  static generate(): Identity {
    return new Identity(crypto.generateKeyPairSync('ed25519').privateKey);
  }

  sign(bytes: Buffer): string {
    return crypto.sign(null, bytes, this.privateKey).toString('base64url');
  }

  signEvent(team: string, ev: Omit<TeamEvent, 'key' | 'sig'>): TeamEvent {
    const withKey = { ...ev, key: this.key };
    return { ...withKey, sig: this.sign(eventBytes(team, withKey)) };
  }

  signPresence(team: string, p: Omit<Presence, 'key' | 'sig'>): Presence {
    const withKey = { ...p, key: this.key };
    return { ...withKey, sig: this.sign(presenceBytes(team, withKey)) };
  }

  signChunk(team: string, c: Omit<Chunk, 'sig'>): Chunk {
    return { ...c, sig: this.sign(chunkBytes(team, c)) };
  }

  /** PKCS#8 PEM, for the key file. */
  pem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }
}

/** Read a key file: 0600, a regular file, an Ed25519 private key. */
export function readIdentity(file: string): Identity {
  const st = fs.lstatSync(file);
  if (!st.isFile()) throw new Error(`agent key ${file} is not a regular file`);
  if (st.mode & 0o077) throw new Error(`agent key ${file} is accessible by group or others; run: chmod 600 ${file}`);
  const key = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`agent key ${file} is not an Ed25519 key`);
  return new Identity(key);
}

/** Make a new key pair and keep it in `file` (0600; replaces an older one). */
export function createIdentity(file: string): Identity {
  const id = Identity.generate();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, id.pem(), { mode: 0o600, flag: 'w' });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return id;
}

/** The key in `file`, or null when there is none. */
export function loadIdentity(file: string): Identity | null {
  try {
    return readIdentity(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * The public keys of the ids seen, pinned on first use and checked on every signed frame. An id
 * must be its key's fingerprint, so a key can only ever be pinned to its own id; a different key
 * for a pinned id (a fingerprint collision) is refused all the same. Holds at most `max` ids,
 * forgetting the least recently used (a forgotten id is checked afresh next time).
 */
export class KeyRing {
  private readonly pins = new Map<string, { key: string; obj: crypto.KeyObject }>();
  constructor(private readonly max = 4096) {}

  /** The key object for (id, key), or the reason it is refused. */
  private pin(id: string, key: string): crypto.KeyObject | string {
    const known = this.pins.get(id);
    if (known) {
      if (known.key !== key) return `a different key than the one pinned for ${id}`;
      this.pins.delete(id);
      this.pins.set(id, known);
      return known.obj;
    }
    const raw = Buffer.from(key, 'base64url');
    if (raw.length !== 32) return 'a key that is not 32 bytes';
    if (agentIdOf(raw) !== id) return `a key whose fingerprint is not ${id}`;
    let obj: crypto.KeyObject;
    try {
      obj = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key }, format: 'jwk' });
    } catch {
      return 'a key that is not an Ed25519 public key';
    }
    this.pins.set(id, { key, obj });
    while (this.pins.size > this.max) this.pins.delete(this.pins.keys().next().value as string);
    return obj;
  }

  /** null when `sig` is id's signature of `bytes` under `key`; otherwise why not. */
  verify(id: string, key: string, bytes: Buffer, sig: string): string | null {
    const obj = this.pin(id, key);
    if (typeof obj === 'string') return obj;
    let ok: boolean;
    try {
      ok = crypto.verify(null, bytes, obj, Buffer.from(sig, 'base64url'));
    } catch {
      ok = false;
    }
    return ok ? null : `a signature that does not verify for ${id}`;
  }

  verifyEvent(team: string, ev: TeamEvent): string | null {
    return this.verify(ev.origin, ev.key, eventBytes(team, ev), ev.sig);
  }

  verifyPresence(team: string, p: Presence): string | null {
    return this.verify(p.agent, p.key, presenceBytes(team, p), p.sig);
  }

  /** A chunk from `c.from`, whose key must already be known (from its presence or handshake). */
  verifyChunk(team: string, c: Chunk): string | null {
    const known = this.pins.get(c.from);
    if (!known) return `no key known for ${c.from}`;
    return this.verify(c.from, known.key, chunkBytes(team, c), c.sig);
  }

  get size(): number {
    return this.pins.size;
  }
}
