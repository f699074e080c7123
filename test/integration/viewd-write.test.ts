/**
 * strata-viewd's write side: the operations real tools use (rename flags, xattrs, O_DIRECT,
 * fallocate, copy_file_range, locks, nanosecond times, FIFOs), copy-up, whiteouts and opaque
 * folders kept in META_DIR (the first view's markers read too), and the permission model checked
 * as a second, non-root user against a root server mounted with allow_other.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { isRoot, writeTree } from './helpers';
import { VIEWD, Viewd, detach, layerDirs, rule, startViewd, table } from './viewd-helpers';
import { eventually } from '../wait';

const PY = '/usr/bin/python3';
const USER = 'strata-test';

/** renameat2 through libc (Node has no binding for its flags). */
function renameat2(from: string, to: string, flags: number): number {
  const r = spawnSync(
    PY,
    [
      '-c',
      `import ctypes,sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
print(0 if r == 0 else ctypes.get_errno())`,
      from,
      to,
      String(flags),
    ],
    { encoding: 'utf8' },
  );
  return Number(r.stdout.trim());
}

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const { EEXIST, EXDEV } = os.constants.errno;

describe('viewd: write side', function () {
  let dir: string;
  let base: string;
  let mnt: string;
  let layers: string;
  let tools: ReturnType<typeof layerDirs>;
  let v: Viewd | null = null;
  const m = (p: string) => path.join(mnt, p);

  before(function () {
    if (!fs.existsSync(VIEWD)) throw new Error(`${VIEWD} is missing: run npx node-gyp rebuild`);
  });

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-viewd-write-'));
    base = path.join(dir, 'base');
    mnt = path.join(dir, 'mnt');
    layers = path.join(dir, 'layers');
    fs.mkdirSync(mnt);
    writeTree(base, { a: 'A', b: 'B', 'd/f': 'base f\n' });
    tools = layerDirs(layers, 'tools');
    writeTree(tools.files, { 'm/lf': 'lower\n', 'm/ld/x': 'lx\n', 'm/hidden': 'old marker\n', 'm/gone/y': 'y\n' });
    // The first view's markers in the writable sublayer: a whiteout and an opaque folder.
    writeTree(tools.writable, { 'm/.wh.hidden': '', 'm/gone/.wh..wh..opq': '' });
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), rules: table(layers, [rule('tools', { '/m': 'm' })], 1) });
  });

  afterEach(async function () {
    if (v) await v.stop();
    v = null;
    detach(mnt);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reads the first view's markers: whiteout and opaque folder", function () {
    assert.deepStrictEqual(fs.readdirSync(m('m')).sort(), ['gone', 'ld', 'lf']);
    assert.ok(!fs.existsSync(m('m/hidden')));
    assert.deepStrictEqual(fs.readdirSync(m('m/gone')), []);
  });

  it('copies up on write, keeps the layer files, and whites out deletes in META_DIR', async function () {
    fs.appendFileSync(m('m/lf'), 'more\n');
    assert.strictEqual(fs.readFileSync(m('m/lf'), 'utf8'), 'lower\nmore\n');
    assert.strictEqual(fs.readFileSync(path.join(tools.files, 'm/lf'), 'utf8'), 'lower\n');
    assert.strictEqual(fs.readFileSync(path.join(tools.writable, 'm/lf'), 'utf8'), 'lower\nmore\n');
    fs.rmSync(m('m/ld'), { recursive: true });
    assert.ok(!fs.existsSync(m('m/ld')));
    fs.mkdirSync(m('m/ld'));
    assert.deepStrictEqual(fs.readdirSync(m('m/ld')), [], 'a folder recreated over a deleted one is opaque');
    const marks = fs.readFileSync(path.join(tools.meta, 'marks'), 'utf8');
    assert.match(marks, /^\+o m\/ld$/m);
    assert.ok(
      !fs.readdirSync(path.join(tools.writable, 'm')).some((n) => n.startsWith('.wh.') && n !== '.wh.hidden'),
      'no new marker files',
    );
    // A restarted server reads the record back.
    await v!.stop();
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), rules: table(layers, [rule('tools', { '/m': 'm' })], 2) });
    assert.deepStrictEqual(fs.readdirSync(m('m')).sort(), ['gone', 'ld', 'lf']);
    assert.deepStrictEqual(fs.readdirSync(m('m/ld')), []);
    assert.strictEqual(fs.readFileSync(m('m/lf'), 'utf8'), 'lower\nmore\n');
  });

  it('renames with RENAME_NOREPLACE and RENAME_EXCHANGE, and gives EXDEV for merged folders', function () {
    assert.strictEqual(renameat2(m('a'), m('b'), RENAME_NOREPLACE), EEXIST);
    assert.strictEqual(renameat2(m('a'), m('b'), RENAME_EXCHANGE), 0);
    assert.strictEqual(fs.readFileSync(m('a'), 'utf8'), 'B');
    assert.strictEqual(fs.readFileSync(m('b'), 'utf8'), 'A');
    assert.strictEqual(renameat2(m('m/lf'), m('m/ld/x'), RENAME_EXCHANGE), 0);
    assert.strictEqual(fs.readFileSync(m('m/lf'), 'utf8'), 'lx\n');
    assert.strictEqual(fs.readFileSync(m('m/ld/x'), 'utf8'), 'lower\n');
    assert.strictEqual(renameat2(m('m/ld'), m('m/ld2'), 0), EXDEV);
    assert.strictEqual(renameat2(m('a'), m('m/a'), 0), EXDEV, 'base and layer are two places');
    fs.renameSync(m('m/lf'), m('m/lf2'));
    assert.deepStrictEqual(fs.readdirSync(m('m')).sort(), ['gone', 'ld', 'lf2']);
    fs.mkdirSync(m('m/new'));
    fs.writeFileSync(m('m/new/z'), 'z');
    fs.renameSync(m('m/new'), m('m/new2'));
    assert.strictEqual(fs.readFileSync(m('m/new2/z'), 'utf8'), 'z');
  });

  it('sets and reads attributes: modes, owners, nanosecond times, xattrs', function () {
    fs.chmodSync(m('m/lf'), 0o640);
    assert.strictEqual(fs.statSync(m('m/lf')).mode & 0o777, 0o640);
    assert.strictEqual(fs.statSync(path.join(tools.files, 'm/lf')).mode & 0o777, 0o755, 'the layer files stay');
    fs.chownSync(m('a'), 1234, 5678);
    assert.deepStrictEqual([fs.statSync(m('a')).uid, fs.statSync(m('a')).gid], [1234, 5678]);
    const r = spawnSync(
      PY,
      [
        '-c',
        `import os,sys
os.utime(sys.argv[1], ns=(1577836800123456789, 1577836800987654321))
os.setxattr(sys.argv[1], 'user.k', b'v')
os.setxattr(sys.argv[2], 'user.k', b'layer')
print(os.stat(sys.argv[1]).st_mtime_ns, os.getxattr(sys.argv[1], 'user.k').decode(), os.listxattr(sys.argv[1]), os.getxattr(sys.argv[2], 'user.k').decode())
os.removexattr(sys.argv[1], 'user.k')
print(os.listxattr(sys.argv[1]))`,
        m('b'),
        m('m/ld/x'),
      ],
      { encoding: 'utf8' },
    );
    assert.strictEqual(r.stdout, "1577836800987654321 v ['user.k'] layer\n[]\n", r.stderr);
    fs.truncateSync(m('m/ld/x'), 1);
    assert.strictEqual(fs.readFileSync(m('m/ld/x'), 'utf8'), 'l');
  });

  it('does what real tools do: O_DIRECT, fallocate, copy_file_range, flock and POSIX locks, FIFOs, devices as root', function () {
    execFileSync('dd', ['if=/dev/zero', `of=${m('direct')}`, 'bs=4096', 'count=8', 'oflag=direct'], { stdio: 'ignore' });
    assert.strictEqual(fs.statSync(m('direct')).size, 32768);
    execFileSync('fallocate', ['-l', '1M', m('fa')]);
    assert.strictEqual(fs.statSync(m('fa')).size, 1 << 20);
    const r = spawnSync(
      PY,
      [
        '-c',
        `import os,sys
i = os.open(sys.argv[1], os.O_RDONLY); o = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY, 0o644)
print(os.copy_file_range(i, o, 5))`,
        m('d/f'),
        m('cfr'),
      ],
      { encoding: 'utf8' },
    );
    assert.strictEqual(r.stdout.trim(), '5', r.stderr);
    assert.strictEqual(fs.readFileSync(m('cfr'), 'utf8'), 'base ');
    assert.strictEqual(
      execFileSync('flock', [m('a'), '-c', 'flock -n ' + m('a') + ' -c true || echo busy'], { encoding: 'utf8' }),
      'busy\n',
    );
    const lk = spawnSync(
      PY,
      [
        '-c',
        `import fcntl,os,subprocess,sys
f = open(sys.argv[1], 'r+'); fcntl.lockf(f, fcntl.LOCK_EX)
probe = 'import fcntl,sys\\ntry:\\n  fcntl.lockf(open(sys.argv[1], "r+"), fcntl.LOCK_EX | fcntl.LOCK_NB); print("free")\\nexcept OSError: print("held")'
print(subprocess.run([sys.executable, '-c', probe, sys.argv[1]], capture_output=True, text=True).stdout.strip())`,
        m('b'),
      ],
      { encoding: 'utf8' },
    );
    assert.strictEqual(lk.stdout.trim(), 'held', lk.stderr);
    assert.strictEqual(
      execFileSync('sh', ['-c', `mkfifo ${m('m/fifo')} && (echo through > ${m('m/fifo')} &) && cat ${m('m/fifo')}`], { encoding: 'utf8' }),
      'through\n',
    );
    assert.ok(fs.statSync(path.join(tools.writable, 'm/fifo')).isFIFO());
    if (isRoot()) {
      execFileSync('mknod', [m('null'), 'c', '1', '3']);
      assert.ok(fs.statSync(m('null')).isCharacterDevice());
    }
  });

  /** The server again, as before but with --no-passthrough (and the same table). */
  const restartWithoutPassthrough = async (allowOther = false): Promise<void> => {
    await v!.stop();
    const rules = table(layers, [rule('tools', { '/m': 'm' })], 2);
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), allowOther, noPassthrough: true, rules });
  };

  it('as root, writes go to the real file without a WRITE request (passthrough); --no-passthrough serves them itself', async function () {
    const big = Buffer.alloc(4 << 20, 7);
    const before = (await v!.ctl.stats()).writes;
    fs.writeFileSync(m('big'), big);
    assert.strictEqual((await v!.ctl.stats()).writes, before, 'no WRITE reached the server');
    assert.ok(fs.readFileSync(path.join(base, 'big')).equals(big));
    await restartWithoutPassthrough();
    fs.writeFileSync(m('big2'), big);
    assert.ok((await v!.ctl.stats()).writes >= 4, 'the server wrote it, a WRITE per MiB at most');
    assert.ok(fs.readFileSync(path.join(base, 'big2')).equals(big));
  });

  it('writes in many small chunks cost no GETXATTR each (KILLPRIV_V2), with and without passthrough', async function () {
    const chunks = async (name: string): Promise<number> => {
      const before = (await v!.ctl.stats()).getxattrs;
      const fd = fs.openSync(m(name), 'w');
      for (let i = 0; i < 200; i++) fs.writeSync(fd, Buffer.alloc(4096, i));
      fs.closeSync(fd);
      assert.strictEqual(fs.statSync(path.join(base, name)).size, 200 * 4096);
      return (await v!.ctl.stats()).getxattrs - before;
    };
    // Without KILLPRIV_V2 the kernel asks for security.capability before each of the 200 writes.
    assert.ok((await chunks('chunked')) <= 2, 'one check per file, not per write');
    await restartWithoutPassthrough();
    assert.ok((await chunks('chunked2')) <= 2, 'the same through the page cache');
  });

  it('one file open many times at once: readers, writers and mmap agree, also across a copy-up under a reader', function () {
    // In passthrough the kernel takes every open of one inode in one mode (EIO otherwise).
    const r = spawnSync(
      PY,
      [
        '-c',
        `import mmap, os, sys
b = os.open(sys.argv[1], os.O_RDWR)
a = os.open(sys.argv[1], os.O_RDONLY)
os.pwrite(b, b"BA", 0)
m = mmap.mmap(a, 0, prot=mmap.PROT_READ)
print(os.pread(a, 1, 0).decode(), m[:2].decode())
lower = os.open(sys.argv[2], os.O_RDONLY)
w = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
os.write(w, b"more\\n")
print(os.pread(lower, 64, 0).decode().strip())
for fd in (a, b, lower, w): os.close(fd)`,
        m('a'),
        m('m/lf'),
      ],
      { encoding: 'utf8' },
    );
    assert.strictEqual(r.stderr, '');
    assert.strictEqual(r.stdout, 'B BA\nlower\n');
    assert.strictEqual(fs.readFileSync(path.join(tools.writable, 'm/lf'), 'utf8'), 'lower\nmore\n');
    assert.strictEqual(fs.readFileSync(path.join(tools.files, 'm/lf'), 'utf8'), 'lower\n');
  });

  describe('as a second, non-root user against a root server (allow_other)', function () {
    let uid: number;
    let gid: number;
    const as = (cmd: string): { code: number; out: string } => {
      const r = spawnSync('runuser', ['-u', USER, '--', 'sh', '-c', cmd], {
        encoding: 'utf8',
        timeout: 30000,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      });
      return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
    };

    beforeEach(async function () {
      if (!isRoot()) this.skip();
      if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', USER]);
      uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
      gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }));
      await v!.stop();
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(base, 0o1777);
      writeTree(base, { secret: 'root only\n' });
      fs.chmodSync(path.join(base, 'secret'), 0o600);
      writeTree(tools.files, { 'm/shared/tool': 'x' });
      fs.chmodSync(path.join(tools.files, 'm/shared'), 0o777);
      v = await startViewd({
        mnt,
        base,
        sock: path.join(dir, 'ctl.sock'),
        allowOther: true,
        rules: table(layers, [rule('tools', { '/m': 'm' })], 1),
      });
    });

    it("cannot read another user's 0600 file through the view", function () {
      const r = as(`cat ${m('secret')}`);
      assert.notStrictEqual(r.code, 0);
      assert.match(r.out, /Permission denied/);
    });

    it('owns what it creates, in the base and in a layer, with its umask applied once', function () {
      let r = as(`umask 000 && touch ${m('mine')} && mkdir ${m('mydir')} && touch ${m('m/shared/mine')}`);
      assert.strictEqual(r.code, 0, r.out);
      for (const p of [m('mine'), path.join(base, 'mine'), m('m/shared/mine'), path.join(tools.writable, 'm/shared/mine')]) {
        const st = fs.statSync(p);
        assert.deepStrictEqual([st.uid, st.gid], [uid, gid], p);
      }
      assert.strictEqual(fs.statSync(m('mine')).mode & 0o777, 0o666);
      assert.strictEqual(fs.statSync(m('mydir')).mode & 0o777, 0o777);
      r = as(`umask 022 && touch ${m('mine2')}`);
      assert.strictEqual(r.code, 0, r.out);
      assert.strictEqual(fs.statSync(m('mine2')).mode & 0o777, 0o644);
    });

    it('a copied shell made setuid runs as its owner, not root; a write clears setuid', function () {
      let r = as(`cp /bin/sh ${m('sh2')} && chmod 4755 ${m('sh2')} && ${m('sh2')} -c 'id -u; id -ru'`);
      assert.strictEqual(r.code, 0, r.out);
      assert.strictEqual(r.out, `${uid}\n${uid}\n`);
      assert.strictEqual(fs.statSync(m('sh2')).uid, uid);
      r = as(`echo >> ${m('sh2')}`);
      assert.strictEqual(r.code, 0, r.out);
      assert.strictEqual(fs.statSync(m('sh2')).mode & 0o7777, 0o755, 'setuid cleared by the write');
      assert.notStrictEqual(as(`chown 0 ${m('sh2')}`).code, 0, 'no giving files to root');
      assert.notStrictEqual(as(`mknod ${m('mem')} c 1 1`).code, 0, 'no devices for an ordinary user');
    });

    it("a write to another user's set-id file clears setuid and setgid; root's write keeps them; any write drops security.capability", function () {
      // In the base and in a layer's writable copy: both are written with the server's credentials.
      for (const f of ['shared-suid', 'm/shared/tool']) {
        fs.writeFileSync(m(f), 'x\n');
        fs.chmodSync(m(f), 0o6777);
        const r = as(`echo y >> ${m(f)}`);
        assert.strictEqual(r.code, 0, r.out);
        assert.strictEqual(fs.statSync(m(f)).mode & 0o7777, 0o777, `${f}: set-id bits cleared by a non-owner's write`);
        assert.strictEqual(fs.statSync(m(f)).uid, 0);
      }
      fs.writeFileSync(m('root-suid'), 'x\n');
      fs.chmodSync(m('root-suid'), 0o6755);
      fs.appendFileSync(m('root-suid'), 'y\n');
      assert.strictEqual(fs.statSync(m('root-suid')).mode & 0o7777, 0o6755, 'CAP_FSETID keeps them');
      execFileSync('setcap', ['cap_net_raw+ep', m('root-suid')]);
      assert.match(execFileSync('getcap', [m('root-suid')], { encoding: 'utf8' }), /cap_net_raw/);
      fs.appendFileSync(m('root-suid'), 'z\n');
      assert.strictEqual(execFileSync('getcap', [m('root-suid')], { encoding: 'utf8' }).trim(), '', 'security.capability dropped');
    });

    it('clearing set-id bits is one invalidation per file: the base watcher does not take it for a change behind the view', async function () {
      const files = Array.from({ length: 8 }, (_, i) => `sxid${i}`);
      for (const f of files) {
        fs.writeFileSync(m(f), 'x\n');
        fs.chmodSync(m(f), 0o6777);
        fs.statSync(m(f)); // cached by the kernel
      }
      const before = (await v!.ctl.stats()).invalidations;
      const r = as(files.map((f) => `echo y >> ${m(f)}`).join(' && '));
      assert.strictEqual(r.code, 0, r.out);
      // A change behind the view, after ours: once it shows, the watcher has seen all of ours.
      fs.chmodSync(path.join(base, files[0]), 0o604);
      await eventually('the chmod behind the view', () => (fs.statSync(m(files[0])).mode & 0o7777) === 0o604);
      const spent = (await v!.ctl.stats()).invalidations - before;
      for (const f of files.slice(1)) assert.strictEqual(fs.statSync(m(f)).mode & 0o7777, 0o777, `${f}: cleared`);
      // 8 (one each) and the change behind the view; 16-17 when the watcher took ours for changes.
      assert.ok(spent <= files.length + 2, `${spent} invalidations for ${files.length} files whose set-id bits a write cleared`);
    });

    /** USER opens `file` for appending, then meanwhile() runs, then USER appends "y". */
    const whileHeld = (file: string, meanwhile: () => void): Promise<void> => {
      const holder = spawn('runuser', ['-u', USER, '--', 'sh', '-c', `exec 3>>${file}; echo open; read line; echo y >&3`], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let failed: unknown = null;
      holder.stdout!.once('data', () => {
        try {
          meanwhile();
        } catch (e) {
          failed = e;
        }
        holder.stdin!.end('go\n');
      });
      return new Promise((resolve, reject) =>
        holder.once('exit', (code) => (failed ? reject(failed) : code === 0 ? resolve() : reject(new Error(`holder exited ${code}`)))),
      );
    };

    /** Root chmods NAME (made 0666 by root) to MODE while USER holds it open to append "y"; the mode seen then. */
    const chmodWhileHeld = async (name: string, mode: number): Promise<number> => {
      fs.writeFileSync(m(name), 'x\n');
      fs.chmodSync(m(name), 0o666);
      let seen = -1;
      await whileHeld(m(name), () => {
        fs.chmodSync(m(name), mode);
        seen = fs.statSync(m(name)).mode & 0o7777;
      });
      assert.strictEqual(fs.readFileSync(m(name), 'utf8'), 'x\ny\n');
      return seen;
    };

    it("set-id bits stay exact where a passthrough write cannot clear them: a non-owner's open clears them, a chmod adding them while such a writer is open is refused them", async function () {
      // USER's passthrough writes never reach the server, so they could not clear what chmod sets.
      assert.strictEqual(await chmodWhileHeld('held', 0o4777), 0o777, 'not set while a non-owner writes');
      // With nobody writing it, the bits are set; a non-owner's open for writing clears them.
      fs.chmodSync(m('held'), 0o6777);
      assert.strictEqual(fs.statSync(m('held')).mode & 0o7777, 0o6777);
      assert.strictEqual(as(`: >> ${m('held')}`).code, 0);
      assert.strictEqual(fs.statSync(m('held')).mode & 0o7777, 0o777, 'cleared by the open for writing');
      // The owner's own open does not hold them back (cp -p: write, then fchmod, then close).
      const r = as(
        `python3 -c "import os; fd = os.open('${m('own')}', os.O_WRONLY | os.O_CREAT, 0o755); os.write(fd, b'x'); os.fchmod(fd, 0o4755); print(oct(os.fstat(fd).st_mode & 0o7777)); os.close(fd)"`,
      );
      assert.strictEqual(r.out.trim(), '0o4755', r.out);
      assert.strictEqual(fs.statSync(m('own')).mode & 0o7777, 0o4755);
    });

    it("through the page cache (no passthrough) a non-owner's write clears set-id bits set after it opened", async function () {
      await restartWithoutPassthrough(true);
      assert.strictEqual(await chmodWhileHeld('pc', 0o6777), 0o6777, 'set: the write that follows reaches the server');
      assert.strictEqual(fs.statSync(m('pc')).mode & 0o7777, 0o777, 'cleared by the write');
    });

    it('makes and uses FIFOs', function () {
      const r = as(`mkfifo ${m('fifo')} && (echo piped > ${m('fifo')} &) && cat ${m('fifo')}`);
      assert.strictEqual(r.out, 'piped\n');
      assert.strictEqual(fs.statSync(m('fifo')).uid, uid);
    });

    it('cannot change what the layer owns for root', function () {
      assert.notStrictEqual(as(`echo x >> ${m('m/lf')}`).code, 0);
      assert.notStrictEqual(as(`rm ${m('m/lf')}`).code, 0);
      assert.strictEqual(fs.readFileSync(m('m/lf'), 'utf8'), 'lower\n');
    });
  });
});
