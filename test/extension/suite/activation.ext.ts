/** The extension activates, connects to its agent, fills the Layers view, and its manifest agrees with its code. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { AgentClient } from '../../../shared/client';
import { strataHome } from '../../../shared/paths';
import { COMMANDS, ITEMS, VIEWS } from '../../../extension/constants';
import type { StrataApi } from '../../../extension/api';
import type { LayerItem } from '../../../extension/trees/layers';
import { Fixture, clientFor, eventually, extension, makeFixture, strata } from './helpers';

/** Runs first, before any suite starts the agent. */
export function startupTests(): void {
  describe('startup', function () {
    this.timeout(60000);

    it('is active once VS Code has started, and starts no agent for a workspace in no view and with no team file', async () => {
      await eventually('the extension to activate on startup', () => extension().isActive, 40000);
      const api = extension().exports;
      await eventually('the first connection attempt to end', () => api.statusBarText().includes('agent down'), 20000);
      assert.strictEqual(api.connected(), false);
      await assert.rejects(clientFor(api.home()), 'no agent answers on the socket');
    });
  });
}

export function activationTests(): void {
  describe('activation', function () {
    this.timeout(60000);
    let api: StrataApi;
    let c: AgentClient;
    let fx: Fixture;

    before(async () => {
      api = await strata();
      c = await clientFor(api.home());
      fx = await makeFixture(c, 'act');
    });

    after(async () => {
      await fx?.cleanup();
      c?.close();
    });

    it('activates and talks to the agent of STRATA_HOME', async () => {
      assert.strictEqual(extension().isActive, true);
      assert.strictEqual(api.connected(), true);
      const expected = process.env.STRATA_HOME ? path.resolve(process.env.STRATA_HOME) : strataHome();
      assert.strictEqual(api.home(), expected);
      const st = await c.call('status', {});
      assert.strictEqual(st.home, api.home());
    });

    it('fills the Layers tree from the agent, highest priority first', async () => {
      const layers = await c.call('layer.list', {});
      const items = await eventually('both fixture layers in the tree', () => {
        const got = api.layersProvider.getChildren() as LayerItem[];
        return got.some((i) => i.label === fx.a) && got.some((i) => i.label === fx.b) ? got : null;
      });
      assert.deepStrictEqual(items.map((i) => i.label).sort(), layers.map((l) => l.name).sort());
      const a = items.find((i) => i.label === fx.a)!;
      const b = items.find((i) => i.label === fx.b)!;
      assert.strictEqual(a.contextValue, ITEMS.layerInactive);
      assert.strictEqual(a.description, '1.0.0 · priority 1000');
      assert.ok(items.indexOf(b) < items.indexOf(a), 'priority 2000 is listed above priority 1000');
      const rules = api.layersProvider.getChildren(a);
      assert.deepStrictEqual(
        rules.map((r) => [r.label, r.contextValue]),
        [[fx.original, ITEMS.mapping]],
      );
    });

    it('registers every command its manifest contributes, and its menus name only context values it sets', async () => {
      const pkg = extension().packageJSON as {
        contributes: {
          commands: { command: string }[];
          menus: Record<string, { command: string; when?: string }[]>;
          views: Record<string, { id: string }[]>;
        };
      };
      const contributed = pkg.contributes.commands.map((x) => x.command).sort();
      assert.deepStrictEqual(contributed, Object.values(COMMANDS).sort());
      const registered = new Set(await vscode.commands.getCommands(true));
      for (const id of contributed) assert.ok(registered.has(id), `${id} is registered`);
      const known = new Set<string>(Object.values(ITEMS));
      for (const entries of Object.values(pkg.contributes.menus)) {
        for (const e of entries) {
          for (const m of (e.when ?? '').matchAll(/viewItem == ([\w.]+)/g))
            assert.ok(known.has(m[1]), `menu for ${e.command} names unknown context value ${m[1]}`);
        }
      }
      assert.deepStrictEqual(
        pkg.contributes.views[VIEWS.container].map((v) => v.id),
        [VIEWS.layers, VIEWS.mappings, VIEWS.team, VIEWS.layerEditor],
      );
    });

    it('has a "Get started with Strata" walkthrough whose steps show files it ships and run commands it has', () => {
      const pkg = extension().packageJSON as {
        contributes: {
          walkthroughs: {
            title: string;
            steps: { id: string; description: string; media: { markdown: string }; completionEvents: string[] }[];
          }[];
        };
      };
      const [w] = pkg.contributes.walkthroughs;
      assert.strictEqual(w.title, 'Get started with Strata');
      assert.deepStrictEqual(
        w.steps.map((s) => s.id),
        ['capture', 'view', 'activate', 'team'],
      );
      const commands = new Set<string>(Object.values(COMMANDS));
      for (const step of w.steps) {
        assert.ok(fs.existsSync(path.join(extension().extensionPath, step.media.markdown)), `${step.media.markdown} is in the extension`);
        const links = [...step.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]);
        assert.ok(links.length, `step ${step.id} offers a command`);
        for (const c of [...links, ...step.completionEvents.map((e) => e.replace(/^onCommand:/, ''))])
          assert.ok(commands.has(c), `${c} is a Strata command`);
      }
    });
  });
}
