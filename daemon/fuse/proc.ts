/**
 * Who holds files of a view open, read from /proc. FUSE reports the thread that opened a file and
 * sends RELEASE only after close() returns, so each report is checked against the process's fds,
 * executable and mappings. Link targets are strings: this never enters the agent's own mount.
 */
import * as fs from 'fs';
import { OpenFileHolder } from '../../protocol';

/** The openers (thread id, absolute path in the view) that still hold their file, by process. */
export function liveHolders(opened: { pid: number; file: string }[]): OpenFileHolder[] {
  const out: OpenFileHolder[] = [];
  for (const o of opened) {
    const tgid = readTgid(o.pid);
    if (stillHolds(tgid, o.file)) out.push({ pid: tgid, command: readComm(tgid), path: o.file });
  }
  return out;
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Does process `pid` still hold `file` (an fd, its executable, or a mapping)? A switch that
 * replaced the file invalidated its old entry: the kernel then names it "FILE (deleted)".
 */
function stillHolds(pid: number, file: string): boolean {
  const gone = `${file} (deleted)`;
  const same = (target: string) => target === file || target === gone;
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (same(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
      } catch {
        /* closed meanwhile */
      }
    }
    if (same(fs.readlinkSync(`/proc/${pid}/exe`))) return true;
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    return maps.includes(` ${file}\n`) || maps.includes(` ${gone}\n`);
  } catch {
    return false; // the process is gone (or not ours to inspect)
  }
}

/** FUSE reports the calling thread; name its process. */
function readTgid(tid: number): number {
  try {
    const m = /^Tgid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : tid;
  } catch {
    return tid;
  }
}
