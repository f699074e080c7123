/**
 * The file systems under test. Each one shows the same data folder (both data sets) at a
 * directory (`root`); the peers overlay it (writes go to their own upper directory), Strata
 * serves a view of a copy of it (pass-through writes go to that copy), and native is the folder
 * itself.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { detachSync, isRoot, log, must, mountsUnder, onCleanup, run } from './util';
import { runtimeDir } from '../shared/paths';

export type SystemKey = 'native' | 'overlayfs' | 'fuse_overlayfs' | 'unionfs_fuse' | 'strata' | 'strata_layer';

export const LABELS: Record<SystemKey, string> = {
  native: 'native',
  overlayfs: 'overlayfs',
  fuse_overlayfs: 'fuse-overlayfs',
  unionfs_fuse: 'unionfs-fuse',
  strata: 'strata',
  strata_layer: 'strata (layer)',
};

/** One file system under test, as every data set sees it. */
export interface System {
  key: SystemKey;
  /** Where the data folder (both data sets, binaries, big file) shows. */
  root: string;
  /** A folder for the write workloads; null when the system takes no part in them. */
  out: string | null;
  /** The data sets are read from the layers' mappings, binaries from /tool/bin (strata (layer)). */
  viaLayer: boolean;
  /** Make the next access a first access: a fresh mount. Null for native (no mount). */
  remount: (() => Promise<void>) | null;
  /** A fresh mount as users get it by default (Strata: with its warm-up); null where that is remount. */
  remountWarm: (() => Promise<void>) | null;
}

// ---- peers ---------------------------------------------------------------------------------------

export abstract class Peer {
  readonly mnt: string;
  readonly upper: string;
  readonly work: string;
  constructor(
    readonly key: SystemKey,
    readonly dir: string,
    readonly lower: string,
  ) {
    this.mnt = path.join(dir, 'mnt');
    this.upper = path.join(dir, 'upper');
    this.work = path.join(dir, 'work');
    for (const d of [this.mnt, this.upper, this.work]) fs.mkdirSync(d, { recursive: true });
    onCleanup(`unmount ${key}`, () => detachSync(this.mnt));
  }
  abstract mount(): Promise<void>;
  async unmount(): Promise<void> {
    const [cmd, args] = isRoot() ? ['umount', [this.mnt]] : ['fusermount3', ['-u', this.mnt]];
    await must(cmd, args);
  }
  async remount(): Promise<void> {
    await this.unmount();
    await this.mount();
  }
  protected async waitMounted(): Promise<void> {
    // FUSE daemons may return before the mount shows; wait until it is there.
    for (let i = 0; i < 200; i++) {
      if (mountsUnder(this.mnt).includes(this.mnt) && fs.existsSync(path.join(this.mnt, 'tree'))) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${LABELS[this.key]} did not appear at ${this.mnt}`);
  }
  system(): System {
    return { key: this.key, root: this.mnt, out: this.mnt, viaLayer: false, remount: () => this.remount(), remountWarm: null };
  }
}

/** Kernel overlayfs, default options. */
export class KernelOverlay extends Peer {
  async mount(): Promise<void> {
    await must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${this.lower},upperdir=${this.upper},workdir=${this.work}`, this.mnt]);
    await this.waitMounted();
  }
}

/** fuse-overlayfs, default options (as Debian ships it). */
export class FuseOverlayfs extends Peer {
  async mount(): Promise<void> {
    await must('fuse-overlayfs', ['-o', `lowerdir=${this.lower},upperdir=${this.upper},workdir=${this.work}`, this.mnt]);
    await this.waitMounted();
  }
}

/** unionfs-fuse with copy-on-write (otherwise writes to the read-only branch fail), else defaults. */
export class UnionfsFuse extends Peer {
  async mount(): Promise<void> {
    await must('unionfs', ['-o', 'cow', `${this.upper}=RW:${this.lower}=RO`, this.mnt]);
    await this.waitMounted();
  }
  override async unmount(): Promise<void> {
    // unionfs-fuse is a libfuse 2 program: fusermount3 may not know its mount when not root.
    if (isRoot()) return super.unmount();
    const r = await run('fusermount3', ['-u', this.mnt]);
    if (r.code !== 0) await must('fusermount', ['-u', this.mnt]);
  }
}

// ---- Strata ---------------------------------------------------------------------------------------

/** Drives the real CLI with a private STRATA_HOME; the agent it starts is a separate process. */
export class Strata {
  readonly home: string;
  readonly mnt: string;
  readonly env: NodeJS.ProcessEnv;
  agentPid: number | null = null;

  constructor(
    readonly cli: string,
    readonly dir: string,
    readonly base: string,
  ) {
    this.home = path.join(dir, 'home');
    this.mnt = path.join(dir, 'mnt');
    fs.mkdirSync(this.mnt, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, STRATA_HOME: this.home };
    // Measure the agent's defaults, whatever the caller's shell has set.
    delete env.STRATA_CACHE_TIMEOUT;
    this.env = env;
    onCleanup('stop the Strata agent', () => this.stopSync());
  }

  async run(...args: string[]): Promise<unknown> {
    const out = await must(process.execPath, [this.cli, ...args, '--json'], { env: this.env, timeoutMs: 600000 });
    return JSON.parse(out) as unknown;
  }

  async setUp(layers: { name: string; from: string; map: [string, string][] }[]): Promise<void> {
    for (const l of layers) {
      log(`strata: layer create ${l.name}`);
      await this.run('layer', 'create', l.name, '--from', l.from);
      await this.run('layer', 'unmap', l.name, '/');
      for (const [orig, dest] of l.map) await this.run('layer', 'map', l.name, orig, dest);
    }
    const status = (await this.run('status')) as { pid: number };
    this.agentPid = status.pid;
    await this.run('view', 'add', this.base, '--at', this.mnt);
    await this.run('activate', ...layers.map((l) => l.name));
  }

  /** How long each `view add` with its warm-up took (ms). */
  readonly warmAdds: number[] = [];

  /** A cold mount (`--no-warm`), or, with `warm`, one as users get it, whose `view add` is timed. */
  async remount(warm = false): Promise<void> {
    await this.run('view', 'rm', this.base);
    const t0 = performance.now();
    await this.run('view', 'add', this.base, '--at', this.mnt, ...(warm ? [] : ['--no-warm']));
    if (warm) this.warmAdds.push(performance.now() - t0);
  }

  /** The agent log's last warm-up line (what it listed, and whether it stopped at a bound). */
  lastWarmUp(): string | null {
    const lines = this.agentLog()
      .split('\n')
      .filter((l) => l.includes('[view] warmed '));
    return lines.length ? lines[lines.length - 1].replace(/^\S+ /, '') : null;
  }

  /** agent stop via the CLI; when that fails, end the agent this bench started, then detach its mount. */
  stopSync(): void {
    if (fs.existsSync(this.home)) {
      const r = spawnSync(process.execPath, [this.cli, 'agent', 'stop'], { env: this.env, stdio: 'ignore', timeout: 40000 });
      if (r.status !== 0 && this.agentPid !== null) {
        process.stderr.write(`[bench] "strata agent stop" failed; sending SIGKILL to agent pid ${this.agentPid}\n`);
        try {
          process.kill(this.agentPid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    detachSync(this.mnt);
    fs.rmSync(runtimeDir(this.home, this.env), { recursive: true, force: true });
  }

  agentLog(): string {
    try {
      return fs.readFileSync(path.join(this.home, 'agent.log'), 'utf8');
    } catch {
      return '';
    }
  }
}
