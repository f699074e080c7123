/** Switching from the extension changes what the view serves; switching from the CLI updates the extension. */
import * as assert from 'assert';
import { AgentClient } from '../../../shared/client';
import { ITEMS } from '../../../extension/constants';
import type { StrataApi } from '../../../extension/api';
import type { LayerItem } from '../../../extension/trees/layers';
import type { RowItem, ViewItem } from '../../../extension/trees/mappings';
import * as vscode from 'vscode';
import { Fixture, cli, clientFor, eventually, makeFixture, read, strata } from './helpers';

export function switchingTests(): void {
  describe('switching layers', function () {
    this.timeout(60000);
    let api: StrataApi;
    let c: AgentClient;
    let fx: Fixture;

    const item = (name: string): LayerItem | undefined => (api.layersProvider.getChildren() as LayerItem[]).find((i) => i.label === name);
    const rows = (): RowItem[] => {
      const view = (api.mappingsProvider.getChildren() as ViewItem[]).find((v) => v.view.mountpoint === fx.mnt);
      assert.ok(view, `the Mappings view lists the view at ${fx.mnt}`);
      return (api.mappingsProvider.getChildren(view) as RowItem[]).filter((r) => r.label === fx.original);
    };

    before(async () => {
      api = await strata();
      c = await clientFor(api.home());
      fx = await makeFixture(c, 'sw');
      await eventually('the fixture in the tree', () => item(fx.b));
    });

    after(async () => {
      await fx?.cleanup();
      c?.close();
    });

    it('serves the base while no fixture layer is active', () => {
      assert.strictEqual(read(fx.file), 'base');
    });

    it('strata.activateLayer with a layer name serves that layer on disk', async () => {
      await vscode.commands.executeCommand('strata.activateLayer', fx.a);
      assert.strictEqual(read(fx.file), 'A');
      const st = await c.call('status', {});
      assert.ok(st.active.includes(fx.a));
      await eventually('the tree to show A active', () => item(fx.a)?.contextValue === ITEMS.layerActive);
      assert.match(api.statusBarText(), new RegExp(`^\\$\\(layers\\) .*${fx.a}`));
    });

    it('strata.activateLayer with a tree item uses its layer; the Mappings view says which layer wins', async () => {
      await vscode.commands.executeCommand('strata.activateLayer', item(fx.b));
      assert.strictEqual(read(fx.file), 'B');
      const got = await eventually('both mappings in the Mappings view', () => (rows().length === 2 ? rows() : null));
      const win = got.find((r) => r.row.layer === fx.b)!;
      const shadowed = got.find((r) => r.row.layer === fx.a)!;
      assert.strictEqual(win.contextValue, `${ITEMS.row}.wins`);
      assert.strictEqual(win.description, `→ ${fx.b}:/`);
      assert.strictEqual(shadowed.contextValue, `${ITEMS.row}.shadowed`);
      assert.strictEqual(shadowed.description, `→ ${fx.a}:/ · shadowed by ${fx.b}`);
    });

    it('strata.deactivateLayer with a tree item falls back to the lower layer', async () => {
      await vscode.commands.executeCommand('strata.deactivateLayer', item(fx.b));
      assert.strictEqual(read(fx.file), 'A');
      await eventually('B inactive in the tree', () => item(fx.b)?.contextValue === ITEMS.layerInactive);
    });

    it('refreshes the trees and the status bar within moments of a change made with the CLI', async () => {
      const r = await cli(api.home(), 'deactivate', fx.a);
      assert.strictEqual(r.code, 0, r.stderr);
      await eventually('A inactive in the tree', () => item(fx.a)?.contextValue === ITEMS.layerInactive, 5000);
      assert.ok(!api.statusBarText().includes(fx.a), api.statusBarText());
      assert.strictEqual(read(fx.file), 'base');
      const r2 = await cli(api.home(), 'activate', fx.b);
      assert.strictEqual(r2.code, 0, r2.stderr);
      await eventually('B active in the tree', () => item(fx.b)?.contextValue === ITEMS.layerActive, 5000);
      await eventually('B in the status bar', () => api.statusBarText().includes(fx.b), 5000);
      await eventually('B winning in the Mappings view', () => rows().some((x) => x.row.layer === fx.b && x.row.state === 'wins'), 5000);
      assert.strictEqual(read(fx.file), 'B');
    });
  });
}
