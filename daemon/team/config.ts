/**
 * team.json (this agent's membership: who it is, the team file, where it dials and listens, the
 * layers it holds back) and --listen addresses.
 */
import * as fsp from 'fs/promises';
import { TeamFile } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { writeFileAtomic } from '../atomic';

export interface TeamConfig {
  format: 1;
  agentId: string;
  name: string;
  teamFile: string;
  spec: TeamFile;
  relays: string[];
  listen: string | null;
  held: string[];
}

/** The saved membership, or null when this agent is not in a team. */
export async function readConfig(file: string): Promise<TeamConfig | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
  return JSON.parse(text) as TeamConfig;
}

export function writeConfig(file: string, cfg: TeamConfig): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(cfg, null, 2) + '\n', 0o600);
}

export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new StrataError('E_BAD_REQUEST', `--listen ${spec}: expected HOST:PORT, like 127.0.0.1:7450`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}
