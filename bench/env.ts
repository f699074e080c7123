/** What the benchmark runs on: the comparison tools (installed when root), the machine, and which Strata. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { hasCommand, isRoot, log, run } from './util';

// ---- tools ---------------------------------------------------------------------------------------

export interface Tools {
  hyperfine: boolean;
  fuseOverlayfs: boolean;
  unionfs: boolean;
  kernelOverlay: boolean;
}

/** Install missing comparison tools when root (apt-get); otherwise skip them with a note. */
export async function ensureTools(notes: string[]): Promise<Tools> {
  const want: [keyof Tools, string, string][] = [
    ['hyperfine', 'hyperfine', 'hyperfine'],
    ['fuseOverlayfs', 'fuse-overlayfs', 'fuse-overlayfs'],
    ['unionfs', 'unionfs', 'unionfs-fuse'],
  ];
  const missing = want.filter(([, cmd]) => !hasCommand(cmd));
  if (missing.length && isRoot() && hasCommand('apt-get')) {
    const pkgs = missing.map(([, , pkg]) => pkg);
    log(`installing ${pkgs.join(', ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
    if (r.code !== 0) {
      await run('apt-get', ['update', '-qq'], { env });
      r = await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
    }
    if (r.code !== 0) notes.push(`apt-get install ${pkgs.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
  }
  const t: Tools = {
    hyperfine: hasCommand('hyperfine'),
    fuseOverlayfs: hasCommand('fuse-overlayfs'),
    unionfs: hasCommand('unionfs'),
    kernelOverlay: isRoot(),
  };
  const why = isRoot() ? 'not installed and apt-get could not install it' : 'not installed, and installing needs root';
  if (!t.hyperfine) notes.push(`hyperfine: ${why}; runs are timed from Node instead (adds a few ms of spawn cost to every run)`);
  if (!t.fuseOverlayfs) notes.push(`fuse-overlayfs skipped: ${why}`);
  if (!t.unionfs) notes.push(`unionfs-fuse skipped: ${why}`);
  if (!t.kernelOverlay) notes.push('kernel overlayfs skipped: mounting it needs root');
  for (const n of notes) log(n);
  return t;
}

// ---- machine -------------------------------------------------------------------------------------

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  os: string;
  memory_gib: number;
  node: string;
  fs: string;
  root: boolean;
}

export function machine(root: string): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    /* unknown */
  }
  const fsType = spawnSync('findmnt', ['-no', 'FSTYPE', '-T', root], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return {
    cpu,
    cores: os.cpus().length,
    kernel: os.release(),
    os: distro,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    fs: fsType,
    root: isRoot(),
  };
}

export interface Revision {
  head: string;
  uncommitted: string[];
  addon_built: string;
}

/** Which Strata was measured: commit, uncommitted changes under daemon/, shared/ and protocol/, the view server's build time. */
export function revisionInfo(): Revision {
  const repo = path.resolve(__dirname, '..');
  const git = (...a: string[]) => spawnSync('git', ['-c', 'safe.directory=*', '-C', repo, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const addon = path.join(repo, 'build', 'Release', 'strata-viewd');
  return {
    head: git('rev-parse', '--short', 'HEAD') || 'unknown',
    uncommitted: git('status', '--porcelain', '--', 'daemon', 'shared', 'protocol', 'binding.gyp')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/^\s*\S+\s+/, '')),
    addon_built: fs.existsSync(addon) ? fs.statSync(addon).mtime.toISOString() : 'missing',
  };
}
