/**
 * One request never holds the agent: a path that reaches the agent's own view through a symlink or
 * a bind mount is refused at once; an import in progress does not hold switches; a gzip bomb (3 MB
 * of gzip, 3 GiB of zeros) is refused with E_ARCHIVE while activate keeps working; the import limits
 * are set by environment; what tar refuses comes back as E_ARCHIVE.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { execFileSync, spawnSync } from 'child_process';
import { Env, isRoot, makeEnv, writeTree } from './helpers';
import { END, entry } from '../tar';
import { eventually } from '../wait';

const SPEC = (name: string) =>
  entry({
    name: 'layer.json',
    data: JSON.stringify({
      format: 2,
      name,
      version: '1',
      priority: 100,
      mappings: [{ original: '/', destination: '/' }],
      excludes: [],
      deletes: [],
    }),
  });
const FILES = entry({ name: 'files/', type: '5' });

/** A layer archive of 3 GiB of zeros in about 3 MB: one gzip member per MiB of zeros. */
function writeBomb(file: string): void {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, zlib.gzipSync(Buffer.concat([SPEC('bomb'), FILES, entry({ name: 'files/zeros', size: 3 * 2 ** 30 })])));
  const mib = zlib.gzipSync(Buffer.alloc(2 ** 20), { level: 9 });
  for (let i = 0; i < 3 * 1024; i++) fs.writeSync(fd, mib);
  fs.writeSync(fd, zlib.gzipSync(END));
  fs.closeSync(fd);
}

/** Whether a process other than this one has `file` open. */
function openedElsewhere(file: string): boolean {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
    } catch {
      /* gone, or not ours to read */
    }
  }
  return false;
}

describe('imports and exports never hold the agent', function () {
  let e: Env;
  before(async function () {
    e = makeEnv();
    writeTree(e.base, { 'bin/tool': 'base\n', 'sub/x': 'x\n' });
    writeTree(path.join(e.dir, 'a'), { 'bin/tool': 'A\n' });
    await e.ok('layer', 'create', 'A', '--from', path.join(e.dir, 'a'));
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('layer', 'export', 'A', path.join(e.base, 'layer.tar.gz'));
    fs.symlinkSync(e.mnt, path.join(e.dir, 'into'));
  });
  after(async () => {
    spawnSync('umount', [path.join(e.dir, 'bound')], { stdio: 'ignore' });
    await e.cleanup();
  });

  it('refuses at once an archive, an export target and a --from folder reached through a symlink to its view', async () => {
    const into = path.join(e.dir, 'into');
    let r = await e.cli('layer', 'import', path.join(into, 'layer.tar.gz'));
    assert.strictEqual(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`E_BAD_REQUEST: layer archive ${into}/layer.tar.gz is inside the view at ${e.mnt}, which this agent serves`),
    );
    r = await e.cli('layer', 'export', 'A', path.join(into, 'new', 'out.tar.gz'));
    assert.match(r.stderr, /E_BAD_REQUEST: export file .* is inside the view at/);
    r = await e.cli('layer', 'create', 'B', '--from', path.join(into, 'sub'));
    assert.match(r.stderr, new RegExp(`E_LAYER_INVALID: --from ${into}/sub is inside the view at ${e.mnt}`));
  });

  it('refuses an archive reached through a bind mount of its view', async function () {
    if (!isRoot()) this.skip();
    const bound = path.join(e.dir, 'bound');
    fs.mkdirSync(bound);
    execFileSync('mount', ['--bind', e.mnt, bound]);
    const r = await e.cli('layer', 'import', path.join(bound, 'layer.tar.gz'));
    assert.match(r.stderr, /E_BAD_REQUEST: layer archive .*bound\/layer.tar.gz is inside the view at/);
    execFileSync('umount', [bound]);
  });

  it('switches while an import waits for its archive', async () => {
    const fifo = path.join(e.dir, 'slow.tar.gz');
    execFileSync('mkfifo', [fifo]);
    // Held open for writing, so the reader blocks on data rather than on open.
    const w = fs.openSync(fifo, 'r+');
    const importing = e.cli('layer', 'import', fifo);
    let done = false;
    void importing.then(() => (done = true));
    await eventually('the agent reading the archive', () => openedElsewhere(fifo));
    await e.ok('activate', 'A');
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'bin/tool'), 'utf8'), 'A\n');
    await e.ok('deactivate', 'A');
    assert.strictEqual(done, false, 'the import is still waiting');
    fs.writeSync(w, zlib.gzipSync(Buffer.concat([SPEC('slow'), FILES, entry({ name: 'files/bin/tool', data: 'slow\n' }), END])));
    fs.closeSync(w);
    const r = await importing;
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported layer slow/);
  });

  it('refuses a gzip bomb with E_ARCHIVE, leaving nothing behind, while activate keeps working', async () => {
    const bomb = path.join(e.dir, 'bomb.tar.gz');
    writeBomb(bomb);
    assert.ok(fs.statSync(bomb).size < 4 * 2 ** 20, 'about 3 MB');
    const importing = e.cli('layer', 'import', bomb);
    await e.ok('activate', 'A');
    await e.ok('deactivate', 'A');
    const r = await importing;
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_ARCHIVE: .*bomb\.tar\.gz: unpacks to more than 200 times its size \(a decompression bomb\?\); refused/);
    assert.match(r.stderr, /STRATA_IMPORT_MAX_RATIO/);
    assert.deepStrictEqual(
      fs.readdirSync(path.join(e.home, 'layers')).filter((n) => n.startsWith('.')),
      [],
      'no staging folder left',
    );
  });

  it('takes its size and entry limits from the environment', async () => {
    await e.ok('agent', 'stop');
    e.env.STRATA_IMPORT_MAX_BYTES = String(2 ** 20);
    e.env.STRATA_IMPORT_MAX_ENTRIES = '3';
    try {
      let r = await e.cli('layer', 'import', path.join(e.dir, 'bomb.tar.gz'));
      assert.match(r.stderr, /E_ARCHIVE: .*bomb\.tar\.gz: unpacks to more than 1048576 bytes; refused/);
      assert.match(r.stderr, /STRATA_IMPORT_MAX_BYTES/);
      const many = path.join(e.dir, 'many.tar.gz');
      const files = [1, 2, 3].map((i) => entry({ name: `files/${i}`, data: String(i) }));
      fs.writeFileSync(many, zlib.gzipSync(Buffer.concat([SPEC('many'), FILES, ...files, END])));
      r = await e.cli('layer', 'import', many);
      assert.match(r.stderr, /E_ARCHIVE: .*many\.tar\.gz: has more than 3 entries; refused/);
      e.env.STRATA_IMPORT_MAX_BYTES = 'lots';
      await e.ok('agent', 'stop');
      r = await e.cli('status');
      assert.match(r.stderr, /STRATA_IMPORT_MAX_BYTES=lots: expected a whole number/);
    } finally {
      delete e.env.STRATA_IMPORT_MAX_BYTES;
      delete e.env.STRATA_IMPORT_MAX_ENTRIES;
    }
  });

  it('says E_ARCHIVE when tar refuses what it unpacks, not E_INTERNAL', async () => {
    const bad = path.join(e.dir, 'badlink.tar.gz');
    fs.writeFileSync(
      bad,
      zlib.gzipSync(Buffer.concat([SPEC('badlink'), FILES, entry({ name: 'files/h', type: '1', link: 'files/missing' }), END])),
    );
    const r = await e.cli('layer', 'import', bad);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_ARCHIVE: unpacking .*badlink\.tar\.gz failed: tar: files\/h: Cannot hard link to .files\/missing./);
    assert.ok(!fs.existsSync(path.join(e.home, 'layers', 'badlink')));
  });
});
