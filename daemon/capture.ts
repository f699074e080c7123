/**
 * Filling a new layer's files from a folder or straight from an archive (.tar.gz/.tgz, .tar.xz/.txz,
 * .zip), and packing a layer for export, with progress in bytes. Debian's tar (with gzip and xz) and
 * unzip do the unpacking as child processes, as export and import already use tar: no dependency is
 * added, xz needs no JavaScript port, and GNU tar's own guards (no absolute or ".." paths, symlinks
 * made last) come with it. What they cannot refuse for us (a zip entry written through one of the
 * archive's symlinks, device files, set-id bits) is checked here.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import * as zlib from 'zlib';
import { execFile, spawn } from 'child_process';
import { Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { promisify } from 'util';
import { Mapping } from '../protocol';
import { StrataError } from '../shared/errors';
import { destRel } from './layerspec';

const run = promisify(execFile);

/** A step's message, with bytes done of a total when known. */
export type ByteProgress = (message: string, done?: number, total?: number) => void;

/** How often progress is reported during a long copy. */
const TICK_MS = 500;

type Kind = 'folder' | 'tar.gz' | 'tar.xz' | 'zip';
const SUFFIXES: [string, Kind][] = [
  ['.tar.gz', 'tar.gz'],
  ['.tgz', 'tar.gz'],
  ['.tar.xz', 'tar.xz'],
  ['.txz', 'tar.xz'],
  ['.zip', 'zip'],
];

export interface Source {
  path: string;
  kind: Kind;
}

/** What --from names: a folder, or an archive of a kind we unpack. */
export async function captureSource(from: string): Promise<Source> {
  const st = await fsp.stat(from).catch(() => null);
  if (st?.isDirectory()) return { path: from, kind: 'folder' };
  const kind = SUFFIXES.find(([s]) => from.toLowerCase().endsWith(s))?.[1];
  if (st?.isFile() && kind) return { path: from, kind };
  throw new StrataError(
    'E_LAYER_INVALID',
    `--from ${from}: ${st ? 'not a folder, nor a .tar.gz, .tgz, .tar.xz, .txz or .zip archive' : 'no such folder or file'}`,
    'Give the folder or the archive that holds the toolchain.',
  );
}

/**
 * Fill `files` (which must not exist yet) from `src`. An archive whose entries all sit in one
 * top-level folder, as toolchains ship (node-v20.11.0-linux-x64/...), gives the layer that
 * folder's content; its name is returned.
 */
export async function captureInto(src: Source, files: string, progress: ByteProgress): Promise<{ root?: string }> {
  if (src.kind === 'folder') {
    await copyFolder(src.path, files, progress);
    return {};
  }
  const unpacked = `${files}.unpacked`;
  await fsp.mkdir(unpacked);
  try {
    if (src.kind === 'zip') await unzip(src.path, unpacked, progress);
    else await untar(src.path, src.kind, unpacked, progress);
    await checkUnpacked(unpacked, src.path);
    const top = await fsp.readdir(unpacked, { withFileTypes: true });
    const root = top.length === 1 && top[0].isDirectory() ? top[0].name : undefined;
    await fsp.rename(root ? path.join(unpacked, root) : unpacked, files);
    if (root) progress(`the archive holds one folder, ${root}/: its content is the layer's root`);
    return { root };
  } finally {
    await fsp.rm(unpacked, { recursive: true, force: true });
  }
}

/** Refuse mappings whose destination the captured files do not have (a typo, or the stripped top folder). */
export async function requireDestinations(mappings: Mapping[], files: string, root?: string): Promise<void> {
  for (const m of mappings) {
    const rel = destRel(m);
    if (rel === '' || (await fsp.lstat(path.join(files, rel)).catch(() => null))) continue;
    const top = (await fsp.readdir(files)).sort();
    const shown = top.slice(0, 12).join(', ') + (top.length > 12 ? ', ...' : '');
    throw new StrataError(
      'E_LAYER_INVALID',
      `--map ${m.original}=${m.destination}: the layer has no ${rel}; its top level holds: ${shown || '(nothing)'}` +
        (root ? ` (the archive's one folder ${root}/ is the layer's root)` : ''),
      'Give a DESTINATION inside the captured files; nothing was created.',
    );
  }
}

// ---- folders ------------------------------------------------------------------------------------

/** cp -a keeps what a toolchain relies on (hard links, sparse files, extended attributes); progress by polling the copy's size. */
async function copyFolder(src: string, files: string, progress: ByteProgress): Promise<void> {
  const total = await treeBytes(src);
  const message = `copying ${src} into the layer store`;
  progress(message, 0, total);
  await fsp.mkdir(files);
  const stop = every(TICK_MS, async () => progress(message, Math.min(await treeBytes(files), total), total));
  try {
    await run('cp', ['-a', '--', src + '/.', files], { maxBuffer: 1 << 20 });
  } catch (e) {
    throw new StrataError(
      'E_IO',
      `copying ${src} failed: ${String((e as Error).message).split('\n')[0]}`,
      'Check that the folder is readable and the disk has room.',
    );
  } finally {
    await stop();
  }
  progress(message, total, total);
}

// ---- archives -----------------------------------------------------------------------------------

/** The archive is streamed into tar's stdin, so progress is the share of the (compressed) file read. */
async function untar(file: string, kind: 'tar.gz' | 'tar.xz', dest: string, progress: ByteProgress): Promise<void> {
  const total = (await fsp.stat(file)).size;
  const message = `unpacking ${file}`;
  progress(message, 0, total);
  const tar = spawn('tar', ['-x', kind === 'tar.xz' ? '-J' : '-z', '-f', '-', '-C', dest, '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  tar.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number>((res) => tar.once('close', (code) => res(code ?? 1)));
  tar.once('error', () => {}); // reported through the exit status
  let done = 0;
  let last = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (Date.now() - last >= TICK_MS) {
        last = Date.now();
        progress(message, done, total);
      }
      cb(null, chunk);
    },
  });
  // When tar stops early (a damaged archive), writing fails with EPIPE: its own message says more.
  const fed = pipeline(fs.createReadStream(file), count, tar.stdin).catch((e: Error) => e);
  const [code, fedError] = await Promise.all([exited, fed]);
  if (code !== 0 || fedError) {
    const why = stderr.trim().split('\n')[0] || (fedError as Error | undefined)?.message || `tar exited with status ${code}`;
    throw new StrataError('E_ARCHIVE', `${file}: cannot unpack: ${why}`, `Check that it is a ${kind} archive; nothing was created.`);
  }
  progress(message, total, total);
}

async function unzip(file: string, dest: string, progress: ByteProgress): Promise<void> {
  const total = await checkZipListing(file);
  const message = `unpacking ${file}`;
  progress(message, 0, total);
  const stop = every(TICK_MS, async () => progress(message, Math.min(await treeBytes(dest), total), total));
  try {
    // -o: never ask (dest is new); set-id bits are dropped by unzip unless -K. Status 1 is a warning only.
    await run('unzip', ['-qq', '-o', file, '-d', dest], { maxBuffer: 4 << 20 }).catch((e: { code?: number }) => {
      if (e.code !== 1) throw e;
    });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new StrataError(
      'E_ARCHIVE',
      `${file}: cannot unpack: ${(err.stderr || err.message).trim().split('\n')[0]}`,
      'Check that it is a zip archive; nothing was created.',
    );
  } finally {
    await stop();
  }
  progress(message, total, total);
}

/**
 * Refuse entries unzip would write outside `dest` (absolute, "..") or through a symlink the archive
 * itself makes; returns the uncompressed size.
 */
async function checkZipListing(file: string): Promise<number> {
  let names: string[];
  let long: string[];
  let totals: string;
  try {
    names = (await run('zipinfo', ['-1', file], { maxBuffer: 256 << 20 })).stdout.split('\n').filter(Boolean);
    // The short listing (one line per entry, in the same order) starts with the entry's type: l for a symlink.
    long = (await run('zipinfo', ['-s', file], { maxBuffer: 256 << 20 })).stdout.split('\n').filter(Boolean).slice(2, -1);
    totals = (await run('zipinfo', ['-t', file])).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    const why = (err.stdout || err.stderr || err.message).trim().split('\n').pop();
    throw new StrataError('E_ARCHIVE', `${file}: not a readable zip archive (${why})`, 'Nothing was created.');
  }
  if (long.length !== names.length) throw new StrataError('E_ARCHIVE', `${file}: its listing could not be read`, 'Nothing was created.');
  const clean = (n: string) => n.replace(/\\/g, '/').replace(/\/+$/, '');
  const links = names.filter((_, i) => long[i].startsWith('l')).map(clean);
  for (const n of names) {
    const c = clean(n);
    const bad = c.startsWith('/') || /^[A-Za-z]:/.test(c) || c.split('/').includes('..');
    const through = links.find((l) => c.startsWith(l + '/'));
    if (bad || through) {
      throw new StrataError(
        'E_ARCHIVE',
        `${file}: entry "${n}" ${bad ? 'would be written outside the layer' : `lies below the archive's symlink ${through}`}`,
        'Nothing was created.',
      );
    }
  }
  return Number(/(\d+) bytes uncompressed/.exec(totals)?.[1] ?? 0);
}

/** What an archive may leave: files, folders and symlinks, none set-id (a layer is no way to gain privileges). */
async function checkUnpacked(dir: string, file: string): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const { mode } = await fsp.lstat(p);
        if (mode & 0o6000) await fsp.chmod(p, mode & 0o1777);
      } else if (!e.isSymbolicLink()) {
        throw new StrataError(
          'E_ARCHIVE',
          `${file}: ${path.relative(dir, p)} is a device, fifo or socket; a layer holds files, folders and symlinks`,
          'Nothing was created.',
        );
      }
    }
  };
  await walk(dir);
}

// ---- export -------------------------------------------------------------------------------------

/** Write layer.json and files/ of `layerDir` to `out` as a .tar.gz; progress counts the tar stream against its expected size. */
export async function packLayer(layerDir: string, out: string, progress: ByteProgress): Promise<void> {
  const total = 512 + (await tarBytes(path.join(layerDir, 'layer.json'))) + (await tarBytes(path.join(layerDir, 'files')));
  const message = `packing ${path.basename(layerDir)}`;
  progress(message, 0, total);
  const tar = spawn('tar', ['-C', layerDir, '-cf', '-', '--', 'layer.json', 'files'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number>((res) => tar.once('close', (code) => res(code ?? 1)));
  tar.once('error', () => {});
  let done = 0;
  let last = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (Date.now() - last >= TICK_MS) {
        last = Date.now();
        progress(message, Math.min(done, total), total);
      }
      cb(null, chunk);
    },
  });
  const written = pipeline(tar.stdout, count, zlib.createGzip(), fs.createWriteStream(out, { mode: 0o644 })).catch((e: Error) => e);
  const [code, writeError] = await Promise.all([exited, written]);
  if (writeError) throw writeError;
  if (code !== 0) throw new Error(stderr.trim().split('\n')[0] || `tar exited with status ${code}`);
  progress(message, total, total);
}

// ---- sizes --------------------------------------------------------------------------------------

/** Bytes of the regular files under `dir` (what a copy of it has to write). */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await fsp.lstat(p).catch(() => null))?.size ?? 0;
    }
  };
  await walk(dir);
  return total;
}

/** The size of `p` (and what lies below it) in a tar stream: a 512-byte header per entry, content padded to 512. */
async function tarBytes(p: string): Promise<number> {
  const st = await fsp.lstat(p);
  if (st.isFile()) return 512 + Math.ceil(st.size / 512) * 512;
  if (!st.isDirectory()) return 512;
  let total = 512;
  for (const name of await fsp.readdir(p)) total += await tarBytes(path.join(p, name));
  return total;
}

/** Run `fn` every `ms`, skipping a tick while a run is still going, until the returned stop (which waits for that run). */
function every(ms: number, fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= fn()
      .catch(() => {})
      .finally(() => (running = null));
  }, ms);
  return async () => {
    clearInterval(timer);
    await running;
  };
}
