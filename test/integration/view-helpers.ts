/** Shared by the view suites: two layers over a base, a shell that lives across switches, the view's server process. */
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcessWithoutNullStreams } from 'child_process';
import { Env, alive, makeEnv, viewServers, writeTree } from './helpers';

export async function waitFor(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function read(p: string): string {
  return fs.readFileSync(p, 'utf8');
}

export { alive };

/** The pid of the strata-viewd serving `mnt`, or null. */
export function viewServerOf(mnt: string): number | null {
  return viewServers((argv) => argv.includes(mnt))[0] ?? null;
}

export function mountCount(mnt: string): number {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === mnt).length;
}

/** A shell that stays alive across switches, with its cwd inside the view. */
export class Shell {
  private proc: ChildProcessWithoutNullStreams;
  private out = '';
  private n = 0;
  constructor(cwd: string) {
    this.proc = spawn('bash', ['--noprofile', '--norc'], { cwd });
    this.proc.stdout.on('data', (d) => (this.out += String(d)));
    this.proc.stderr.on('data', (d) => (this.out += String(d)));
  }
  run(cmd: string): Promise<string> {
    const mark = `__done_${++this.n}__`;
    this.out = '';
    this.proc.stdin.write(`${cmd}; echo ${mark}\n`);
    return new Promise((res, rej) => {
      const t0 = Date.now();
      const tick = () => {
        const i = this.out.indexOf(mark);
        if (i >= 0) return res(this.out.slice(0, i).trim());
        if (Date.now() - t0 > 20000) return rej(new Error(`shell timed out on: ${cmd}; output: ${this.out}`));
        setTimeout(tick, 10);
      };
      tick();
    });
  }
  close(): void {
    this.proc.kill('SIGKILL');
  }
}

export async function twoLayerEnv(): Promise<Env> {
  const e = makeEnv();
  writeTree(e.base, { 'bin/tool': '#!/bin/sh\necho base\n', 'bin/only-base': 'base-only\n', README: 'base readme\n' });
  const l1 = path.join(e.dir, 'src-one');
  const l2 = path.join(e.dir, 'src-two');
  writeTree(l1, { 'bin/tool': '#!/bin/sh\necho layer-one-longer-output\n', 'bin/extra': 'one\n' });
  writeTree(l2, { 'bin/tool': '#!/bin/sh\necho two\n', 'share/doc': 'two doc\n' });
  await e.ok('layer', 'create', 'one', '--from', l1, '--priority', '100');
  await e.ok('layer', 'create', 'two', '--from', l2, '--priority', '50');
  return e;
}

/** The two layers, a view at e.mnt, and layer "one" active. */
export async function viewWithOneActive(): Promise<Env> {
  const e = await twoLayerEnv();
  await e.ok('view', 'add', e.base, '--at', e.mnt);
  await e.ok('activate', 'one');
  return e;
}
