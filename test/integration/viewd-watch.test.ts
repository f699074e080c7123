/**
 * The base changing behind a view: an --at view's base edited directly, and a shell whose cwd was
 * in the base before an in-place mount, show in the view without waiting for the cache timeout
 * (the server watches the base folders the kernel holds). The view's own writes are not turned
 * into invalidations of themselves.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { writeTree } from './helpers';
import { VIEWD, Viewd, detach, startViewd } from './viewd-helpers';
import { eventually } from '../wait';

describe('viewd: the base changing behind the view', function () {
  let dir: string;
  let base: string;
  let mnt: string;
  let v: Viewd | null = null;
  const read = (p: string): string | null => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  };

  before(function () {
    if (!fs.existsSync(VIEWD)) throw new Error(`${VIEWD} is missing: run npx node-gyp rebuild`);
  });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-viewd-watch-'));
    base = path.join(dir, 'base');
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    writeTree(base, { 'repo/file': 'one\n', 'repo/sub/deep': 'deep\n', top: 'top\n' });
  });

  afterEach(async function () {
    if (v) await v.stop();
    v = null;
    detach(mnt);
    detach(base);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an --at view shows direct edits, new files, deletes and renames of its base', async function () {
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), timeout: 3600 });
    assert.strictEqual(read(path.join(mnt, 'repo/file')), 'one\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(mnt, 'repo')).sort(), ['file', 'sub']);
    assert.strictEqual(read(path.join(mnt, 'repo/new')), null, 'a cached "no such file"');
    assert.strictEqual(read(path.join(mnt, 'repo/sub/deep')), 'deep\n');

    fs.writeFileSync(path.join(base, 'repo/file'), 'two, longer\n');
    await eventually('the edit', () => read(path.join(mnt, 'repo/file')) === 'two, longer\n');
    fs.writeFileSync(path.join(base, 'repo/new'), 'new\n');
    await eventually(
      'the new file',
      () => read(path.join(mnt, 'repo/new')) === 'new\n' && fs.readdirSync(path.join(mnt, 'repo')).includes('new'),
    );
    fs.unlinkSync(path.join(base, 'repo/sub/deep'));
    await eventually(
      'the delete',
      () => !fs.existsSync(path.join(mnt, 'repo/sub/deep')) && fs.readdirSync(path.join(mnt, 'repo/sub')).length === 0,
    );
    // git's way: write a lock file, rename it over the file.
    fs.writeFileSync(path.join(base, 'repo/file.lock'), 'three\n');
    fs.renameSync(path.join(base, 'repo/file.lock'), path.join(base, 'repo/file'));
    await eventually(
      'the rename',
      () => read(path.join(mnt, 'repo/file')) === 'three\n' && !fs.readdirSync(path.join(mnt, 'repo')).includes('file.lock'),
    );
  });

  it('a shell whose cwd was in the base before an in-place mount writes to the base; the view shows it', async function () {
    const sh = spawn('sh', ['-c', 'read go; echo written > file2; read done'], {
      cwd: path.join(base, 'repo'),
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      await new Promise((r) => setTimeout(r, 100));
      v = await startViewd({ mnt: base, base, sock: path.join(dir, 'ctl.sock'), inPlace: true, timeout: 3600 });
      assert.deepStrictEqual(fs.readdirSync(path.join(base, 'repo')).sort(), ['file', 'sub']);
      assert.strictEqual(read(path.join(base, 'repo/file2')), null);
      sh.stdin.write('go\n');
      await eventually('the write behind the mount', () => read(path.join(base, 'repo/file2')) === 'written\n');
    } finally {
      sh.stdin.end('done\n');
      sh.kill();
    }
  });

  it('writes through the view are not invalidated again as changes of the base', async function () {
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), timeout: 3600 });
    fs.readdirSync(path.join(mnt, 'repo'));
    const before = (await v.ctl.stats()).invalidations;
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(mnt, 'repo', `w${i}`), `through the view ${i}\n`);
    for (let i = 0; i < 20; i++) fs.renameSync(path.join(mnt, 'repo', `w${i}`), path.join(mnt, 'repo', `r${i}`));
    // A change behind the view, after ours: once it shows, the watcher has seen all of ours.
    fs.writeFileSync(path.join(base, 'repo/marker'), 'm\n');
    await eventually('the marker', () => read(path.join(mnt, 'repo/marker')) === 'm\n');
    const spent = (await v.ctl.stats()).invalidations - before;
    assert.ok(spent <= 6, `${spent} invalidations for 40 changes made through the view and one behind it`);
    for (let i = 0; i < 20; i++) assert.strictEqual(read(path.join(mnt, 'repo', `r${i}`)), `through the view ${i}\n`);
  });

  it('attribute changes through the view are not invalidated again; one behind the view still shows', async function () {
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock'), timeout: 3600 });
    const files = Array.from({ length: 10 }, (_, i) => path.join(mnt, 'repo', `a${i}`));
    for (const f of files) fs.writeFileSync(f, 'x\n');
    fs.writeFileSync(path.join(base, 'repo/marker'), 'm\n');
    await eventually('the marker', () => read(path.join(mnt, 'repo/marker')) === 'm\n');
    const before = (await v.ctl.stats()).invalidations;
    for (const f of files) {
      fs.chmodSync(f, 0o640);
      fs.utimesSync(f, 1000, 2000);
      fs.chownSync(f, 0, 0);
    }
    // A change behind the view, after ours: once it shows, the watcher has seen all of ours.
    fs.chmodSync(path.join(base, 'repo/a0'), 0o604);
    await eventually('the chmod behind the view', () => (fs.statSync(files[0]).mode & 0o777) === 0o604);
    const spent = (await v.ctl.stats()).invalidations - before;
    assert.ok(spent <= 3, `${spent} invalidations for 30 attribute changes through the view and one behind it`);
    assert.strictEqual(fs.statSync(files[1]).mode & 0o777, 0o640);
    assert.strictEqual(fs.statSync(files[1]).mtimeMs, 2000 * 1000);
  });
});
