/**
 * The agent's own files under STRATA_HOME: contracts between one version of the agent and the
 * next, checked on load like any message (a bad file is named with its field and reason).
 */
import * as v from 'valibot';
import { layerName } from './layer';
import { HlcSchema, RegistersSchema, TeamEventSchema, TeamFileSchema, agentId } from './team';
import { count, list, obj, rec, str } from './schema';

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

/** team.json: this agent's membership, written on join. */
export const TeamConfigSchema = obj(
  {
    format: v.literal(1, (i) => `must be 1, got ${JSON.stringify(i.input)}`),
    agentId: agentId(),
    name: str(),
    /** Where the team file was read from (shown in status and hints). */
    teamFile: str(),
    spec: TeamFileSchema,
    /** The relays this agent dials. */
    relays: list(str()),
    listen: v.nullable(str()),
    /** Team layers this agent keeps as it wants. */
    held: list(layerName()),
  },
  'must be a JSON object',
);
export type TeamConfig = v.InferOutput<typeof TeamConfigSchema>;

export const TEAM_STATE_FORMAT = 1;

const seenMessage = 'must be {upTo, above} with every seq in above greater than upTo + 1';

/** team-state.json: the replicated state, with the seen sets (out-of-order seqs too) and the history. */
export const TeamStateFileSchema = obj(
  {
    format: v.literal(TEAM_STATE_FORMAT, (i) => `must be ${TEAM_STATE_FORMAT}, got ${JSON.stringify(i.input)}`),
    self: agentId(),
    /** The last seq this agent used. */
    seq: count(),
    clock: HlcSchema,
    registers: RegistersSchema,
    seen: rec(
      agentId((i) => `bad origin ${JSON.stringify(i.input).slice(0, 80)}`),
      v.pipe(
        obj({ upTo: count(), above: list(count()) }, seenMessage),
        v.check((e) => e.above.every((s) => s > e.upTo + 1), seenMessage),
      ),
    ),
    history: list(TeamEventSchema),
  },
  'not a JSON object',
);
export type TeamStateFile = v.InferOutput<typeof TeamStateFileSchema>;
