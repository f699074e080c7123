/** Shared by the team suites: waiting for a condition, a relay child process, a secret file. */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn } from 'child_process';
import { CLI } from './helpers';
import { Maybe, eventually as waitFor } from '../wait';

/** The team suites wait longer: several agents share two cores. */
export function eventually<T>(what: string, fn: () => Maybe<T> | Promise<Maybe<T>>, ms = 30000): Promise<T> {
  return waitFor(what, fn, ms);
}

export interface Relay {
  url: string;
  proc: ChildProcess;
  stop(): void;
}

export async function startRelay(secretFile: string, extra: string[] = []): Promise<Relay> {
  const proc = spawn(process.execPath, [CLI, 'relay', '--listen', '127.0.0.1:0', '--secret-file', secretFile, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (err += String(d)));
  const url = await eventually('the relay to print its address', () => {
    if (proc.exitCode !== null) throw new Error(`relay exited: ${err}`);
    const m = /"url":\s*"([^"]+)"/.exec(out);
    return m ? m[1] : null;
  });
  return { url, proc, stop: () => proc.kill('SIGTERM') };
}

export function writeSecret(dir: string, secret = 'correct horse battery staple 2026'): string {
  const f = path.join(dir, 'team.secret');
  fs.writeFileSync(f, secret + '\n', { mode: 0o600 });
  return f;
}
