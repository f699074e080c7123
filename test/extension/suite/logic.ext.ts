/** The extension's pure parts, checked inside the host against hand-computed answers. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StrataError } from '../../../shared/errors';
import { LAYER_FORMAT, LayerSpec } from '../../../protocol';
import { isHostMessage, isWebviewMessage } from '../../../protocol/webview';
import { effectiveTable } from '../../../extension/mappingTable';
import { problemsFromError, toFieldProblem } from '../../../extension/editor/problems';
import { LayerItem } from '../../../extension/trees/layers';
import { toLayerPath, toViewPath } from '../../../extension/editor/paths';
import { statusLook } from '../../../extension/statusBar';
import { withSecretFile } from '../../../extension/secrets';

const layer = (name: string, priority: number, rules: Partial<LayerSpec>): LayerSpec => ({
  format: LAYER_FORMAT,
  name,
  version: '',
  description: '',
  priority,
  mappings: [],
  excludes: [],
  deletes: [],
  ...rules,
});

export function logicTests(): void {
  describe('pure parts', () => {
    it('the mapping table says who wins, who is shadowed, hidden or excluded', () => {
      const layers = [
        layer('top', 300, { mappings: [{ original: '/', destination: 'root' }], excludes: ['/src'] }),
        layer('mid', 200, { mappings: [{ original: '/tools/node', destination: 'node' }], deletes: ['/tools/old'] }),
        layer('low', 100, {
          mappings: [
            { original: '/tools/old', destination: '/' },
            { original: '/src', destination: 'src' },
          ],
        }),
        layer('off', 900, { mappings: [{ original: '/tools/node', destination: 'x' }] }),
      ];
      const rows = effectiveTable(layers, ['top', 'mid', 'low']).map((r) => [r.kind, r.path, r.layer, r.state, r.by ?? '', r.resolvesTo]);
      assert.deepStrictEqual(rows, [
        ['mapping', '/', 'top', 'wins', '', 'top:/root'],
        ['exclude', '/src', 'top', 'passes', '', 'low:/src'],
        ['mapping', '/src', 'low', 'wins', '', 'low:/src'],
        ['mapping', '/tools/node', 'mid', 'shadowed', 'top', 'top:/root/tools/node'],
        ['delete', '/tools/old', 'mid', 'hides', '', 'top:/root/tools/old'],
        ['mapping', '/tools/old', 'low', 'hidden', 'mid', 'top:/root/tools/old'],
      ]);
    });

    it('maps picked paths to view paths and layer paths', () => {
      const views = [{ base: '/w/base', mountpoint: '/w/mnt', inPlace: false, state: 'mounted' as const }];
      assert.deepStrictEqual(toViewPath('/w/mnt/tools/node', views), { value: '/tools/node' });
      assert.deepStrictEqual(toViewPath('/w/base/a', views), { value: '/a' });
      assert.deepStrictEqual(toViewPath('/w/mnt', views), { value: '/' });
      assert.match((toViewPath('/elsewhere', views) as { problem: string }).problem, /not inside a Strata view \(views: \/w\/mnt\)/);
      assert.deepStrictEqual(toLayerPath('/h/layers/n/files/node-v20/bin', '/h/layers/n/files'), { value: 'node-v20/bin' });
      assert.deepStrictEqual(toLayerPath('/h/layers/n/files', '/h/layers/n/files'), { value: '/' });
      assert.ok('problem' in toLayerPath('/h/layers/n/filesx', '/h/layers/n/files'));
    });

    it('splits a failed save into problems per field', () => {
      const e = new StrataError(
        'E_LAYER_INVALID',
        '/h/layers/n/layer.json: priority: must be an integer; /h/layers/n/layer.json: excludes[1]: path "a/../b" contains ".."',
        'Nothing was changed.',
      );
      assert.deepStrictEqual(problemsFromError(e), [
        { field: 'priority', code: 'E_LAYER_INVALID', message: 'must be an integer' },
        { field: 'excludes[1]', code: 'E_LAYER_INVALID', message: 'path "a/../b" contains ".."' },
      ]);
      assert.deepStrictEqual(
        problemsFromError(new StrataError('E_LAYER_INVALID', 'renaming "a" to "b" is not supported yet')).map((p) => p.field),
        ['name'],
      );
    });

    it('a layer item says what the layer requires, and its tooltip what requires it', () => {
      const info = (name: string, rules: Partial<LayerSpec>) => ({ ...layer(name, 100, rules), active: false, writableBytes: 0 });
      const jdk = info('jdk21', { version: '21' });
      const maven = info('maven3', { requires: ['jdk21'] });
      const gradle = info('gradle8', { requires: ['jdk21', 'kotlin2'] });
      const all = [jdk, maven, gradle];
      assert.strictEqual(new LayerItem(maven, all).description, 'priority 100 · requires jdk21');
      assert.strictEqual(new LayerItem(gradle, all).description, 'priority 100 · requires jdk21, kotlin2');
      assert.strictEqual(new LayerItem(jdk, all).description, '21 · priority 100');
      // appendText keeps spaces as &nbsp; and escapes Markdown's characters.
      const tip = (l: typeof jdk) =>
        (new LayerItem(l, all).tooltip as { value: string }).value.replace(/&nbsp;/g, ' ').replace(/\\(.)/g, '$1');
      assert.match(tip(jdk), /Required by maven3, gradle8/);
      assert.match(tip(maven), /Requires jdk21 \(activated with it\)/);
      assert.doesNotMatch(tip(maven), /Required by/);
    });

    it('keeps a warning a warning on its way to the editor', () => {
      assert.deepStrictEqual(
        toFieldProblem({
          code: 'E_MAPPING_MISSING',
          severity: 'warning',
          message: 'layer.json: mappings[1].destination: "lib" is not in the layer\'s files',
        }),
        { field: 'mappings[1].destination', code: 'E_MAPPING_MISSING', message: '"lib" is not in the layer\'s files', severity: 'warning' },
      );
      assert.strictEqual('severity' in toFieldProblem({ code: 'E_LAYER_INVALID', message: 'layer.json: requires[0]: x' }), false);
    });

    it('the status bar shows layers and team sync, or the agent down', () => {
      const status = { protocol: 1, pid: 1, home: '/h', socket: '/s', active: ['node20'], layers: [], views: [] };
      const team = { joined: true, team: 't', lastDecision: { id: 'a:1', applied: 3, of: 4 }, drift: [] };
      assert.strictEqual(statusLook('connected', status, team).text, '$(layers) node20 · $(sync) team 3/4');
      assert.strictEqual(statusLook('connected', { ...status, active: [] }, { joined: false }).text, '$(layers) no layers');
      const down = statusLook('down', null, null, 'ECONNREFUSED');
      assert.deepStrictEqual([down.text, down.command, down.warning], ['$(warning) Strata agent down', 'strata.startAgent', true]);
    });

    it('hands a secret over as a 0600 file that is gone afterwards', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-secret-'));
      let seen = '';
      const got = await withSecretFile(path.join(dir, 'storage'), 'correct horse battery staple', async (file) => {
        seen = file;
        assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600);
        assert.strictEqual(fs.statSync(path.dirname(file)).mode & 0o077, 0);
        return fs.readFileSync(file, 'utf8');
      });
      assert.strictEqual(got, 'correct horse battery staple');
      assert.strictEqual(fs.existsSync(seen), false);
      await assert.rejects(
        withSecretFile(path.join(dir, 'storage'), 's', async (file) => {
          seen = file;
          throw new Error('join failed');
        }),
        /join failed/,
      );
      assert.strictEqual(fs.existsSync(seen), false);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('refuses malformed editor messages in both directions', () => {
      assert.strictEqual(isWebviewMessage({ type: 'ready', v: 1 }), true);
      assert.strictEqual(isWebviewMessage({ type: 'browse', requestId: 1, kind: 'elsewhere', layer: 'x' }), false);
      assert.strictEqual(isWebviewMessage({ type: 'save', requestId: -1, name: 'x', spec: layer('x', 1, {}) }), false);
      assert.strictEqual(isWebviewMessage({ type: 'eval', code: 'x' }), false);
      assert.strictEqual(
        isHostMessage({ type: 'validated', requestId: 2, problems: [{ field: 'name', code: 'E_NOPE', message: 'm' }] }),
        false,
      );
      assert.strictEqual(isHostMessage({ type: 'picked', requestId: 2, value: '/a' }), true);
    });
  });
}
