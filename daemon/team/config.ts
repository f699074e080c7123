/**
 * team.json (this agent's membership: who it is, the team file, where it dials and listens, the
 * layers it holds back) and --listen addresses.
 */
import * as fsp from 'fs/promises';
import { TeamConfig, TeamConfigSchema, parseJson } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { writeFileAtomic } from '../atomic';

export type { TeamConfig };

/** The saved membership, checked, or null when this agent is not in a team. */
export async function readConfig(file: string): Promise<TeamConfig | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
  return parseJson(TeamConfigSchema, text, file); // throws naming the file, the field and the reason
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

/**
 * A failed listen on `spec` as the user's error (E_TEAM_LISTEN, naming address and port); any
 * other error (a bad TLS certificate, say) is returned unchanged.
 */
export function listenError(spec: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err?.syscall !== 'listen') return e;
  const { port } = parseListen(spec);
  if (err.code === 'EADDRINUSE') {
    return new StrataError(
      'E_TEAM_LISTEN',
      `cannot listen on ${spec}: port ${port} is in use`,
      `Stop what uses port ${port}, or give another port with --listen HOST:PORT.`,
    );
  }
  if (err.code === 'EADDRNOTAVAIL') {
    return new StrataError(
      'E_TEAM_LISTEN',
      `cannot listen on ${spec}: that address is not on this machine`,
      'Give an address of this machine, like 127.0.0.1 or 0.0.0.0.',
    );
  }
  if (err.code === 'EACCES') {
    return new StrataError(
      'E_TEAM_LISTEN',
      `cannot listen on ${spec}: permission denied`,
      'Ports below 1024 need root: give one from 1024 up.',
    );
  }
  return new StrataError('E_TEAM_LISTEN', `cannot listen on ${spec}: ${err.message}`, 'Check the --listen address.');
}
