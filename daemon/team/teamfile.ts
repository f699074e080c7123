/**
 * Loading strata.team.json: parse, check every field and the slot rules the replicated state relies
 * on (protocol/team.ts checkTeamFile), and report all problems at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TEAM_FILE, TeamFile, checkTeamFile } from '../../protocol/team';

/** Read and check a team file; the Error lists every problem, each naming the file and field. */
export function loadTeamFile(file: string): TeamFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read team file ${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseTeamFile(text, file);
}

/** Check a team file's text (read by a client: the agent must not read files inside its own views). */
export function parseTeamFile(text: string, file: string): TeamFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`team file ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const { team, problems } = checkTeamFile(raw, file);
  if (!team) {
    throw new Error(
      `team file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
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
