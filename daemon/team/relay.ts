/**
 * `strata relay`: a standalone relay with no FUSE. It keeps the team's replicated state (so a late
 * joiner catches up even when no teammate is online) and forwards events and presence, checking
 * each as every agent does. It has a key pair of its own (kept beside --state-file, so its id
 * survives a restart; made afresh on each start without one) and makes no decisions.
 */
import * as os from 'os';
import { TeamNode } from './node';
import { TeamState } from './state';
import { loadTeamState, saveTeamState } from './statefile';
import { HlcClock } from './hlc';
import { deriveKey, readSecretFile } from './auth';
import { listenError, parseListen } from './config';
import { Identity, createIdentity, loadIdentity } from './identity';
import { limitsFromEnv } from './limits';

export async function runRelay(opts: {
  listen: string;
  secretFile: string;
  team?: string;
  stateFile?: string;
  /** PEM certificate and key: serve wss:// instead of ws://. */
  tls?: { cert: Buffer; key: Buffer };
  log: (m: string) => void;
}): Promise<{ node: TeamNode; url: string; stop: () => Promise<void> }> {
  const secret = readSecretFile(opts.secretFile);
  const file = opts.stateFile;
  const identity = file ? (loadIdentity(`${file}.key`) ?? createIdentity(`${file}.key`)) : Identity.generate();
  const id = identity.id;
  const clock = new HlcClock(id);
  const limits = limitsFromEnv(process.env, opts.log);
  const stateOpts = { maxOrigins: limits.maxOrigins, maxRegisters: limits.maxRegisters, maxSkewMs: limits.maxSkewMs };
  const state = file
    ? await loadTeamState(file, id, clock, (e) => opts.log(`[relay] starting empty: ${file}: ${e.message}`), stateOpts)
    : new TeamState(id, clock, stateOpts);
  const keys = new Map<string, Buffer>();
  // One write at a time, the newest state each: a burst of events is not a burst of writes.
  let saving: Promise<void> | null = null;
  let again = false;
  const save = async (): Promise<void> => {
    if (!file) return;
    if (saving) {
      again = true;
      return saving;
    }
    saving = (async () => {
      do {
        again = false;
        await saveTeamState(file, state);
      } while (again);
    })().finally(() => (saving = null));
    return saving;
  };
  const listen = parseListen(opts.listen);
  const node: TeamNode = new TeamNode({
    identity,
    team: opts.team ?? null,
    key: (team) => {
      const k = keys.get(team) ?? deriveKey(secret, team);
      keys.set(team, k);
      return k;
    },
    state,
    log: opts.log,
    limits,
    listen: { ...listen, tls: opts.tls },
    hooks: {
      stateChanged: () => void save().catch((e) => opts.log(`[relay] saving state: ${(e as Error).message}`)),
      presence: () => ({
        user: 'relay',
        host: os.hostname(),
        active: null,
        held: [],
        applied: {}, // nobody waits for a relay to apply anything
        busy: [],
        has: {},
      }),
    },
  });
  try {
    await node.start();
  } catch (e) {
    throw listenError(opts.listen, e);
  }
  const url = `${opts.tls ? 'wss' : 'ws'}://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${node.port}`;
  return { node, url, stop: () => node.stop() };
}
