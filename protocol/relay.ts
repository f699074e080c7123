/**
 * What the standalone relay process (daemon/relay-main.ts) reports to the `strata relay` command
 * that started it, over Node's IPC channel: its address once it listens, or why it could not start.
 */
import * as v from 'valibot';
import { ErrorInfoSchema } from './errors';
import { obj, str } from './schema';

export const RelayReportSchema = v.union([obj({ ready: obj({ url: str(), id: str() }) }), obj({ error: ErrorInfoSchema })]);
export type RelayReport = v.InferOutput<typeof RelayReportSchema>;

export function isRelayReport(m: unknown): m is RelayReport {
  return v.is(RelayReportSchema, m);
}
