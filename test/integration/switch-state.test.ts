/**
 * What a switch's answer promises, now that the agent answers before state.json is fsynced and
 * re-reads only the layer.json files that changed: the state is in place when the switch is
 * answered (and survives kill -9 of the agent), a layer.json edited by hand between two
 * activations is read again, and a layer's files that turned bad without layer.json changing
 * still keep it out.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env } from './helpers';
import { alive, read, twoLayerEnv, waitFor } from './view-helpers';

describe('switch: the state a switch answers with', function () {
  let e: Env;
  const state = () => JSON.parse(fs.readFileSync(path.join(e.home, 'state.json'), 'utf8')) as { active: string[] };
  const specFile = (layer: string) => path.join(e.home, 'layers', layer, 'layer.json');
  const editSpec = (layer: string, f: (j: { mappings: { original: string; destination: string }[] }) => void) => {
    const j = JSON.parse(fs.readFileSync(specFile(layer), 'utf8'));
    f(j);
    fs.writeFileSync(specFile(layer), JSON.stringify(j));
  };
  const exists = (p: string) => fs.existsSync(path.join(e.mnt, p));

  before(async () => {
    e = await twoLayerEnv();
    await e.ok('view', 'add', e.base, '--at', e.mnt);
  });
  after(async () => e?.cleanup());

  it('has state.json hold a switch once it is answered, and a kill -9 right after keeps it', async () => {
    const { pid } = await e.json<{ pid: number }>('status');
    await e.ok('activate', 'two');
    assert.deepStrictEqual(state().active, ['two'], 'state.json holds the switch when it is answered');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 'the agent to die');
    await e.ok('agent', 'start');
    const s = await e.json<{ pid: number; active: string[] }>('status');
    assert.notStrictEqual(s.pid, pid);
    assert.deepStrictEqual(s.active, ['two']);
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho two\n');
    await e.ok('deactivate', 'two');
    assert.deepStrictEqual(state().active, []);
  });

  it('re-reads a layer.json edited by hand between two activations, also an edit of the same size right after', async () => {
    await e.ok('activate', 'one');
    await e.ok('deactivate', 'one');
    editSpec('one', (j) => j.mappings.push({ original: '/alt', destination: 'bin' }));
    await e.ok('activate', 'one');
    assert.ok(exists('alt/tool'), 'the new mapping is served');
    await e.ok('deactivate', 'one');
    // Same size, written at once: only its timestamps (and content) differ from the last read.
    editSpec('one', (j) => (j.mappings[j.mappings.length - 1].original = '/alu'));
    await e.ok('activate', 'one');
    assert.ok(exists('alu/tool'), 'the edited mapping is served');
    assert.ok(!exists('alt'), 'the old mapping is gone');
    await e.ok('deactivate', 'one');
  });

  it('refuses a layer whose destination became a symlink out of the layer while layer.json stayed the same', async () => {
    editSpec('two', (j) => j.mappings.push({ original: '/leak', destination: 'share' }));
    await e.ok('activate', 'two');
    assert.ok(exists('leak/doc'));
    await e.ok('deactivate', 'two');
    const share = path.join(e.home, 'layers/two/files/share');
    fs.rmSync(share, { recursive: true });
    fs.symlinkSync('/etc', share);
    const r = await e.cli('activate', 'two');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_MAPPING_ESCAPE: .*leads outside the layer through a symlink/);
    assert.ok(!exists('leak/passwd'));
    assert.deepStrictEqual(state().active, []);
  });
});
