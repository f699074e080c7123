/**
 * `strata layer create` in one step: from a folder or straight from a .tar.gz, .tar.xz or .zip, with
 * its mappings on the command line; progress on stderr for captures and exports, "capturing..." only
 * once the agent has accepted the request; archives that would write outside the layer refused.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, sh, writeTree } from './helpers';

interface LayerJson {
  name: string;
  mappings: { original: string; destination: string }[];
}

describe('capture: layer create from folders and archives, with mappings', function () {
  this.timeout(120000);
  let e: Env;
  let src: string;
  const read = (p: string) => fs.readFileSync(p, 'utf8');
  const layers = () => fs.readdirSync(path.join(e.home, 'layers')).filter((n) => !n.startsWith('.'));

  before(async () => {
    e = makeEnv('strata-capture-');
    src = path.join(e.dir, 'src');
    // As toolchains ship: everything inside one versioned folder.
    writeTree(path.join(src, 'tool-2.1'), { 'bin/tool': '#!/bin/sh\necho tool 2.1\n', 'lib/big': 'x'.repeat(3 << 20), README: 'tool\n' });
    fs.symlinkSync('tool', path.join(src, 'tool-2.1/bin/tool-link'));
    writeTree(path.join(src, 'tool-2.1'), { 'bin/suid': 'x\n' }, 0o4755);
    writeTree(e.base, { 'tools/bin/tool': '#!/bin/sh\necho base\n', 'notes.txt': 'base notes\n' });
    for (const [file, cmd] of [
      ['tool.tar.gz', `tar -C ${src} -czf ${e.dir}/tool.tar.gz tool-2.1`],
      ['tool.tar.xz', `tar -C ${src} -cJf ${e.dir}/tool.tar.xz tool-2.1`],
      ['tool.zip', `cd ${src} && zip -qry ${e.dir}/tool.zip tool-2.1`],
      ['flat.tar.gz', `tar -C ${src}/tool-2.1 -czf ${e.dir}/flat.tar.gz bin README`],
    ]) {
      const r = await sh(cmd);
      assert.strictEqual(r.code, 0, `${file}: ${r.stderr}`);
    }
    await e.ok('agent', 'start');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
  });
  after(async () => e.cleanup());

  for (const file of ['tool.tar.gz', 'tool.tar.xz', 'tool.zip']) {
    it(`captures ${file} with --map, its one top folder as the layer's root`, async () => {
      const name = file.replace(/\W/g, '-');
      const r = await e.cli('layer', 'create', name, '--from', path.join(e.dir, file), '--map', '/tools=/');
      assert.strictEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`^capturing .*${file.replace('.', '\\.')} as layer ${name}\\.\\.\\.$`, 'm'));
      assert.match(r.stderr, /^ +100% [\d.]+ [kM]?B of [\d.]+ [kM]?B: unpacking /m, 'the compressed bytes read, or (zip) those unpacked');
      assert.match(r.stderr, /the archive holds one folder, tool-2\.1\/: its content is the layer's root/);
      const l = await e.json<LayerJson>('layer', 'show', name);
      assert.deepStrictEqual(l.mappings, [{ original: '/tools', destination: '/' }], 'the default / -> / is replaced');
      await e.ok('activate', name);
      assert.strictEqual(read(path.join(e.mnt, 'tools/bin/tool')), '#!/bin/sh\necho tool 2.1\n');
      assert.strictEqual(fs.readlinkSync(path.join(e.mnt, 'tools/bin/tool-link')), 'tool');
      assert.strictEqual(read(path.join(e.mnt, 'notes.txt')), 'base notes\n', 'outside the mapping: the base');
      assert.ok((fs.statSync(path.join(e.mnt, 'tools/bin/tool')).mode & 0o111) !== 0, 'still executable');
      assert.strictEqual(
        fs.statSync(path.join(e.home, 'layers', name, 'files/bin/suid')).mode & 0o7777,
        0o755,
        'no set-id bit from an archive',
      );
      await e.ok('deactivate', name);
    });
  }

  it('keeps an archive with several top-level entries as it is', async () => {
    await e.ok('layer', 'create', 'flat', '--from', path.join(e.dir, 'flat.tar.gz'), '--map', '/tools=/');
    assert.ok(fs.existsSync(path.join(e.home, 'layers/flat/files/bin/tool')));
    assert.ok(fs.existsSync(path.join(e.home, 'layers/flat/files/README')));
  });

  it('captures a folder with several mappings, printing progress', async () => {
    const r = await e.cli(
      'layer',
      'create',
      'folder',
      '--from',
      path.join(src, 'tool-2.1'),
      '--map',
      '/tools/bin=bin',
      '--map',
      '/doc/README=README',
    );
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^capturing .* as layer folder\.\.\.$/m);
    assert.match(r.stderr, /^ +100% 3\.\d MB of 3\.\d MB: copying /m);
    assert.deepStrictEqual(
      (await e.json<LayerJson>('layer', 'show', 'folder')).mappings.map((m) => `${m.original}=${m.destination}`),
      ['/tools/bin=bin', '/doc/README=README'],
    );
  });

  it('refuses a destination the captured files do not have, naming what they hold, and creates nothing', async () => {
    const r = await e.cli('layer', 'create', 'typo', '--from', path.join(e.dir, 'tool.tar.gz'), '--map', '/tools=tool-2.1/bin');
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /E_LAYER_INVALID: --map \/tools=tool-2\.1\/bin: the layer has no tool-2\.1\/bin; its top level holds: README, bin, lib/,
    );
    assert.ok(!layers().includes('typo'));
    assert.deepStrictEqual(
      fs.readdirSync(path.join(e.home, 'layers')).filter((n) => n.startsWith('.')),
      [],
      'no staging folder left',
    );
  });

  it('refuses bad --map values before capturing anything, and says "capturing" only once accepted', async () => {
    const syntax = await e.cli('layer', 'create', 'bad', '--from', src, '--map', '/tools');
    assert.strictEqual(syntax.code, 2, syntax.stderr);
    assert.match(syntax.stderr, /--map \/tools: expected ORIGINAL=DESTINATION/);
    const escape = await e.cli('layer', 'create', 'bad', '--from', src, '--map', '/tools=../x');
    assert.strictEqual(escape.code, 1, escape.stderr);
    assert.match(escape.stderr, /E_MAPPING_ESCAPE: DESTINATION \.\.\/x/);
    const exists = await e.cli('layer', 'create', 'folder', '--from', src);
    assert.strictEqual(exists.code, 1, exists.stderr);
    assert.match(exists.stderr, /E_LAYER_EXISTS/);
    const missing = await e.cli('layer', 'create', 'bad', '--from', path.join(e.dir, 'nothere.tar.gz'));
    assert.match(missing.stderr, /E_LAYER_INVALID: --from .*nothere\.tar\.gz: no such folder or file/);
    for (const r of [escape, exists, missing]) assert.ok(!/capturing/.test(r.stderr), `"capturing" before a refusal:\n${r.stderr}`);
  });

  it('refuses a zip entry written through a symlink of the archive, and a damaged archive', async () => {
    const z = path.join(e.dir, 'evil');
    fs.mkdirSync(path.join(z, 'a/top'), { recursive: true });
    fs.mkdirSync(path.join(z, 'b/top/lnk'), { recursive: true });
    fs.symlinkSync(e.dir, path.join(z, 'a/top/lnk'));
    fs.writeFileSync(path.join(z, 'b/top/lnk/planted'), 'x');
    const made = await sh(`cd ${z}/a && zip -qy ../evil.zip top/lnk && cd ${z}/b && zip -q ../evil.zip top/lnk/planted`);
    assert.strictEqual(made.code, 0, made.stderr);
    const r = await e.cli('layer', 'create', 'evil', '--from', path.join(z, 'evil.zip'));
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /E_ARCHIVE: .*entry "top\/lnk\/planted" lies below the archive's symlink top\/lnk/);
    assert.ok(!fs.existsSync(path.join(e.dir, 'planted')));
    fs.writeFileSync(path.join(e.dir, 'damaged.tar.xz'), 'not xz at all');
    const d = await e.cli('layer', 'create', 'damaged', '--from', path.join(e.dir, 'damaged.tar.xz'));
    assert.strictEqual(d.code, 1, d.stderr);
    assert.match(d.stderr, /E_ARCHIVE: .*damaged\.tar\.xz: cannot unpack/);
    assert.ok(!layers().includes('evil') && !layers().includes('damaged'));
  });

  it('prints progress while exporting, and the export imports as it was', async () => {
    const file = path.join(e.dir, 'folder.tar.gz');
    const r = await e.cli('layer', 'export', 'folder', file);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^exporting folder to .*folder\.tar\.gz\.\.\.$/m);
    assert.match(r.stderr, /^ +100% 3\.\d MB of 3\.\d MB: packing folder$/m);
    await e.ok('layer', 'rm', 'folder');
    await e.ok('layer', 'import', file);
    assert.strictEqual(read(path.join(e.home, 'layers/folder/files/bin/tool')), '#!/bin/sh\necho tool 2.1\n');
  });
});
