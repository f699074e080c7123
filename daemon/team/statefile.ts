/**
 * team-state.json: the replicated state of one agent or relay, written after every change so a
 * restart resumes with what it acknowledged. Checked in full before anything is restored.
 */
import * as fsp from 'fs/promises';
import type { Hlc, TaggedRegister, TeamEvent } from '../../protocol/team';
import { isHlc, isRegisterKey, isRegisterValue, isTeamEvent } from '../../protocol/team';
import { writeFileAtomic } from '../atomic';
import { HlcClock } from './hlc';
import { SavedTeamState, TeamState, TeamStateOptions, isId, isObj, isSeq } from './state';

const STATE_FORMAT = 1;

/** Rebuild from toJSON output. Validates everything; throws an Error naming the first problem. */
export function teamStateFromJSON(selfId: string, clock: HlcClock, data: unknown, opts: TeamStateOptions = {}): TeamState {
  const bad = (what: string): never => {
    throw new Error(`team state: ${what}`);
  };
  if (!isObj(data)) return bad('not a JSON object');
  if (data.format !== STATE_FORMAT) bad(`format must be ${STATE_FORMAT}, got ${JSON.stringify(data.format)}`);
  if (data.self !== selfId) bad(`it belongs to agent ${JSON.stringify(data.self)}, not "${selfId}"`);
  if (!isSeq(data.seq)) bad('seq must be a non-negative integer');
  if (!isHlc(data.clock)) bad('clock must be an HLC timestamp {wall, logical, agent}');
  if (!isObj(data.registers)) bad('registers must be an object');
  const registers = data.registers as Record<string, unknown>;
  for (const [k, r] of Object.entries(registers)) {
    if (!isRegisterKey(k)) bad(`registers: bad key ${JSON.stringify(String(k).slice(0, 80))}`);
    if (!isObj(r) || !isHlc(r.tag) || !isRegisterValue(k, r.value)) bad(`registers.${k}: must be {value, tag} with a valid value and tag`);
  }
  if (!isObj(data.seen)) bad('seen must be an object');
  const seen = data.seen as Record<string, unknown>;
  for (const [origin, e] of Object.entries(seen)) {
    if (!isId(origin)) bad(`seen: bad origin ${JSON.stringify(String(origin).slice(0, 80))}`);
    if (!isObj(e) || !isSeq(e.upTo) || !Array.isArray(e.above) || !e.above.every((s) => isSeq(s) && s > (e.upTo as number) + 1)) {
      bad(`seen.${origin}: must be {upTo, above} with every seq in above greater than upTo + 1`);
    }
  }
  if (!Array.isArray(data.history)) bad('history must be a list');
  const history = data.history as unknown[];
  history.forEach((ev, i) => {
    if (!isTeamEvent(ev)) bad(`history[${i}] is not a valid team event`);
  });
  const saved: SavedTeamState = {
    format: STATE_FORMAT,
    self: selfId,
    seq: data.seq as number,
    clock: data.clock as Hlc,
    registers: registers as Record<string, TaggedRegister>,
    seen: seen as Record<string, { upTo: number; above: number[] }>,
    history: history as TeamEvent[],
  };
  return TeamState.restore(clock, saved, opts);
}

/**
 * Load the state saved in `file`. A missing file gives a fresh state; so does an unreadable one,
 * after `broken` was told why (peers send a snapshot on connect).
 */
export async function loadTeamState(file: string, selfId: string, clock: HlcClock, broken: (e: Error) => Promise<void> | void): Promise<TeamState> {
  try {
    return teamStateFromJSON(selfId, clock, JSON.parse(await fsp.readFile(file, 'utf8')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await broken(e as Error);
    return new TeamState(selfId, clock);
  }
}

export function saveTeamState(file: string, state: TeamState): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(state.toJSON()) + '\n', 0o600);
}
