import * as v from 'valibot';
import { obj, str } from './schema';

/**
 * Stable error codes. Every error that crosses a boundary (socket, CLI, extension) carries one of
 * these, a message naming what failed, and where useful a hint saying what to do next.
 */
export const ErrorCodes = [
  'E_BAD_REQUEST', // a message failed validation
  'E_UNKNOWN_METHOD',
  'E_TOO_LARGE', // a message over the size limit
  'E_LAYER_INVALID', // layer.json failed validation
  'E_LAYER_FORMAT', // layer.json written by a newer Strata
  'E_LAYER_EXISTS',
  'E_LAYER_UNKNOWN',
  'E_LAYER_BUSY', // files of the layer are open
  'E_LAYER_ACTIVE', // operation needs the layer inactive
  'E_LAYER_INACTIVE', // operation needs the layer active (swap from a layer that is not)
  'E_LAYER_REQUIRED', // an active layer requires the layer being deactivated
  'E_MAPPING_ESCAPE', // a destination escapes the layer
  'E_MAPPING_UNKNOWN',
  'E_MAPPING_MISSING', // a warning: a mapping's destination is not in the layer's files (yet)
  'E_VIEW_EXISTS',
  'E_VIEW_UNKNOWN',
  'E_VIEW_INVALID', // base or mountpoint unusable
  'E_MOUNT_FAILED',
  'E_NATIVE_MISSING', // the view server (strata-viewd) is not built
  'E_ARCHIVE', // export/import problem
  'E_AGENT_UNAVAILABLE', // cannot reach or start the agent
  'E_TEAM_NOT_JOINED',
  'E_TEAM_JOINED', // already in a team: leave it before joining another
  'E_TEAM_INVALID', // strata.team.json failed validation
  'E_TEAM_SECRET', // the secret file is missing, too open or too short
  'E_TEAM_BUSY', // --when-idle timed out: teammates have files of the layers open
  'E_TEAM_DECISION_UNKNOWN',
  'E_TEAM_PULL', // a team layer could not be fetched from any peer
  'E_TEAM_SLOT', // two layers of one swap slot named to be active together
  'E_TEAM_LISTEN', // the --listen address cannot be served (port in use, address not local, no permission)
  'E_TEAM_CONNECT', // the team's NATS servers refused this agent (credentials) or cannot be reached
  'E_TEAM_NO_STORE', // team prune on a team without a shared archive store (a Strata relay keeps none)
  'E_IO',
  'E_INTERNAL',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];
export const ErrorCodeSchema = v.picklist(ErrorCodes, 'must be a Strata error code');

const errorInfoEntries = {
  code: ErrorCodeSchema,
  message: str(),
  /** What the user can do about it. */
  hint: v.optional(str()),
};
export const ErrorInfoSchema = obj(errorInfoEntries);
export type ErrorInfo = v.InferOutput<typeof ErrorInfoSchema>;

/** A validation problem: an error (absent severity) refuses a save; a warning is only shown. */
export const ProblemSchema = obj({ ...errorInfoEntries, severity: v.optional(v.picklist(['error', 'warning'])) });
export type Problem = v.InferOutput<typeof ProblemSchema>;

export function isErrorCode(x: unknown): x is ErrorCode {
  return v.is(ErrorCodeSchema, x);
}
