/**
 * Loading strata.team.json: parse, check every field (protocol/team.ts checkTeamFile) plus the slot
 * rules the replicated state relies on, and report all problems at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TEAM_FILE, TeamFile, checkTeamFile } from '../../protocol/team';

/** Problems checkTeamFile does not look for: a layer in two slots, two defaults in one slot. */
export function slotProblems(team: TeamFile, file: string): string[] {
  const problems: string[] = [];
  const owner = new Map<string, string>();
  for (const s of Object.keys(team.slots).sort()) {
    for (const n of team.slots[s]) {
      const o = owner.get(n);
      if (o !== undefined && o !== s) problems.push(`${file}: slots.${s}: "${n}" is already in slot ${o}; a layer belongs to one slot at most`);
      else owner.set(n, s);
    }
    const defaults = team.slots[s].filter((n, i, all) => team.defaults.includes(n) && all.indexOf(n) === i);
    if (defaults.length > 1) problems.push(`${file}: defaults: ${defaults.map((n) => `"${n}"`).join(' and ')} are all in slot ${s}; only one can be active`);
  }
  return problems;
}

/** Read and check a team file; the Error lists every problem, each naming the file and field. */
export function loadTeamFile(file: string): TeamFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read team file ${file}: ${(e as Error).message}`);
  }
  return parseTeamFile(text, file);
}

/** Check a team file's text (read by a client: the agent must not read files inside its own views). */
export function parseTeamFile(text: string, file: string): TeamFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`team file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const { team, problems } = checkTeamFile(raw, file);
  if (team) problems.push(...slotProblems(team, file));
  if (!team || problems.length) {
    throw new Error(`team file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return team;
}

/** The nearest strata.team.json in startDir or a folder above it, or null. */
export function findTeamFile(startDir: string): string | null {
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, TEAM_FILE);
    try {
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here (or unreadable): keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
