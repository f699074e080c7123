/**
 * A switch happens completely or not at all: with STRATA_HOME on a full disk (a tiny tmpfs), a
 * switch that cannot be persisted leaves the active set, state.json and the view as they were,
 * says E_IO naming the file, and leaves no temp file behind.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { Env, isRoot, makeEnv, writeTree } from './helpers';
import { END, entry } from '../tar';

describe('full disk: a switch that cannot be persisted does not happen', function () {
  let e: Env;
  let fill: string;
  const tool = () => fs.readFileSync(path.join(e.mnt, 'bin/tool'), 'utf8');
  const persisted = () => JSON.parse(fs.readFileSync(path.join(e.home, 'state.json'), 'utf8')).active;
  const temps = () => fs.readdirSync(e.home).filter((n) => n.startsWith('.state.json.'));
  const fillUp = () => {
    // dd stops at ENOSPC; bs=4k so the last page is taken too.
    spawnSync('dd', ['if=/dev/zero', `of=${fill}`, 'bs=4k'], { stdio: 'ignore' });
  };

  before(async function () {
    if (!isRoot()) this.skip();
    e = makeEnv();
    fs.mkdirSync(e.home);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', e.home]);
    fill = path.join(e.home, 'fill');
    writeTree(e.base, { 'bin/tool': 'base\n' });
    writeTree(path.join(e.dir, 'a'), { 'bin/tool': 'A\n' });
    writeTree(path.join(e.dir, 'b'), { 'bin/tool': 'B\n' });
    await e.ok('layer', 'create', 'A', '--from', path.join(e.dir, 'a'));
    await e.ok('layer', 'create', 'B', '--from', path.join(e.dir, 'b'), '--priority', '200');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('activate', 'A');
    assert.strictEqual(tool(), 'A\n');
  });

  after(async function () {
    if (!e) return;
    await e.cli('agent', 'stop');
    spawnSync('umount', ['-l', e.mnt], { stdio: 'ignore' });
    spawnSync('umount', [e.home], { stdio: 'ignore' });
    await e.cleanup();
  });

  it('refuses activate with E_IO naming state.json, and status, state.json and the view stay on A', async () => {
    fillUp();
    const r = await e.cli('activate', 'B');
    assert.strictEqual(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`E_IO: could not save ${path.join(e.home, 'state.json')}: ENOSPC: no space left on device`));
    assert.match(r.stderr, /Free some space/);
    assert.deepStrictEqual((await e.json<{ active: string[] }>('status')).active, ['A']);
    assert.deepStrictEqual(persisted(), ['A']);
    assert.strictEqual(tool(), 'A\n');
    assert.deepStrictEqual(temps(), [], 'no temp file left behind');
  });

  it('a later unrelated change persists the set that is really active', async () => {
    fs.rmSync(fill);
    const other = path.join(e.dir, 'other');
    fs.mkdirSync(other);
    await e.ok('view', 'add', other, '--at', path.join(e.dir, 'other-mnt'));
    assert.deepStrictEqual(persisted(), ['A']);
    await e.ok('view', 'rm', other);
  });

  it('switches once there is room again', async () => {
    await e.ok('activate', 'B');
    assert.deepStrictEqual(persisted(), ['A', 'B']);
    assert.strictEqual(tool(), 'B\n');
  });

  it('refuses deactivate the same way, and removes temp files a killed agent left', async () => {
    fillUp();
    const r = await e.cli('deactivate', 'B');
    assert.match(r.stderr, /E_IO: could not save .*state\.json: ENOSPC/);
    assert.deepStrictEqual((await e.json<{ active: string[] }>('status')).active, ['A', 'B']);
    assert.strictEqual(tool(), 'B\n');
    fs.rmSync(fill);
    await e.ok('agent', 'stop');
    fs.writeFileSync(path.join(e.home, '.state.json.4242.k1ll3d'), '');
    await e.ok('status');
    assert.deepStrictEqual(temps(), []);
    assert.deepStrictEqual(persisted(), ['A', 'B']);
  });

  it('an import or an export that does not fit says E_IO and leaves nothing behind', async () => {
    const archive = path.join(e.dir, 'big.tar.gz');
    const spec = JSON.stringify({ format: 2, name: 'big', version: '1', priority: 1, mappings: [{ original: '/', destination: '/' }] });
    const blob = crypto.randomBytes(3 * 2 ** 20); // incompressible, more than the disk holds
    fs.writeFileSync(
      archive,
      zlib.gzipSync(Buffer.concat([entry({ name: 'layer.json', data: spec }), entry({ name: 'files/blob', data: blob }), END])),
    );
    let r = await e.cli('layer', 'import', archive);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_IO: unpacking .*big\.tar\.gz failed: tar: files\/blob: .*(No space left on device|disk full or over quota)/);
    assert.deepStrictEqual(fs.readdirSync(path.join(e.home, 'layers')).sort(), ['A', 'B']);
    fillUp();
    r = await e.cli('layer', 'export', 'A', path.join(e.home, 'A.tar.gz'));
    assert.match(r.stderr, /E_IO: exporting A to .*A\.tar\.gz failed: .*(No space left on device|disk full or over quota)/);
    assert.deepStrictEqual(
      fs.readdirSync(e.home).filter((n) => n.startsWith('A.tar.gz')),
      [],
    );
    fs.rmSync(fill);
  });
});
