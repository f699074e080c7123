/**
 * The Layer Editor's host side, driven with the messages its webview posts (the webview's DOM is
 * not reachable from the extension host): load, save through layer.update, and the agent's own
 * validation errors placed on the field before anything is saved.
 */
import * as assert from 'assert';
import * as vscode from 'vscode';
import { AgentClient } from '../../../shared/client';
import { HostMessage, WEBVIEW_PROTOCOL_VERSION } from '../../../protocol/webview';
import { LayerSpec } from '../../../protocol';
import type { StrataApi } from '../../../extension/api';
import type { LayerItem } from '../../../extension/trees/layers';
import { Fixture, clientFor, eventually, makeFixture, strata } from './helpers';

type Load = Extract<HostMessage, { type: 'load' }>;

export function editorTests(): void {
  describe('layer editor', function () {
    this.timeout(60000);
    let api: StrataApi;
    let c: AgentClient;
    let fx: Fixture;
    let loaded: LayerSpec;

    before(async () => {
      api = await strata();
      c = await clientFor(api.home());
      fx = await makeFixture(c, 'ed');
      await eventually('the fixture in the tree', () => (api.layersProvider.getChildren() as LayerItem[]).some((i) => i.label === fx.a));
    });

    after(async () => {
      await fx?.cleanup();
      c?.close();
    });

    it('answers the ready handshake with the layer strata.editLayer selected', async () => {
      await vscode.commands.executeCommand('strata.editLayer', fx.a);
      const replies = await api.editorMessage({ type: 'ready', v: WEBVIEW_PROTOCOL_VERSION });
      assert.strictEqual(replies.length, 1);
      const load = replies[0] as Load;
      assert.strictEqual(load.type, 'load');
      assert.ok(load.layer);
      assert.strictEqual(load.layer.name, fx.a);
      assert.strictEqual(load.layer.priority, 1000);
      assert.deepStrictEqual(load.layer.mappings, [{ original: fx.original, destination: '/' }]);
      assert.strictEqual(load.canRename, false);
      assert.strictEqual(load.active, false);
      assert.strictEqual(load.connected, true);
      loaded = load.layer;
    });

    it('saves a new mapping through the agent', async () => {
      const spec: LayerSpec = {
        ...loaded,
        version: '1.0.1',
        mappings: [...loaded.mappings, { original: `${fx.original}-extra`, destination: 'extra' }],
      };
      const replies = await api.editorMessage({ type: 'save', requestId: 7, name: fx.a, spec });
      assert.deepStrictEqual(
        replies.map((r) => r.type),
        ['saved'],
        JSON.stringify(replies),
      );
      const saved = replies[0] as Extract<HostMessage, { type: 'saved' }>;
      assert.strictEqual(saved.requestId, 7);
      const onDisk = await c.call('layer.show', { name: fx.a });
      assert.strictEqual(onDisk.version, '1.0.1');
      assert.deepStrictEqual(onDisk.mappings, [
        { original: fx.original, destination: '/' },
        { original: `${fx.original}-extra`, destination: 'extra' },
      ]);
      assert.deepStrictEqual(saved.layer.mappings, onDisk.mappings);
      await eventually('the new mapping in the Layers tree', () => {
        const item = (api.layersProvider.getChildren() as LayerItem[]).find((i) => i.label === fx.a);
        return item && api.layersProvider.getChildren(item).some((r) => r.label === `${fx.original}-extra`);
      });
    });

    it("shows the agent's E_MAPPING_ESCAPE on the destination field and saves nothing", async () => {
      const before = await c.call('layer.show', { name: fx.a });
      const { format, name, version, description, priority, mappings, excludes, deletes } = before;
      const spec: LayerSpec = {
        format,
        name,
        version,
        description,
        priority,
        excludes,
        deletes,
        mappings: [...mappings, { original: '/x', destination: '../x' }],
      };
      const field = `mappings[${mappings.length}].destination`;

      const validated = await api.editorMessage({ type: 'validate', requestId: 8, spec });
      assert.strictEqual(validated[0].type, 'validated');
      const problems = (validated[0] as Extract<HostMessage, { type: 'validated' }>).problems;
      assert.deepStrictEqual(
        problems.map((p) => [p.field, p.code]),
        [[field, 'E_MAPPING_ESCAPE']],
      );
      assert.match(problems[0].message, /"\.\.\/x" contains "\.\." and would escape the layer/);

      const replies = await api.editorMessage({ type: 'save', requestId: 9, name: fx.a, spec });
      assert.strictEqual(replies[0].type, 'saveFailed');
      const failed = replies[0] as Extract<HostMessage, { type: 'saveFailed' }>;
      assert.strictEqual(failed.requestId, 9);
      assert.deepStrictEqual(failed.problems, problems);
      assert.deepStrictEqual((await c.call('layer.show', { name: fx.a })).mappings, mappings);
    });

    it('puts a bad priority on the priority field', async () => {
      const spec = { ...loaded, priority: 1.5 };
      const [r] = await api.editorMessage({ type: 'validate', requestId: 10, spec });
      assert.strictEqual(r.type, 'validated');
      assert.deepStrictEqual(
        (r as Extract<HostMessage, { type: 'validated' }>).problems.map((p) => [p.field, p.code]),
        [['priority', 'E_LAYER_INVALID']],
      );
    });

    it('saves a Requires list, warns of a destination the layer lacks without refusing, and the tree says it', async () => {
      const { active: _a, writableBytes: _w, digest: _d, ...current } = await c.call('layer.show', { name: fx.a });
      void [_a, _w, _d];
      const spec: LayerSpec = {
        ...current,
        requires: [fx.b],
        mappings: [...current.mappings, { original: '/nowhere', destination: 'absent' }],
      };
      const [v] = await api.editorMessage({ type: 'validate', requestId: 12, spec });
      // Only warnings (an earlier test mapped a destination the layer lacks too), the new one among them.
      const warnings = (v as Extract<HostMessage, { type: 'validated' }>).problems;
      assert.ok(
        warnings.every((p) => p.severity === 'warning' && p.code === 'E_MAPPING_MISSING'),
        JSON.stringify(warnings),
      );
      assert.ok(warnings.some((p) => p.field === `mappings[${current.mappings.length}].destination`));
      const replies = await api.editorMessage({ type: 'save', requestId: 13, name: fx.a, spec });
      assert.deepStrictEqual(
        replies.map((r) => r.type),
        ['saved'],
        JSON.stringify(replies),
      );
      assert.deepStrictEqual((replies[0] as Extract<HostMessage, { type: 'saved' }>).layer.requires, [fx.b]);
      assert.deepStrictEqual((await c.call('layer.show', { name: fx.a })).requires, [fx.b]);
      await eventually('the requirement in the Layers tree', () =>
        (api.layersProvider.getChildren() as LayerItem[]).some(
          (i) => i.label === fx.a && String(i.description).endsWith(`requires ${fx.b}`),
        ),
      );
      const cyclic: LayerSpec = { ...(await c.call('layer.show', { name: fx.b })), requires: [fx.a] };
      const {
        active: _a2,
        writableBytes: _w2,
        digest: _d2,
        ...bSpec
      } = cyclic as typeof cyclic & { active: boolean; writableBytes: number; digest: string };
      void [_a2, _w2, _d2];
      const [failed] = await api.editorMessage({ type: 'save', requestId: 14, name: fx.b, spec: bSpec });
      assert.strictEqual(failed.type, 'saveFailed');
      assert.deepStrictEqual(
        (failed as Extract<HostMessage, { type: 'saveFailed' }>).problems.map((p) => [p.field, p.code]),
        [['requires[0]', 'E_LAYER_INVALID']],
      );
      await c.call('layer.update', { name: fx.a, spec: { ...current } });
    });

    it('answers a malformed message with an error naming its request', async () => {
      const replies = await api.editorMessage({ type: 'save', requestId: 11, name: fx.a });
      assert.deepStrictEqual(
        replies.map((r) => [r.type, 'requestId' in r ? r.requestId : undefined]),
        [['error', 11]],
      );
    });
  });
}
