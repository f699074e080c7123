/**
 * The benchmark's data: a git repository of N small files, one large file of random bytes, two
 * executables (a copy of `true` and of the running `node`), and a small `tool/` folder whose
 * content differs between the base and a layer (for the switch test).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { median, must } from './util';

/** Every file's mtime: far in the past, so git never sees an index entry as "racily clean". */
const PAST = new Date('2024-01-01T00:00:00Z');

export const BASE_VERSION = 'base\n';
export const LAYER_VERSION = 'layer tools 2.0 (longer than the base file on purpose)\n';
export const BASE_RUN = 'base';
export const LAYER_RUN = 'layer-tools-2.0';

/** git without the user's or the system's configuration (no fsmonitor, hooks or aliases). */
export function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' };
}

function git(dir: string, ...args: string[]): Promise<string> {
  return must('git', ['-C', dir, ...args], { env: gitEnv() });
}

/** Deterministic text of roughly source-file size (200 B – 4 KiB). */
function fileText(i: number): string {
  let x = (i * 2654435761) >>> 0;
  const lines = 4 + (x % 60);
  const out: string[] = [`// file ${i}`];
  for (let l = 0; l < lines; l++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(`export const v${l} = ${x % 100000}; // ${'x'.repeat(x % 40)}`);
  }
  return out.join('\n') + '\n';
}

/**
 * Write a repository of `files` files, 100 per leaf folder (p<a>/q<b>/m<k>.ts), commit it and pack
 * the objects, so .git adds only a few dozen entries. Returns the files' relative paths.
 */
export async function makeRepo(dir: string, files: number): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const rels: string[] = [];
  for (let i = 0; i < files; i++) {
    const leaf = Math.floor(i / 100);
    const rel = `p${Math.floor(leaf / 10)}/q${leaf % 10}/m${i % 100}.ts`;
    const abs = path.join(dir, rel);
    if (i % 100 === 0) fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, fileText(i));
    fs.utimesSync(abs, PAST, PAST);
    rels.push(rel);
  }
  await git(dir, 'init', '-q');
  await git(dir, 'config', 'user.name', 'bench');
  await git(dir, 'config', 'user.email', 'bench@example.invalid');
  await git(dir, 'config', 'gc.auto', '0');
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'benchmark tree');
  await git(dir, 'repack', '-adq');
  await git(dir, 'prune-packed');
  await refreshIndex(dir);
  return rels;
}

/** Let git record the stat data it sees now (after a copy, inode numbers and ctimes differ). */
export async function refreshIndex(dir: string): Promise<void> {
  await git(dir, 'status', '--porcelain');
  const dirty = (await git(dir, 'status', '--porcelain')).trim();
  if (dirty) throw new Error(`the benchmark repository ${dir} is not clean: ${dirty.slice(0, 200)}`);
}

export interface Shape {
  files: number;
  symlinks: number;
  folders: number;
  bytes: number;
  /** Regular files directly in a folder, median over all folders (those holding only folders count as 0). */
  median_files_per_folder: number;
}

export interface Walk {
  shape: Shape;
  /** Regular files, relative, in walk order. */
  files: string[];
  /** Files and symbolic links, relative, with what git should record. */
  entries: { rel: string; kind: 'file' | 'exec' | 'link' }[];
  sizes: Map<string, number>;
}

/** Every folder, file and symlink below `dir` (its own folder included), skipping `.git`. */
export function walkTree(dir: string): Walk {
  const files: string[] = [];
  const entries: Walk['entries'] = [];
  const sizes = new Map<string, number>();
  const perFolder: number[] = [];
  let bytes = 0;
  let links = 0;
  const visit = (rel: string): void => {
    let n = 0;
    const abs = path.join(dir, rel);
    for (const e of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name === '.git') continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) visit(r);
      else if (e.isSymbolicLink()) {
        links++;
        entries.push({ rel: r, kind: 'link' });
      } else if (e.isFile()) {
        const st = fs.statSync(path.join(abs, e.name));
        n++;
        bytes += st.size;
        files.push(r);
        sizes.set(r, st.size);
        entries.push({ rel: r, kind: st.mode & 0o100 ? 'exec' : 'file' });
      }
    }
    perFolder.push(n);
  };
  visit('');
  return {
    shape: { files: files.length, symlinks: links, folders: perFolder.length, bytes, median_files_per_folder: median(perFolder) },
    files,
    entries,
    sizes,
  };
}

export function makeBigFile(file: string, mib: number): void {
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let i = 0; i < mib; i++) {
      crypto.randomFillSync(buf);
      fs.writeSync(fd, buf);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function copyExecutable(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(fs.realpathSync(from), to);
  fs.chmodSync(to, 0o755);
}

function writeScript(file: string, says: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\necho ${says}\n`, { mode: 0o755 });
}

export interface Data {
  /** The data set all peers overlay and native runs on. */
  dir: string;
  /** Relative paths of the repository's files (also written NUL-separated to `list`). */
  files: string[];
  list: string;
}

/** data/{tree (git repo), big.bin, bin/true, bin/node, tool/version, tool/run.sh} */
export async function makeData(dir: string, files: number, bigMiB: number, listFile: string): Promise<Data> {
  const rels = await makeRepo(path.join(dir, 'tree'), files);
  makeBigFile(path.join(dir, 'big.bin'), bigMiB);
  copyExecutable('/usr/bin/true', path.join(dir, 'bin', 'true'));
  copyExecutable(process.execPath, path.join(dir, 'bin', 'node'));
  fs.mkdirSync(path.join(dir, 'tool'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tool', 'version'), BASE_VERSION);
  writeScript(path.join(dir, 'tool', 'run.sh'), BASE_RUN);
  fs.writeFileSync(listFile, rels.join('\0') + '\0');
  return { dir, files: rels, list: listFile };
}

/** The "tools" layer's source: tool/{version, run.sh, bin/true, bin/node}. */
export function makeToolsLayerSource(dir: string): void {
  fs.mkdirSync(path.join(dir, 'tool'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tool', 'version'), LAYER_VERSION);
  writeScript(path.join(dir, 'tool', 'run.sh'), LAYER_RUN);
  copyExecutable('/usr/bin/true', path.join(dir, 'tool', 'bin', 'true'));
  copyExecutable(process.execPath, path.join(dir, 'tool', 'bin', 'node'));
}
