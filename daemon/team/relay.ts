/**
 * `strata relay`: a standalone relay with no FUSE. It keeps the team's replicated state (so a late
 * joiner catches up even when no teammate is online) and forwards events and presence.
 */
import * as os from 'os';
import * as crypto from 'crypto';
import { TeamNode } from './node';
import { TeamState } from './state';
import { loadTeamState, saveTeamState } from './statefile';
import { HlcClock } from './hlc';
import { deriveKey, readSecretFile } from './auth';
import { listenError, parseListen } from './config';

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
  const id = `relay-${crypto.randomBytes(4).toString('hex')}`;
  const clock = new HlcClock(id);
  const file = opts.stateFile;
  const state = file
    ? await loadTeamState(file, id, clock, (e) => opts.log(`[relay] starting empty: ${file}: ${e.message}`))
    : new TeamState(id, clock);
  const keys = new Map<string, Buffer>();
  const save = async () => {
    if (file) await saveTeamState(file, state);
  };
  const listen = parseListen(opts.listen);
  const node: TeamNode = new TeamNode({
    id,
    team: opts.team ?? null,
    key: (team) => {
      const k = keys.get(team) ?? deriveKey(secret, team);
      keys.set(team, k);
      return k;
    },
    state,
    log: opts.log,
    listen: { ...listen, tls: opts.tls },
    hooks: {
      stateChanged: () => void save().catch((e) => opts.log(`[relay] saving state: ${(e as Error).message}`)),
      presence: () => ({ user: 'relay', host: os.hostname(), active: null, held: [], applied: state.seenVector(), busy: [], has: {} }),
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
