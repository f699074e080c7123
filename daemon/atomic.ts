import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { StrataError } from '../shared/errors';

/**
 * Write a file so readers see the old or the new content, never a mix: temp file, fsync, rename.
 * On failure (a full disk) the old file stays, the temp file is removed, and the error is E_IO
 * naming the file and the reason.
 */
export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = tempName(file);
  try {
    const fh = await fsp.open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw saveFailed(file, e);
  }
}

/**
 * The same without the fsync, and synchronously (a small file on a path where each trip through
 * libuv's thread pool costs milliseconds under load): readers still see the old or the new
 * content, and the rename survives the process being killed. syncFile, later, makes it durable.
 */
export function writeFileAtomicUnsynced(file: string, data: string, mode = 0o600): void {
  const tmp = tempName(file);
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* removed on the next start (removeStaleTemps) */
    }
    throw saveFailed(file, e);
  }
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
}

function saveFailed(file: string, e: unknown): StrataError {
  const err = e as NodeJS.ErrnoException;
  return new StrataError(
    'E_IO',
    `could not save ${file}: ${err.message}`,
    err.code === 'ENOSPC' ? 'Free some space on that disk; nothing was changed.' : 'Nothing was changed.',
  );
}

/** Remove temp files a killed process left beside `file` (call it before anyone writes the file). */
export async function removeStaleTemps(file: string): Promise<void> {
  const prefix = `.${path.basename(file)}.`;
  const dir = path.dirname(file);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => fsp.rm(path.join(dir, n), { force: true })));
}

/** Make a file written by writeFileAtomicUnsynced durable: its content, then its name in the folder. */
export async function syncFile(file: string): Promise<void> {
  for (const p of [file, path.dirname(file)]) {
    const fh = await fsp.open(p, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
