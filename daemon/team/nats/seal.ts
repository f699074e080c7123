/**
 * The team MAC on what Strata stores in NATS: HMAC-SHA256 under the key derived from the team
 * secret (auth.ts deriveKey) over the bytes the origin signed. The NATS operator, or any user of
 * the account who lacks the secret, can store bytes but not a value a member will take.
 */
import * as crypto from 'crypto';
import * as v from 'valibot';
import { NatsEventValue, NatsEventValueSchema, NatsPresenceValue, NatsPresenceValueSchema, Presence, TeamEvent } from '../../../protocol';
import { issueMessage } from '../../../protocol/schema';
import { eventBytes, presenceBytes } from '../identity';

function mac(key: Buffer, domain: string, bytes: Buffer): string {
  return crypto.createHmac('sha256', key).update(domain).update('\n').update(bytes).digest('hex');
}

function macEquals(a: string, b: string): boolean {
  return a.length === b.length && crypto.timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

export function sealEvent(key: Buffer, team: string, event: TeamEvent): Uint8Array {
  const value: NatsEventValue = { event, mac: mac(key, 'strata-nats-event-v1', eventBytes(team, event)) };
  return Buffer.from(JSON.stringify(value));
}

export function sealPresence(key: Buffer, team: string, presence: Presence): Uint8Array {
  const value: NatsPresenceValue = { presence, mac: mac(key, 'strata-nats-presence-v1', presenceBytes(team, presence)) };
  return Buffer.from(JSON.stringify(value));
}

function parse<S extends v.GenericSchema>(schema: S, bytes: Uint8Array): v.InferOutput<S> | string {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return 'it is not JSON';
  }
  const r = v.safeParse(schema, raw);
  return r.success ? r.output : `it is malformed: ${issueMessage(r.issues[0], '')}`;
}

/**
 * What a member stored, opened: the value whose team MAC holds, and the bytes its origin signed
 * (the MAC covers the same bytes, so the signature check reuses them instead of encoding again:
 * every agent does this for every decision and presence), or why not.
 */
export interface Opened<T> {
  value: T;
  signed: Buffer;
}

export function openEventSigned(key: Buffer, team: string, bytes: Uint8Array): Opened<TeamEvent> | string {
  const p = parse(NatsEventValueSchema, bytes);
  if (typeof p === 'string') return p;
  const signed = eventBytes(team, p.event);
  if (!macEquals(p.mac, mac(key, 'strata-nats-event-v1', signed))) return 'its team MAC does not hold (not written by a member)';
  return { value: p.event, signed };
}

export function openPresenceSigned(key: Buffer, team: string, bytes: Uint8Array): Opened<Presence> | string {
  const p = parse(NatsPresenceValueSchema, bytes);
  if (typeof p === 'string') return p;
  const signed = presenceBytes(team, p.presence);
  if (!macEquals(p.mac, mac(key, 'strata-nats-presence-v1', signed))) return 'its team MAC does not hold (not written by a member)';
  return { value: p.presence, signed };
}

/** A stored event whose team MAC holds (its signature is the caller's to check), or why not. */
export function openEvent(key: Buffer, team: string, bytes: Uint8Array): TeamEvent | string {
  const o = openEventSigned(key, team, bytes);
  return typeof o === 'string' ? o : o.value;
}
