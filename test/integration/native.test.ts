/*
 * Integration test of the native FUSE binding: a passthrough mount served from
 * this process, exercised only from child processes (this process must never
 * touch its own mount: the request would wait for this very thread).
 */
import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { FuseHandlers, FuseMount, MountOptions, StatTuple, UTIME_NOW, UTIME_OMIT, mount, nativeAvailable } from '../../daemon/fuse/native';

const fsp = fs.promises;
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const ftruncate = promisify(fs.ftruncate);
const fstat = promisify(fs.fstat);
const C = fs.constants;

function sh(cmd: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', cmd], { timeout: 20000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out: stdout.toString(), err: stderr.toString() });
    });
  });
}
async function ok(cmd: string): Promise<string> {
  const r = await sh(cmd);
  assert.strictEqual(r.code, 0, `${cmd} failed: ${r.err}`);
  return r.out;
}

function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException)?.code;
  return (code && os.constants.errno[code as keyof typeof os.constants.errno]) || os.constants.errno.EIO;
}
/** run fn, reply(0, ...result) or reply(errno) */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each handler's reply takes its own result types
function serve(reply: (errno: number, ...r: any[]) => void, fn: () => Promise<unknown[]>): void {
  fn().then(
    (r) => reply(0, ...r),
    (err: unknown) => reply(errnoOf(err)),
  );
}
const BILLION = 1000000000n;
/** plain numbers: integers are exact up to 2^53, and times are split in sec + nsec */
function tuple(s: fs.BigIntStats): StatTuple {
  const t = (ns: bigint): number[] => [Number(ns / BILLION), Number(ns % BILLION)];
  return [s.mode, s.uid, s.gid, s.size, s.nlink, s.ino, s.rdev, s.blksize, s.blocks]
    .map(Number)
    .concat(t(s.atimeNs), t(s.mtimeNs), t(s.ctimeNs));
}
function typeBits(d: fs.Dirent): number {
  return d.isDirectory() ? C.S_IFDIR : d.isSymbolicLink() ? C.S_IFLNK : d.isFile() ? C.S_IFREG : 0;
}
function toTime(sec: number, nsec: number): number | undefined {
  return nsec === UTIME_OMIT ? undefined : nsec === UTIME_NOW ? Date.now() / 1000 : sec + nsec / 1e9;
}

/** A passthrough onto `root`. */
function passthrough(root: string): FuseHandlers {
  const b = (p: string): string => path.join(root, p);
  return {
    getattr: (p, fd, reply) =>
      serve(reply, async () => [tuple(p === null ? await fstat(fd, { bigint: true }) : await fsp.lstat(b(p), { bigint: true }))]),
    access: (p, mask, reply) =>
      serve(reply, async () => {
        await fsp.access(b(p), mask);
        return [];
      }),
    readdir: (p, reply) =>
      serve(reply, async () => {
        const ents = await fsp.readdir(b(p), { withFileTypes: true });
        return [ents.map((e) => e.name), ents.map(typeBits)];
      }),
    open: (p, flags, _pid, reply) => serve(reply, async () => [await openFd(b(p), flags)]),
    create: (p, mode, flags, _pid, reply) => serve(reply, async () => [await openFd(b(p), flags | C.O_CREAT, mode)]),
    release: (_p, fd, reply) =>
      serve(reply, async () => {
        await closeFd(fd);
        return [];
      }),
    truncate: (p, size, fd, reply) =>
      serve(reply, async () => {
        await (fd >= 0 ? ftruncate(fd, size) : fsp.truncate(b(p ?? ''), size));
        return [];
      }),
    unlink: (p, reply) =>
      serve(reply, async () => {
        await fsp.unlink(b(p));
        return [];
      }),
    rmdir: (p, reply) =>
      serve(reply, async () => {
        await fsp.rmdir(b(p));
        return [];
      }),
    mkdir: (p, mode, reply) =>
      serve(reply, async () => {
        await fsp.mkdir(b(p), mode);
        return [];
      }),
    rename: (from, to, flags, reply) =>
      flags
        ? reply(os.constants.errno.EINVAL)
        : serve(reply, async () => {
            await fsp.rename(b(from), b(to));
            return [];
          }),
    symlink: (target, p, reply) =>
      serve(reply, async () => {
        await fsp.symlink(target, b(p));
        return [];
      }),
    readlink: (p, reply) => serve(reply, async () => [await fsp.readlink(b(p))]),
    link: (from, to, reply) =>
      serve(reply, async () => {
        await fsp.link(b(from), b(to));
        return [];
      }),
    chmod: (p, mode, _fd, reply) =>
      serve(reply, async () => {
        await fsp.chmod(b(p ?? ''), mode);
        return [];
      }),
    chown: (p, uid, gid, _fd, reply) =>
      serve(reply, async () => {
        await fsp.chown(b(p ?? ''), uid, gid);
        return [];
      }),
    utimens: (p, as, an, ms, mn, _fd, reply) =>
      serve(reply, async () => {
        const st = await fsp.stat(b(p ?? ''));
        await fsp.utimes(b(p ?? ''), toTime(as, an) ?? st.atimeMs / 1000, toTime(ms, mn) ?? st.mtimeMs / 1000);
        return [];
      }),
    statfs: (p, reply) =>
      serve(reply, async () => {
        const s = await fsp.statfs(b(p));
        return [[s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 255]];
      }),
  };
}

const OPTS: MountOptions = { fsname: 'strata-test', subtype: 'strata', entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0 };

async function isMounted(mp: string): Promise<boolean> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === mp);
}

describe('native FUSE binding (libfuse 3)', function () {
  this.timeout(60000);
  let tmp: string, back: string, view: string, m: FuseMount;

  before(async function () {
    const avail = nativeAvailable();
    if (!avail.ok) throw new Error(avail.error);
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'strata-native-'));
    back = path.join(tmp, 'back');
    view = path.join(tmp, 'view');
    await fsp.mkdir(back);
    await fsp.mkdir(view);
    await fsp.writeFile(path.join(view, 'hidden-below'), 'x'); // mounting over a non-empty dir
    await fsp.writeFile(path.join(back, 'a.txt'), 'hello world\n');
    m = mount(view, passthrough(back), OPTS);
  });

  after(async function () {
    await m?.unmount();
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
  });

  it("reports a clear error for a bad mountpoint, and closes none of the process's descriptors", function () {
    // A failed mount once closed fd 0 (its helper-socket field was still zero on the failure path).
    let stdin: fs.Stats;
    try {
      stdin = fs.fstatSync(0);
    } catch {
      assert.strictEqual(fs.openSync('/dev/null', 'r'), 0); // fd 0 was free: give it something to lose
      stdin = fs.fstatSync(0);
    }
    assert.throws(() => mount(path.join(tmp, 'missing'), passthrough(back), OPTS), /missing: No such file or directory/);
    assert.throws(() => mount(path.join(view, 'sub'), passthrough(back), OPTS), /served by this process/);
    assert.throws(() => mount(tmp, passthrough(back), { ...OPTS, fsname: '' }), /fsname is required/);
    assert.strictEqual(fs.fstatSync(0).ino, stdin.ino, 'fd 0 is still the same file');
  });

  it('serves getattr, readdir and read from the backing dir', async function () {
    assert.strictEqual(await ok(`cat ${view}/a.txt`), 'hello world\n');
    assert.strictEqual(await ok(`stat -c '%s %F' ${view}/a.txt`), '12 regular file\n');
    assert.strictEqual(await ok(`ls -A ${view}`), 'a.txt\n');
    assert.match(await ok(`stat -f -c '%l' ${view}`), /^255$/m);
  });

  it('writes, creates, makes dirs, renames, links, chmods, truncates and unlinks', async function () {
    await ok(`printf 'new data' > ${view}/n.txt && dd if=/dev/zero of=${view}/z.bin bs=64k count=40 status=none`);
    assert.strictEqual(await fsp.readFile(path.join(back, 'n.txt'), 'utf8'), 'new data');
    assert.strictEqual((await fsp.stat(path.join(back, 'z.bin'))).size, 64 * 1024 * 40);
    await ok(`mkdir ${view}/d && mv ${view}/n.txt ${view}/d/m.txt && ln -s d/m.txt ${view}/l && ln ${view}/a.txt ${view}/hard`);
    assert.strictEqual(await ok(`cat ${view}/l`), 'new data');
    assert.strictEqual(await ok(`readlink ${view}/l`), 'd/m.txt\n');
    assert.strictEqual((await fsp.stat(path.join(back, 'a.txt'))).nlink, 2);
    await ok(`chmod 640 ${view}/d/m.txt && truncate -s 3 ${view}/d/m.txt`);
    const st = await fsp.stat(path.join(back, 'd', 'm.txt'));
    assert.strictEqual(st.mode & 0o777, 0o640);
    assert.strictEqual(await ok(`cat ${view}/d/m.txt`), 'new');
    await ok(`rm ${view}/l ${view}/d/m.txt ${view}/hard ${view}/z.bin && rmdir ${view}/d`);
    assert.deepStrictEqual((await fsp.readdir(back)).sort(), ['a.txt']);
    assert.notStrictEqual((await sh(`cat ${view}/nope`)).code, 0);
  });

  it('reports sizes above 4 GiB and reads at such offsets exactly', async function () {
    const big = path.join(back, 'big');
    const size = 5 * 1024 ** 3 + 7;
    const fd = await openFd(big, 'w');
    fs.writeSync(fd, Buffer.from('MARK'), 0, 4, size - 4);
    await closeFd(fd);
    assert.strictEqual(await ok(`stat -c %s ${view}/big`), `${size}\n`);
    assert.strictEqual(await ok(`tail -c 4 ${view}/big`), 'MARK');
    await fsp.unlink(big);
  });

  it('keeps nanosecond timestamps', async function () {
    await ok(`touch -d '2021-03-04 05:06:07.123456789' ${back}/t`);
    assert.match(await ok(`stat -c %y ${view}/t`), /2021-03-04 05:06:07\.123456789/);
  });

  it('serves the cached view until invalidate() and the new content after it', async function () {
    const back2 = path.join(tmp, 'back2'),
      view2 = path.join(tmp, 'view2');
    await fsp.mkdir(back2);
    await fsp.mkdir(view2);
    await fsp.writeFile(path.join(back2, 'f'), 'old');
    const m2 = mount(view2, passthrough(back2), { ...OPTS, entryTimeout: 60, attrTimeout: 60, kernelCache: true });
    try {
      assert.strictEqual(await ok(`cat ${view2}/f`), 'old');
      await fsp.writeFile(path.join(back2, 'f'), 'a longer, new content'); // behind the view's back
      assert.strictEqual(await ok(`stat -c %s ${view2}/f`), '3\n'); // cached attributes
      // cached pages and size (dd, not cat: a full fstat after a read refetches attributes, see the kernel's atime invalidation)
      assert.strictEqual(await ok(`dd if=${view2}/f bs=4k status=none`), 'old');
      assert.strictEqual(await m2.invalidate(['/f', '/not-known']), 1);
      assert.strictEqual(await ok(`stat -c %s ${view2}/f`), '21\n');
      assert.strictEqual(await ok(`cat ${view2}/f`), 'a longer, new content');
    } finally {
      await m2.unmount();
    }
  });

  it('answers EIO when a handler throws and keeps serving', async function () {
    const back3 = path.join(tmp, 'back3'),
      view3 = path.join(tmp, 'view3');
    await fsp.mkdir(back3);
    await fsp.mkdir(view3);
    await fsp.writeFile(path.join(back3, 'ok'), 'fine');
    const h = passthrough(back3);
    const errors: string[] = [];
    const m3 = mount(
      view3,
      {
        ...h,
        getattr: (p, fd, reply) => {
          if (p === '/boom') throw new Error('boom');
          h.getattr(p, fd, reply);
        },
      },
      { ...OPTS, onHandlerError: (op, err) => errors.push(`${op}: ${(err as Error).message}`) },
    );
    try {
      const r = await sh(`stat ${view3}/boom`);
      assert.notStrictEqual(r.code, 0);
      assert.match(r.err, /Input\/output error/);
      assert.deepStrictEqual(errors, ['getattr: boom']);
      assert.strictEqual(await ok(`cat ${view3}/ok`), 'fine');
    } finally {
      await m3.unmount();
    }
  });

  it('unmounts cleanly and idempotently, and exports the utime constants', async function () {
    assert.strictEqual(await isMounted(view), true);
    await Promise.all([m.unmount(), m.unmount()]);
    await m.unmount();
    assert.strictEqual(await isMounted(view), false);
    assert.deepStrictEqual(await fsp.readdir(view), ['hidden-below']);
    assert.strictEqual(UTIME_NOW, 2 ** 30 - 1);
    assert.strictEqual(UTIME_OMIT, 2 ** 30 - 2);
  });
});
