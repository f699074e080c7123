/**
 * Strata over NATS JetStream (daemon/team/nats/): the addresses a team file may name, and the
 * values stored in the team's buckets. A value is a signed event or presence (identity.ts) with an
 * HMAC under the key derived from the team secret: the signature says which agent decided, the MAC
 * that a member of the team wrote it, so neither the NATS operator nor another account's user can
 * forge one.
 */
import * as v from 'valibot';
import { PresenceSchema, TeamEventSchema } from './team';
import { obj } from './schema';

/** nats:// and tls:// (TCP), nats+ws:// and nats+wss:// (a NATS WebSocket listener, told apart from Strata relays). */
export const NATS_URL_RE = /^(?:nats|tls|nats\+wss?):\/\/[^\s/]+\/?$/;
export const isNatsUrl = (u: string): boolean => NATS_URL_RE.test(u);

const mac = v.pipe(v.string('must be a MAC'), v.regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits'));

/** The value of a decision key: the event that last won the register, and the team MAC over it. */
export const NatsEventValueSchema = obj({ event: TeamEventSchema, mac }, 'must be {event, mac}');
export type NatsEventValue = v.InferOutput<typeof NatsEventValueSchema>;

/** The value of a presence key: the agent's latest signed presence, and the team MAC over it. */
export const NatsPresenceValueSchema = obj({ presence: PresenceSchema, mac }, 'must be {presence, mac}');
export type NatsPresenceValue = v.InferOutput<typeof NatsPresenceValueSchema>;

/** Where an agent resumes watching the decisions bucket (team-nats.json): the last revision persisted with the state. */
export const NatsCursorSchema = obj(
  {
    agent: v.string(),
    bucket: v.string(),
    revision: v.pipe(v.number(), v.integer(), v.minValue(0)),
  },
  'must be {agent, bucket, revision}',
);
export type NatsCursor = v.InferOutput<typeof NatsCursorSchema>;

/**
 * A NATS credentials file given at join (`--credentials`, mode 0600), when it is JSON: a user and
 * password, a token, or an nkey seed; `ca` names a CA certificate file for tls:// servers signed
 * by a private CA. A NATS `.creds` file (a user JWT and its seed) and a bare nkey seed are read as
 * they are.
 */
export const NatsCredentialsSchema = v.union(
  [
    v.strictObject({ user: v.string(), password: v.string(), ca: v.optional(v.string()) }),
    v.strictObject({ token: v.string(), ca: v.optional(v.string()) }),
    v.strictObject({ nkeySeed: v.pipe(v.string(), v.regex(/^SU[A-Z2-7]{56}$/)), ca: v.optional(v.string()) }),
    v.strictObject({ ca: v.string() }),
  ],
  'must be {"user", "password"}, {"token"} or {"nkeySeed"} (each with an optional "ca")',
);
export type NatsCredentials = v.InferOutput<typeof NatsCredentialsSchema>;
