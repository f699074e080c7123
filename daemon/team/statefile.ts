/**
 * team-state.json: the replicated state of one agent or relay, written after every change so a
 * restart resumes with what it acknowledged. Checked in full before anything is restored.
 */
import * as fsp from 'fs/promises';
import * as v from 'valibot';
import { TeamStateFileSchema } from '../../protocol/state';
import { issueMessage } from '../../protocol/schema';
import { writeFileAtomic } from '../atomic';
import { HlcClock } from './hlc';
import { TeamState, TeamStateOptions } from './state';

/** Rebuild from toJSON output. Checks everything first; throws an Error naming the first problem. */
export function teamStateFromJSON(selfId: string, clock: HlcClock, data: unknown, opts: TeamStateOptions = {}): TeamState {
  const checked = v.safeParse(TeamStateFileSchema, data);
  if (!checked.success) throw new Error(issueMessage(checked.issues[0], 'team state'));
  if (checked.output.self !== selfId)
    throw new Error(`team state: it belongs to agent ${JSON.stringify(checked.output.self)}, not "${selfId}"`);
  return TeamState.restore(clock, checked.output, opts);
}

/**
 * Load the state saved in `file`. A missing file gives a fresh state; so does an unreadable one,
 * after `broken` was told why (peers send what they hold on connect).
 */
export async function loadTeamState(
  file: string,
  selfId: string,
  clock: HlcClock,
  broken: (e: Error) => Promise<void> | void,
  opts: TeamStateOptions = {},
): Promise<TeamState> {
  try {
    return teamStateFromJSON(selfId, clock, JSON.parse(await fsp.readFile(file, 'utf8')), opts);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await broken(e as Error);
    return new TeamState(selfId, clock, opts);
  }
}

export function saveTeamState(file: string, state: TeamState): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(state.toJSON()) + '\n', 0o600);
}

/** The format a saved team state says it has ("unknown" when it says none or is not JSON); null when there is none. */
export async function savedFormat(file: string): Promise<string | null> {
  const text = await fsp.readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const f = (JSON.parse(text) as { format?: unknown }).format;
    return typeof f === 'number' ? String(f) : 'unknown';
  } catch {
    return 'unknown';
  }
}
