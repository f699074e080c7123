/**
 * The data set with a real shape: a copy of a real tree (by default this checkout's node_modules:
 * thousands of small folders), committed as a git repository. The source is only read.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Shape, gitEnv, refreshIndex, walkTree } from './dataset';
import { must } from './util';

export interface RealTree {
  /** The source that was copied (symlinks resolved). */
  source: string;
  /** The git repository (the copy). */
  dir: string;
  shape: Shape;
  /** Regular files, relative to dir (also written NUL-separated to `list`). */
  files: string[];
  list: string;
  /** An ELF executable reached through node_modules/.bin, relative to dir; null when there is none. */
  exec: string | null;
  /** The package folder the write workload copies (relative to dir), and its regular files. */
  writeSrc: { rel: string; files: number; bytes: number } | null;
}

/** The checkout's own node_modules (a symlink in a worktree), found from dist/ or bench/. */
export function defaultRealSource(): string {
  return path.resolve(__dirname, '..', 'node_modules');
}

/**
 * Copy `source` to `dir` with `cp -a` and commit it. With `maxFiles` (the quick run), only some
 * top-level entries are copied, about that many files: `.bin` and the package of its executable
 * first, then entries in name order, skipping any that alone would take more than a quarter (or 8 MiB).
 */
export async function makeRealTree(
  source: string,
  dir: string,
  listFile: string,
  maxFiles: number | null,
  writeMax: number,
): Promise<RealTree> {
  const src = fs.realpathSync(source);
  if (!fs.statSync(src).isDirectory()) throw new Error(`${source} is not a folder`);
  fs.mkdirSync(dir, { recursive: true });
  if (maxFiles === null) await must('cp', ['-a', '--', src + '/.', dir]);
  else for (const name of pickSubset(src, maxFiles)) await must('cp', ['-a', '--', path.join(src, name), path.join(dir, name)]);
  // A real tree's own history is not wanted, and a nested one would show as an untracked folder.
  fs.rmSync(path.join(dir, '.git'), { recursive: true, force: true });
  const walk = walkTree(dir);
  await commitTree(dir, walk.entries);
  await refreshIndex(dir);
  fs.writeFileSync(listFile, walk.files.join('\0') + '\0');
  return {
    source: src,
    dir,
    shape: walk.shape,
    files: walk.files,
    list: listFile,
    exec: findExec(dir),
    writeSrc: pickWriteSource(dir, walk.sizes, writeMax),
  };
}

function pickSubset(src: string, maxFiles: number): string[] {
  const counts = new Map<string, number>();
  const bytes = new Map<string, number>();
  for (const [f, size] of walkTree(src).sizes) {
    const top = f.split('/')[0];
    counts.set(top, (counts.get(top) ?? 0) + 1);
    bytes.set(top, (bytes.get(top) ?? 0) + size);
  }
  const names = fs
    .readdirSync(src)
    .filter((n) => n !== '.git')
    .sort();
  const exec = findExec(src);
  const first = exec
    ? [
        '.bin',
        fs
          .realpathSync(path.join(src, exec))
          .slice(src.length + 1)
          .split('/')[0],
      ]
    : [];
  const chosen = new Set(first.filter((n) => names.includes(n)));
  let taken = [...chosen].reduce((a, n) => a + (counts.get(n) ?? 0), 0);
  for (const n of names) {
    if (taken >= maxFiles) break;
    const c = counts.get(n) ?? 0;
    if (chosen.has(n) || c > maxFiles / 4 || (bytes.get(n) ?? 0) > 8 << 20) continue;
    chosen.add(n);
    taken += c;
  }
  return [...chosen];
}

function cQuote(p: string): string {
  if (!/[\n"\\]/.test(p) && !p.startsWith('"')) return p;
  return '"' + p.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/**
 * One commit of every file and symlink, written straight into a pack by `git fast-import`
 * (`git add` + `repack` of 20k loose objects takes a minute on a busy machine; fast compression
 * and no deltas: git status never reads the blobs of a clean tree), then an index made from it.
 */
async function commitTree(dir: string, entries: { rel: string; kind: 'file' | 'exec' | 'link' }[]): Promise<void> {
  const env = gitEnv();
  await must('git', ['-C', dir, 'init', '-q'], { env });
  for (const [k, v] of [
    ['user.name', 'bench'],
    ['user.email', 'bench@example.invalid'],
    ['gc.auto', '0'],
  ])
    await must('git', ['-C', dir, 'config', k, v], { env });
  const ref = (await must('git', ['-C', dir, 'symbolic-ref', 'HEAD'], { env })).trim();
  const child = spawn('git', ['-C', dir, '-c', 'core.compression=1', 'fast-import', '--quiet', '--depth=0'], {
    env,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? 1));
  });
  const write = async (b: string | Buffer): Promise<void> => {
    if (!child.stdin!.write(b)) await new Promise((r) => child.stdin!.once('drain', r));
  };
  const modes: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const abs = path.join(dir, e.rel);
    const body = e.kind === 'link' ? Buffer.from(fs.readlinkSync(abs)) : fs.readFileSync(abs);
    await write(`blob\nmark :${i + 1}\ndata ${body.length}\n`);
    await write(body);
    await write('\n');
    modes.push(e.kind === 'link' ? '120000' : e.kind === 'exec' ? '100755' : '100644');
  }
  const msg = 'benchmark tree (real shape)';
  await write(`commit ${ref}\ncommitter bench <bench@example.invalid> 1704067200 +0000\ndata ${msg.length}\n${msg}\n`);
  for (let i = 0; i < entries.length; i++) await write(`M ${modes[i]} :${i + 1} ${cQuote(entries[i].rel)}\n`);
  await write('\n');
  child.stdin!.end();
  const code = await done;
  if (code !== 0) throw new Error(`git fast-import in ${dir} exited ${code}: ${stderr.trim().slice(-2000)}`);
  await must('git', ['-C', dir, 'read-tree', 'HEAD'], { env });
}

/** An ELF executable that node_modules/.bin links to (esbuild here), as `npx` would run it. */
function findExec(dir: string): string | null {
  const bin = path.join(dir, '.bin');
  let names: string[];
  try {
    names = fs.readdirSync(bin).sort();
  } catch {
    return null;
  }
  names.sort((a, b) => (a === 'esbuild' ? -1 : b === 'esbuild' ? 1 : 0));
  for (const n of names) {
    try {
      const real = fs.realpathSync(path.join(bin, n));
      if (!real.startsWith(dir + path.sep)) continue;
      const fd = fs.openSync(real, 'r');
      const head = Buffer.alloc(4);
      fs.readSync(fd, head, 0, 4, 0);
      fs.closeSync(fd);
      if (head.toString('latin1') === '\x7fELF' && (fs.statSync(real).mode & 0o111) !== 0) return path.join('.bin', n);
    } catch {
      /* a dangling link: try the next */
    }
  }
  return null;
}

/** The package folder (`name` or `@scope/name`) with the most files, at most `max`: copied by the write workload. */
function pickWriteSource(dir: string, sizes: Map<string, number>, max: number): RealTree['writeSrc'] {
  const pkgs = new Map<string, { files: number; bytes: number }>();
  for (const [rel, size] of sizes) {
    const parts = rel.split('/');
    if (parts.length < 2 || parts[0].startsWith('.')) continue;
    const key = parts[0].startsWith('@') ? (parts.length > 2 ? `${parts[0]}/${parts[1]}` : null) : parts[0];
    if (!key) continue;
    const p = pkgs.get(key) ?? { files: 0, bytes: 0 };
    p.files++;
    p.bytes += size;
    pkgs.set(key, p);
  }
  let best: RealTree['writeSrc'] = null;
  for (const [rel, p] of [...pkgs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (p.files <= max && (!best || p.files > best.files)) best = { rel, ...p };
  }
  return best && fs.existsSync(path.join(dir, best.rel)) ? best : null;
}
