/**
 * Unpacking a layer archive (.tar.gz) that may come from another machine or a teammate. We
 * decompress it ourselves and check each tar header before tar sees it: names (only layer.json and
 * files/, nothing absolute, no "..", nothing below a symlink of the archive), entry types, sizes,
 * the number of entries, the unpacked size and the compression ratio. tar then unpacks exactly the
 * bytes that were checked, so a bomb or an escaping entry is refused before it is written, and the
 * first violation stops the work at once.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import { once } from 'events';
import { spawn } from 'child_process';
import { StrataError } from '../shared/errors';
import { wholeFromEnv } from './env';

export interface ImportLimits {
  /** Bytes the archive may unpack to (tar headers and padding included). */
  maxBytes: number;
  /** Entries: files, folders and links. */
  maxEntries: number;
  /** Unpacked size over archive size, checked once RATIO_FLOOR bytes are unpacked. */
  maxRatio: number;
}

/** Generous for toolchains (the largest we know unpack to a few GB), far below any bomb. */
export const DEFAULT_IMPORT_LIMITS: ImportLimits = { maxBytes: 16 * 2 ** 30, maxEntries: 1_000_000, maxRatio: 200 };

/** Below this, any ratio is fine: small archives of small files compress very well. */
export const RATIO_FLOOR = 64 * 2 ** 20;
const ENV = { maxBytes: 'STRATA_IMPORT_MAX_BYTES', maxEntries: 'STRATA_IMPORT_MAX_ENTRIES', maxRatio: 'STRATA_IMPORT_MAX_RATIO' } as const;
const BLOCK = 512;
/** Long names and pax records: far more than PATH_MAX. */
const MAX_META = 64 * 1024;
const REGULAR = new Set(['0', '\0', '7']);
/** Hard link, symlink, folder, fifo: no data of their own. */
const OTHER = new Set(['1', '2', '5', '6']);

/** The limits set by STRATA_IMPORT_MAX_BYTES, _ENTRIES and _RATIO (0 turns one off). */
export function importLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): ImportLimits {
  const limits = { ...DEFAULT_IMPORT_LIMITS };
  for (const key of Object.keys(ENV) as (keyof ImportLimits)[]) {
    const n = wholeFromEnv(env, ENV[key], 'turns the limit off');
    if (n !== undefined) limits[key] = n === 0 ? Infinity : n;
  }
  return limits;
}

/** Checks a tar stream as it unpacks; feed() returns the bytes tar may see. No I/O. */
export class TarCheck {
  /** Set at the end-of-archive marker: tar stops there, so do we. */
  ended = false;
  entries = 0;
  private bytes = 0;
  private declared = 0;
  private head: Buffer = Buffer.alloc(0);
  private dataLeft = 0;
  private meta: { type: string; size: number; parts: Buffer[] } | null = null;
  private next: { path?: string; linkpath?: string; size?: number } = {};
  private symlinks = new Set<string>();
  private sawSpec = false;

  constructor(
    private readonly src: string,
    private readonly limits: ImportLimits,
  ) {}

  /** `compressed`: archive bytes read so far, for the ratio. */
  feed(chunk: Buffer, compressed = Infinity): Buffer {
    this.bytes += chunk.length;
    const { maxBytes, maxRatio } = this.limits;
    if (this.bytes > maxBytes) throw this.limit(`unpacks to more than ${maxBytes} bytes`, 'maxBytes');
    if (this.bytes >= RATIO_FLOOR && this.bytes > maxRatio * compressed) {
      throw this.limit(`unpacks to more than ${maxRatio} times its size (a decompression bomb?)`, 'maxRatio');
    }
    const out: Buffer[] = [];
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.dataLeft > 0) {
        const piece = chunk.subarray(off, off + this.dataLeft);
        off += piece.length;
        this.dataLeft -= piece.length;
        out.push(piece);
        if (this.meta) {
          this.meta.parts.push(piece);
          if (this.dataLeft === 0) this.endMeta();
        }
        continue;
      }
      const take = chunk.subarray(off, off + BLOCK - this.head.length);
      off += take.length;
      this.head = this.head.length ? Buffer.concat([this.head, take]) : take;
      if (this.head.length < BLOCK) break;
      const block = this.head;
      this.head = Buffer.alloc(0);
      out.push(block);
      this.header(block);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** At the end of the stream: refuse a truncated archive or one without layer.json. */
  finish(): void {
    if (!this.ended && (this.dataLeft > 0 || this.head.length > 0 || this.meta)) throw this.bad('it ends in the middle of an entry');
    if (!this.sawSpec) throw new StrataError('E_ARCHIVE', `${this.src}: has no layer.json`, 'Nothing was imported.');
  }

  private header(block: Buffer): void {
    // GNU tar stops at the first zero block (the end marker is two; a lone one ends it too).
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    checkSum(block, () => this.bad('a tar header is damaged'));
    const type = String.fromCharCode(block[156]);
    const size = this.number(block, 124, 12);
    if (type === 'L' || type === 'K' || type === 'x') {
      if (size > MAX_META) throw this.bad(`a long name or pax header of ${size} bytes`);
      this.meta = { type, size, parts: [] };
      this.dataLeft = padded(size);
      if (size === 0) this.endMeta();
      return;
    }
    const name = this.next.path ?? headerName(block);
    const link = this.next.linkpath ?? cString(block, 157, 100);
    const entrySize = this.next.size ?? size;
    this.next = {};
    const clean = this.entryName(name);
    // No device nodes: served by a root agent, one would open the device for any user.
    if (!REGULAR.has(type) && !OTHER.has(type)) {
      throw this.bad(`entry "${name}" is of type "${printable(type)}"; a layer archive holds only files, folders, links and fifos`);
    }
    // Old tars mark folders as files whose name ends in "/": tar and we would disagree on its data.
    if (REGULAR.has(type) && name.endsWith('/')) throw this.bad(`entry "${name}" is a file whose name ends in "/"`);
    if (!REGULAR.has(type) && entrySize !== 0) throw this.bad(`entry "${name}" is a link or folder with ${entrySize} bytes of data`);
    if (clean === 'layer.json') {
      if (!REGULAR.has(type)) throw this.bad('layer.json is not a regular file');
      this.sawSpec = true;
    }
    if (clean === 'files' && type !== '5') throw this.bad('files is not a folder');
    if (type === '1') this.entryName(link);
    if (type === '2') this.symlinks.add(clean);
    if (++this.entries > this.limits.maxEntries) throw this.limit(`has more than ${this.limits.maxEntries} entries`, 'maxEntries');
    this.declared += entrySize;
    if (this.declared > this.limits.maxBytes) throw this.limit(`unpacks to more than ${this.limits.maxBytes} bytes`, 'maxBytes');
    this.dataLeft = REGULAR.has(type) ? padded(entrySize) : 0;
  }

  /** The rules of a layer archive's names; returns the name without "./", doubled or trailing slashes. */
  private entryName(name: string): string {
    const parts = name.split('/').filter((p, i) => p !== '' && !(p === '.' && i === 0));
    const clean = parts.join('/');
    if (
      name.startsWith('/') ||
      parts.includes('..') ||
      parts.includes('.') ||
      !(parts[0] === 'layer.json' ? parts.length === 1 : parts[0] === 'files')
    ) {
      throw new StrataError(
        'E_ARCHIVE',
        `${this.src}: unexpected entry "${name}"; a layer archive holds only layer.json and files/`,
        'Nothing was imported.',
      );
    }
    for (let i = 1; i < parts.length; i++) {
      const above = parts.slice(0, i).join('/');
      if (this.symlinks.has(above)) throw this.bad(`entry "${name}" lies below the symbolic link "${above}"`);
    }
    return clean;
  }

  private endMeta(): void {
    const m = this.meta!;
    this.meta = null;
    const data = Buffer.concat(m.parts).subarray(0, m.size);
    if (m.type === 'L') this.next.path = cString(data, 0, data.length);
    else if (m.type === 'K') this.next.linkpath = cString(data, 0, data.length);
    else this.pax(data);
  }

  /** pax records, "LEN key=value\n": path, linkpath and size change the next entry. */
  private pax(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      const sp = data.indexOf(0x20, off);
      const len = sp > off ? Number(data.toString('latin1', off, sp)) : NaN;
      if (!Number.isSafeInteger(len) || len <= sp - off || off + len > data.length || data[off + len - 1] !== 0x0a) {
        throw this.bad('a pax header is damaged');
      }
      const rec = data.toString('utf8', sp + 1, off + len - 1);
      off += len;
      const eq = rec.indexOf('=');
      const key = rec.slice(0, eq);
      const value = rec.slice(eq + 1);
      if (key === 'path') this.next.path = value;
      else if (key === 'linkpath') this.next.linkpath = value;
      else if (key === 'size') {
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw this.bad(`a pax size of "${value}"`);
        this.next.size = Number(value);
      } else if (key.startsWith('GNU.sparse')) throw this.bad('sparse files are not supported');
    }
  }

  private number(block: Buffer, off: number, len: number): number {
    const n = readNumber(block, off, len);
    if (n === null) throw this.bad('a tar header has a malformed number');
    return n;
  }

  private bad(why: string): StrataError {
    return new StrataError('E_ARCHIVE', `${this.src}: not a readable layer archive (${why})`, 'Nothing was imported.');
  }

  private limit(what: string, key: keyof ImportLimits): StrataError {
    return new StrataError(
      'E_ARCHIVE',
      `${this.src}: ${what}; refused`,
      `Nothing was imported. If you trust it, raise ${ENV[key]} for the agent.`,
    );
  }
}

/** Unpack `src` into the folder `dest` (which exists), checking it as above. */
export async function unpackLayerArchive(src: string, dest: string, limits: ImportLimits): Promise<void> {
  const check = new TarCheck(src, limits);
  const tar = spawn('tar', ['-x', '-f', '-', '-C', dest, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  tar.stderr.setEncoding('utf8');
  tar.stderr.on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let tarDone = false;
  const exited = new Promise<number>((res) => {
    tar.once('error', (e) => {
      stderr += e.message;
      res(-1);
    });
    tar.once('close', (code) => res(code ?? -1));
  }).finally(() => (tarDone = true));
  tar.stdin.on('error', () => {}); // EPIPE once tar has stopped: its exit status says why

  const file = fs.createReadStream(src);
  let compressed = 0;
  file.on('data', (c) => (compressed += c.length));
  const gunzip = zlib.createGunzip();
  file.on('error', (e) => gunzip.destroy(e));
  file.pipe(gunzip);
  try {
    for await (const chunk of gunzip) {
      const ok = check.feed(chunk as Buffer, compressed);
      if (ok.length && !tar.stdin.write(ok)) await Promise.race([once(tar.stdin, 'drain'), exited]);
      if (check.ended || tarDone) break;
    }
  } catch (e) {
    tar.kill('SIGKILL');
    await exited;
    if (e instanceof StrataError) throw e;
    throw new StrataError(
      'E_ARCHIVE',
      `${src}: not a readable layer archive (${(e as Error).message.split('\n')[0].slice(0, 200)})`,
      'Export the layer again with "strata layer export".',
    );
  } finally {
    file.destroy();
    gunzip.destroy();
  }
  tar.stdin.end();
  const code = await exited;
  // tar's own reason first: a full disk must not read as a truncated archive.
  if (code !== 0) throw tarFailed(`unpacking ${src}`, stderr || `tar exited with status ${code}`);
  check.finish();
}

/** tar's own refusal as E_ARCHIVE, a full disk (or quota) as E_IO. */
export function tarFailed(what: string, stderr: string): StrataError {
  const lines = stderr.split('\n').filter((l) => l.trim());
  // A write that fails outright names the reason; a short one ("Wrote only 7680 of 10240 bytes") does not.
  const io = lines.find((l) =>
    /No space left on device|no space left on device|ENOSPC|EDQUOT|Disk quota exceeded|Cannot write|Wrote only \d+ of \d+ bytes/.test(l),
  );
  if (io) {
    const why = /Wrote only/.test(io) ? ' (disk full or over quota)' : '';
    return new StrataError('E_IO', `${what} failed: ${io.trim()}${why}`, 'Free some space on that disk; nothing was changed.');
  }
  const line = lines[0] ?? stderr;
  return new StrataError('E_ARCHIVE', `${what} failed: ${line.trim()}`, 'Nothing was changed.');
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** tar's sum of the header bytes with the checksum field as spaces (unsigned, or signed as old tars did). */
function checkSum(block: Buffer, bad: () => Error): void {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const want = readNumber(block, 148, 8);
  if (want !== unsigned && want !== signed) throw bad();
}

/** An octal field (spaces or NULs around it), or GNU's base-256 for large values; null if malformed. */
export function readNumber(block: Buffer, off: number, len: number): number | null {
  if (block[off] & 0x80) {
    if (block[off] === 0xff) return null; // negative
    let n = block[off] & 0x7f;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + block[i];
    return Number.isSafeInteger(n) ? n : null;
  }
  const text = block
    .toString('latin1', off, off + len)
    .replace(/^ +/, '')
    .replace(/[\0 ]+$/, '');
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : null;
}

function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
}

/** ustar (POSIX) splits long names into prefix and name; GNU and v7 headers use the name alone. */
function headerName(block: Buffer): string {
  const name = cString(block, 0, 100);
  const posix = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posix ? cString(block, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function printable(c: string): string {
  return /^[\x20-\x7e]$/.test(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}
