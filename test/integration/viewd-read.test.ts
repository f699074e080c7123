/**
 * strata-viewd's read side against real mounts: live switching seen at once by a running shell,
 * exact invalidation, the overlay merge in listings, hard links as one inode, names as bytes, and
 * 255-byte names.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import { writeTree } from './helpers';
import { VIEWD, Viewd, detach, layerDirs, rule, startViewd, table } from './viewd-helpers';
import { eventually } from '../wait';

/** A long-running shell to type commands into (its cwd stays inside the view). */
class Shell {
  private readonly sh: ChildProcessWithoutNullStreams;
  private out = '';
  private seq = 0;

  constructor(cwd: string) {
    this.sh = spawn('sh', [], { cwd });
    this.sh.stdout.on('data', (d) => (this.out += String(d)));
    this.sh.stderr.on('data', (d) => (this.out += String(d)));
  }

  run(cmd: string): Promise<string> {
    const mark = `__done_${++this.seq}__`;
    this.out = '';
    this.sh.stdin.write(`${cmd}\necho ${mark}\n`);
    return new Promise((res, rej) => {
      const t0 = Date.now();
      const poll = (): void => {
        const i = this.out.indexOf(mark + '\n');
        if (i >= 0) return res(this.out.slice(0, i));
        if (Date.now() - t0 > 20000) return rej(new Error(`no answer to ${cmd}: ${this.out}`));
        setTimeout(poll, 5);
      };
      poll();
    });
  }

  close(): void {
    this.sh.kill();
  }
}

describe('viewd: read side', function () {
  let dir: string;
  let base: string;
  let mnt: string;
  let layers: string;
  let v: Viewd | null = null;

  before(function () {
    if (!fs.existsSync(VIEWD)) throw new Error(`${VIEWD} is missing: run npx node-gyp rebuild`);
  });

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-viewd-read-'));
    base = path.join(dir, 'base');
    mnt = path.join(dir, 'mnt');
    layers = path.join(dir, 'layers');
    fs.mkdirSync(mnt);
    writeTree(base, { 'bin/tool': '#!/bin/sh\necho base\n', 'bin/only-base': 'b\n', 'src/main.c': 'int main;\n', README: 'r\n' });
    writeTree(layerDirs(layers, 'tools').files, { 'bin/tool': '#!/bin/sh\necho layer-tools-is-longer\n', 'bin/only-layer': 'l\n' });
    writeTree(layerDirs(layers, 'other').files, { tool: '#!/bin/sh\necho other\n' });
    v = await startViewd({ mnt, base, sock: path.join(dir, 'ctl.sock') });
  });

  afterEach(async function () {
    if (v) await v.stop();
    v = null;
    detach(mnt);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a shell whose cwd is inside a redirected folder sees every switch at once (0 stale reads) and keeps its cwd', async function () {
    const sh = new Shell(path.join(mnt, 'bin'));
    try {
      assert.strictEqual(await sh.run('cat tool; ./tool'), '#!/bin/sh\necho base\nbase\n');
      const states = [
        { layers: [rule('tools', { '/bin': 'bin' })], out: 'layer-tools-is-longer\n', ls: 'only-base only-layer tool' },
        { layers: [], out: 'base\n', ls: 'only-base tool' },
        { layers: [rule('other', { '/bin/tool': 'tool' })], out: 'other\n', ls: 'only-base tool' },
        {
          layers: [rule('tools', { '/bin': 'bin' }), rule('other', { '/bin/tool': 'tool' }, { priority: 1 })],
          out: 'other\n',
          ls: 'only-base only-layer tool',
        },
      ];
      let stale = 0;
      for (let i = 0; i < 24; i++) {
        const s = states[i % states.length];
        await v!.ctl.rules(table(layers, s.layers, i + 1));
        const got = await sh.run('./tool; ls | tr "\\n" " "; echo; /bin/pwd');
        const want = `${s.out}${s.ls} \n${path.join(mnt, 'bin')}\n`;
        if (got !== want) stale++;
        assert.strictEqual(got, want, `switch ${i + 1}`);
      }
      assert.strictEqual(stale, 0);
    } finally {
      sh.close();
    }
  });

  it('names cached as missing below a redirected folder, or removed through the view, appear when a switch brings them', async function () {
    writeTree(layerDirs(layers, 'tools').files, { 'bin/removed': 'layer\n', 'bin/sub/deep': 'deep\n' });
    fs.mkdirSync(path.join(base, 'bin/sub'));
    const missing = (p: string) => !fs.existsSync(path.join(mnt, p));
    // Cached as "no such file": asked for, or removed through the view (the kernel keeps the name, negative).
    assert.ok(missing('bin/only-layer') && missing('bin/sub/deep'));
    fs.writeFileSync(path.join(mnt, 'bin/removed'), 'base\n');
    fs.unlinkSync(path.join(mnt, 'bin/removed'));
    assert.ok(missing('bin/removed'));
    for (let i = 1; i <= 4; i++) {
      const on = i % 2 === 1;
      await v!.ctl.rules(table(layers, on ? [rule('tools', { '/bin': 'bin' })] : [], i));
      assert.strictEqual(missing('bin/only-layer'), !on, `switch ${i}: bin/only-layer`);
      assert.strictEqual(missing('bin/sub/deep'), !on, `switch ${i}: bin/sub/deep`);
      assert.strictEqual(missing('bin/removed'), !on, `switch ${i}: bin/removed`);
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8').includes('layer-tools'), on, `switch ${i}: bin/tool`);
    }
  });

  it('an open file keeps reading what it opened; new opens see the switch', async function () {
    const fd = fs.openSync(path.join(mnt, 'bin/tool'), 'r');
    try {
      await v!.ctl.rules(table(layers, [rule('tools', { '/bin': 'bin' })], 1));
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), '#!/bin/sh\necho layer-tools-is-longer\n');
      const buf = Buffer.alloc(100);
      const n = fs.readSync(fd, buf, 0, 100, 0);
      assert.strictEqual(buf.subarray(0, n).toString(), '#!/bin/sh\necho base\n');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a folder a switch took out, with a file in it still open: the base gaining that folder shows the base', async function () {
    writeTree(layerDirs(layers, 'tools').files, { 'only/x': 'layer\n' });
    await v!.ctl.rules(table(layers, [rule('tools', { '/only': 'only' })], 1));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'only/x'), 'utf8'), 'layer\n');
    const fd = fs.openSync(path.join(mnt, 'only/x'), 'r'); // its name stays in use through the switch
    try {
      await v!.ctl.rules(table(layers, [], 2));
      assert.ok(!fs.existsSync(path.join(mnt, 'only')));
      writeTree(base, { 'only/x': 'base\n' });
      await eventually('the base folder', () => {
        try {
          return fs.readFileSync(path.join(mnt, 'only/x'), 'utf8') === 'base\n';
        } catch {
          return false;
        }
      });
      const buf = Buffer.alloc(16);
      assert.strictEqual(buf.subarray(0, fs.readSync(fd, buf, 0, 16, 0)).toString(), 'layer\n', 'the open file keeps its content');
      await v!.ctl.rules(table(layers, [rule('tools', { '/only': 'only' })], 3));
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'only/x'), 'utf8'), 'layer\n');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('invalidates what changed, not what the kernel happens to hold', async function () {
    const many = path.join(base, 'many');
    fs.mkdirSync(many);
    const count = async (files: number): Promise<number> => {
      for (let i = 0; i < files; i++) fs.writeFileSync(path.join(many, `f${i}`), 'x');
      for (let i = 0; i < files; i++) fs.statSync(path.join(mnt, 'many', `f${i}`));
      fs.statSync(path.join(mnt, 'bin/tool'));
      await v!.ctl.rules(table(layers, [rule('tools', { '/bin': 'bin' })], files + 1));
      const r = await v!.ctl.rules(table(layers, [], files + 2));
      return r.invalidated;
    };
    const few = await count(5);
    const lots = await count(400);
    assert.ok(few > 0, 'the switch invalidated something');
    assert.strictEqual(lots, few, 'visiting 400 unrelated files does not change what a switch invalidates');
  });

  it('a layer rebuilt or reset in place, sent again in the same table, is seen at once', async function () {
    const tools = layerDirs(layers, 'tools');
    const t = (g: number) => table(layers, [rule('tools', { '/bin': 'bin' })], g);
    await v!.ctl.rules(t(1));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), '#!/bin/sh\necho layer-tools-is-longer\n');
    fs.appendFileSync(path.join(mnt, 'bin/tool'), 'echo appended\n');
    assert.match(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), /appended/);
    // A reset: the store renames the writable sublayer away and makes a new one.
    fs.renameSync(path.dirname(tools.writable), path.join(layers, 'tools', 'writable-old'));
    fs.mkdirSync(tools.writable, { recursive: true });
    await v!.ctl.rules(t(2));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), '#!/bin/sh\necho layer-tools-is-longer\n');
    // A rebuilt layer: a new files folder renamed over the old.
    writeTree(path.join(layers, 'tools', 'files-new'), { 'bin/tool': 'rebuilt\n' });
    fs.renameSync(tools.files, path.join(layers, 'tools', 'files-old'));
    fs.renameSync(path.join(layers, 'tools', 'files-new'), tools.files);
    await v!.ctl.rules(t(3));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), 'rebuilt\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(mnt, 'bin')).sort(), ['only-base', 'tool']);
  });

  it('a table that maps / is seen at once, names looked up in vain before included', async function () {
    writeTree(layerDirs(layers, 'all').files, { README: 'layer readme\n', newtop: 'n\n', 'src/extra.c': 'x\n' });
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'README'), 'utf8'), 'r\n');
    assert.ok(!fs.existsSync(path.join(mnt, 'newtop')));
    assert.ok(!fs.existsSync(path.join(mnt, 'src/extra.c')));
    const sh = new Shell(path.join(mnt, 'src'));
    try {
      // A shell already running (see docs/limits.md for one that starts during the switch).
      assert.strictEqual(await sh.run('pwd'), path.join(mnt, 'src') + '\n');
      await v!.ctl.rules(table(layers, [rule('all', { '/': '' })], 1));
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'README'), 'utf8'), 'layer readme\n');
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'newtop'), 'utf8'), 'n\n');
      assert.strictEqual(await sh.run('ls | tr "\\n" " "; cat extra.c'), 'extra.c main.c x\n');
      await v!.ctl.rules(table(layers, [], 2));
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'README'), 'utf8'), 'r\n');
      assert.ok(!fs.existsSync(path.join(mnt, 'newtop')));
      assert.strictEqual(await sh.run('ls | tr "\\n" " "; echo'), 'main.c \n');
    } finally {
      sh.close();
    }
  });

  it('honours forget: nodes of deleted files go when the kernel lets them go', async function () {
    const before = await v!.ctl.stats();
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(mnt, `tmp${i}`), 'x');
    assert.ok((await v!.ctl.stats()).nodes >= before.nodes + 20);
    for (let i = 0; i < 20; i++) fs.unlinkSync(path.join(mnt, `tmp${i}`));
    await eventually('the forgets', async () => {
      const s = await v!.ctl.stats();
      return s.nodes <= before.nodes && s.forgets >= before.forgets + 20;
    });
  });

  it('merges listings: layer over base, mapping ancestors, deletes and excludes', async function () {
    writeTree(layerDirs(layers, 'deep').files, { 'x/y': 'deep\n' });
    await v!.ctl.rules(
      table(
        layers,
        [rule('tools', { '/bin': 'bin' }, { deletes: ['/src'], excludes: ['/bin/only-base'] }), rule('deep', { '/opt/p/q': 'x' })],
        1,
      ),
    );
    assert.deepStrictEqual(fs.readdirSync(mnt).sort(), ['README', 'bin', 'opt']);
    assert.deepStrictEqual(fs.readdirSync(path.join(mnt, 'bin')).sort(), ['only-base', 'only-layer', 'tool']);
    assert.deepStrictEqual(fs.readdirSync(path.join(mnt, 'opt')), ['p']);
    assert.ok(fs.statSync(path.join(mnt, 'opt/p')).isDirectory(), 'a mapping ancestor is a folder');
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'opt/p/q/y'), 'utf8'), 'deep\n');
    assert.ok(!fs.existsSync(path.join(mnt, 'src/main.c')));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/only-base'), 'utf8'), 'b\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(mnt, 'bin'), { withFileTypes: true }).filter((d) => d.isFile()).length, 3);
  });

  it('a folder read in chunks by two readers while it changes: each sees every name once', async function () {
    const names = Array.from({ length: 3000 }, (_, i) => `a-name-of-some-length-${i}`);
    fs.mkdirSync(path.join(base, 'big'));
    for (const n of names) fs.writeFileSync(path.join(base, 'big', n), '');
    const dirs = [fs.opendirSync(path.join(mnt, 'big')), fs.opendirSync(path.join(mnt, 'big'))];
    const seen: string[][] = [[], []];
    for (let i = 0, open = 2; open > 0; i++) {
      open = 0;
      for (let k = 0; k < 2; k++) {
        const e = dirs[k].readSync();
        if (e) seen[k].push(e.name);
        if (e) open++;
      }
      // Each change through the view drops the kernel's cached listing: the readers go on at their offsets.
      if (i % 400 === 200) fs.writeFileSync(path.join(mnt, 'big', `added-${i}`), '');
      if (i % 400 === 300) fs.unlinkSync(path.join(mnt, 'big', `added-${i - 100}`));
    }
    for (const d of dirs) d.closeSync();
    for (const s of seen) {
      assert.strictEqual(new Set(s).size, s.length, 'no name twice');
      const got = new Set(s);
      assert.deepStrictEqual(
        names.filter((n) => !got.has(n)),
        [],
        'no name lost',
      );
    }
  });

  it('hard links are one inode, and nlink stays fresh through either name', async function () {
    fs.writeFileSync(path.join(base, 'h1'), 'linked\n');
    fs.linkSync(path.join(base, 'h1'), path.join(base, 'h2'));
    const a = fs.statSync(path.join(mnt, 'h1'));
    const b = fs.statSync(path.join(mnt, 'h2'));
    assert.strictEqual(a.ino, b.ino);
    assert.strictEqual(a.nlink, 2);
    fs.linkSync(path.join(mnt, 'h1'), path.join(mnt, 'h3'));
    assert.strictEqual(fs.statSync(path.join(mnt, 'h2')).nlink, 3);
    fs.unlinkSync(path.join(mnt, 'h1'));
    assert.strictEqual(fs.statSync(path.join(mnt, 'h2')).nlink, 2);
    fs.chmodSync(path.join(mnt, 'h3'), 0o600);
    assert.strictEqual(fs.statSync(path.join(mnt, 'h2')).mode & 0o777, 0o600);
    assert.strictEqual(fs.statSync(path.join(mnt, 'h2')).ino, fs.statSync(path.join(base, 'h2')).ino, 'the base keeps its inode numbers');
  });

  it('names are bytes: \\xff.bin and \\xfe.bin stay two files, in the base and under a mapping', async function () {
    await v!.ctl.rules(table(layers, [rule('tools', { '/bin': 'bin' })], 1));
    for (const d of ['', 'bin']) {
      const at = (b: number) => Buffer.concat([Buffer.from(path.join(mnt, d) + '/'), Buffer.from([b]), Buffer.from('.bin')]);
      fs.writeFileSync(at(0xff), 'ff');
      fs.writeFileSync(at(0xfe), 'fe');
      assert.strictEqual(fs.readFileSync(at(0xff), 'utf8'), 'ff');
      assert.strictEqual(fs.readFileSync(at(0xfe), 'utf8'), 'fe');
      const names = (fs.readdirSync(path.join(mnt, d), { encoding: 'buffer' }) as Buffer[]).map((n) => n.toString('hex'));
      assert.ok(names.includes('ff2e62696e') && names.includes('fe2e62696e'), names.join(' '));
    }
    assert.ok(
      fs.existsSync(Buffer.concat([Buffer.from(layerDirs(layers, 'tools').writable + '/bin/'), Buffer.from([0xfe]), Buffer.from('.bin')])),
    );
  });

  it('255-byte names: read, append (copy-up), remove (whiteout) under a mapping', async function () {
    const long = 'n'.repeat(255);
    writeTree(layerDirs(layers, 'tools').files, { [`bin/${long}`]: 'one\n' });
    await v!.ctl.rules(table(layers, [rule('tools', { '/bin': 'bin' })], 1));
    const p = path.join(mnt, 'bin', long);
    assert.strictEqual(fs.readFileSync(p, 'utf8'), 'one\n');
    fs.appendFileSync(p, 'two\n');
    assert.strictEqual(fs.readFileSync(p, 'utf8'), 'one\ntwo\n');
    assert.strictEqual(fs.readFileSync(path.join(layerDirs(layers, 'tools').files, 'bin', long), 'utf8'), 'one\n', 'the layer files stay');
    fs.unlinkSync(p);
    assert.ok(!fs.existsSync(p));
    assert.ok(!fs.readdirSync(path.join(mnt, 'bin')).includes(long));
    fs.writeFileSync(path.join(mnt, long), 'base\n');
    assert.strictEqual(fs.readFileSync(path.join(base, long), 'utf8'), 'base\n');
  });
});
