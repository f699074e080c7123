/** Starting strata-viewd by itself for the viewd-*.test.ts suites (the agent does not use it yet). */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { ROOT, mounted } from './helpers';
import { ViewdControl } from '../../daemon/fuse/viewdctl';
import { compileRuleTable } from '../../daemon/fuse/ruletable';
import { Resolver, RuleLayer } from '../../shared/resolver';

export const VIEWD = path.join(ROOT, 'build', 'Release', 'strata-viewd');

export interface ViewdOpts {
  mnt: string;
  base: string;
  sock: string;
  inPlace?: boolean;
  allowOther?: boolean;
  /** Initial table text (--rules). */
  rules?: string;
  timeout?: number;
  noPassthrough?: boolean;
}

export interface Viewd {
  proc: ChildProcess;
  pid: number;
  ctl: ViewdControl;
  stderr(): string;
  /** Unmount through the control socket and wait for the process to end. */
  stop(): Promise<void>;
}

export function viewdArgs(o: ViewdOpts): string[] {
  const args: string[] = [];
  if (o.inPlace) args.push('--in-place');
  if (o.allowOther) args.push('--allow-other');
  if (o.noPassthrough) args.push('--no-passthrough');
  if (o.timeout !== undefined) args.push('--timeout', String(o.timeout));
  if (o.rules !== undefined) {
    const f = `${o.sock}.rules`;
    fs.writeFileSync(f, o.rules);
    args.push('--rules', f);
  }
  args.push(o.mnt, o.base, o.sock);
  return args;
}

export function exited(proc: ChildProcess, ms = 10000): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    proc.once('exit', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

export async function startViewd(o: ViewdOpts): Promise<Viewd> {
  const proc = spawn(VIEWD, viewdArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += String(d)));
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`strata-viewd did not get ready: ${err}`)), 15000);
    proc.stdout!.on('data', (d) => {
      out += String(d);
      const m = /^ready (\d+)\n/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`strata-viewd exited (${code ?? sig}) before it was ready: ${err}`));
    });
  });
  const ctl = await ViewdControl.connect(o.sock);
  return {
    proc,
    pid,
    ctl,
    stderr: () => err,
    stop: async () => {
      await ctl.unmount().catch(() => {});
      ctl.close();
      if (!(await exited(proc))) proc.kill('SIGKILL');
      detach(o.mnt);
    },
  };
}

export { mounted };

/** Nothing of ours may stay mounted. */
export function detach(mnt: string): void {
  while (mounted(mnt)) {
    if (spawnSync('umount', ['-l', mnt], { stdio: 'ignore' }).status !== 0) break;
  }
}

/** How many names the server bound (LOOKUP, or READDIRPLUS) while every file in `files` was stat'ed. */
export async function lookupsToStat(ctl: ViewdControl, files: string[]): Promise<number> {
  const before = (await ctl.stats()).lookups;
  for (const f of files) fs.lstatSync(f);
  return (await ctl.stats()).lookups - before;
}

export interface LayerDirs {
  files: string;
  writable: string;
  meta: string;
}

/** Folders of a layer under root (files/, writable/files/, writable/meta/), made on demand. */
export function layerDirs(root: string, name: string): LayerDirs {
  const d = {
    files: path.join(root, name, 'files'),
    writable: path.join(root, name, 'writable', 'files'),
    meta: path.join(root, name, 'writable', 'meta'),
  };
  fs.mkdirSync(d.files, { recursive: true });
  fs.mkdirSync(d.writable, { recursive: true });
  return d;
}

export function table(root: string, layers: RuleLayer[], generation: number): string {
  return compileRuleTable(
    new Resolver(layers),
    {
      filesDir: (l) => layerDirs(root, l).files,
      writableDir: (l) => layerDirs(root, l).writable,
      metaDir: (l) => layerDirs(root, l).meta,
    },
    generation,
  );
}

export function rule(
  name: string,
  map: Record<string, string>,
  o: { priority?: number; excludes?: string[]; deletes?: string[] } = {},
): RuleLayer {
  return {
    name,
    priority: o.priority ?? 0,
    mappings: Object.entries(map).map(([original, destination]) => ({ original, destination })),
    excludes: o.excludes ?? [],
    deletes: o.deletes ?? [],
  };
}
