/** Reading /proc/self/mountinfo and clearing stale FUSE mounts left by a killed agent. */
import * as fs from 'fs';
import { execFile } from 'child_process';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({ mountpoint: unescape(left[4]), fstype: right[0], source: unescape(right[1] ?? '') });
  }
  return out;
}

export function mountsAt(mountpoint: string): MountEntry[] {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountpoint === mountpoint);
}

/** A Strata mount of this home (fsname) at `mountpoint`, live or stale. */
export function strataMountAt(mountpoint: string, fsname: string): MountEntry | undefined {
  return mountsAt(mountpoint).find((m) => m.source === fsname && m.fstype.startsWith('fuse'));
}

/** Lazily detach a mount: `umount -l` as root, else `fusermount3 -uz`. */
export function detach(mountpoint: string): Promise<void> {
  const [cmd, args] = process.getuid?.() === 0 ? ['umount', ['-l', mountpoint]] : ['fusermount3', ['-uz', mountpoint]];
  return new Promise((res, rej) =>
    execFile(cmd, args, (e, _o, stderr) => (e ? rej(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || e.message}`)) : res())),
  );
}
