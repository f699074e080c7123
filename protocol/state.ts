/**
 * The agent's own files under STRATA_HOME: contracts between one version of the agent and the
 * next, checked on load like any message (a bad file is named with its field and reason).
 */
import * as v from 'valibot';
import { layerName } from './layer';
import { HlcSchema, MAX_SEQ, RegistersSchema, TeamEventSchema, TeamFileSchema, agentId } from './team';
import { int, list, obj, rec, str } from './schema';

/** state.json: what the agent restores on start. */
export const AgentStateSchema = obj(
  {
    format: v.literal(1, (i) => `must be 1, got ${JSON.stringify(i.input)}`),
    active: list(str()),
    views: list(obj({ base: str(), at: v.optional(str()) })),
  },
  'must be a JSON object',
);
export type AgentState = v.InferOutput<typeof AgentStateSchema>;

/** team.json: this agent's membership, written on join. Its key pair is in team.key beside it. */
export const TeamConfigSchema = obj(
  {
    format: v.literal(1, (i) => `must be 1, got ${JSON.stringify(i.input)}`),
    /** The fingerprint of this agent's public key (identity.ts). */
    agentId: agentId(),
    /** The user's name: shown to teammates, not an identity (anyone can pick any name). */
    name: str(),
    /** Where the team file was read from (shown in status and hints). */
    teamFile: str(),
    spec: TeamFileSchema,
    /** The relays this agent dials. */
    relays: list(str()),
    listen: v.nullable(str()),
    /** NATS mode: the file (0600) holding this agent's NATS credentials; never the credentials themselves. */
    credentials: v.optional(v.nullable(str())),
    /** Team layers this agent keeps as it wants. */
    held: list(layerName()),
  },
  'must be a JSON object',
);
export type TeamConfig = v.InferOutput<typeof TeamConfigSchema>;

/** 2: events are signed, and the events holding the registers are kept (winners). */
export const TEAM_STATE_FORMAT = 2;

const seenMessage = 'must be {upTo, above} with every seq in above greater than upTo + 1';

/**
 * team-state.json: the replicated state, with the seen sets (out-of-order seqs too, origins least
 * recently active first) and the history. The registers are rebuilt from `winners`, the signed
 * events that wrote them; `registers` is kept for people reading the file.
 */
export const TeamStateFileSchema = obj(
  {
    format: v.literal(TEAM_STATE_FORMAT, (i) => `must be ${TEAM_STATE_FORMAT}, got ${JSON.stringify(i.input)}`),
    self: agentId(),
    /** The last seq this agent used. */
    seq: int(0, MAX_SEQ),
    clock: HlcSchema,
    registers: RegistersSchema,
    winners: list(TeamEventSchema),
    seen: rec(
      agentId((i) => `bad origin ${JSON.stringify(i.input).slice(0, 80)}`),
      v.pipe(
        obj({ upTo: int(0, MAX_SEQ), above: list(int(0, MAX_SEQ)) }, seenMessage),
        v.check((e) => e.above.every((s) => s > e.upTo + 1), seenMessage),
      ),
    ),
    history: list(TeamEventSchema),
  },
  'not a JSON object',
);
export type TeamStateFile = v.InferOutput<typeof TeamStateFileSchema>;
