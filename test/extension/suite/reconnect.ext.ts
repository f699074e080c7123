/**
 * Losing the agent: the extension shows it down, reconnects by itself when the agent comes back
 * (started by someone else), and Restart Agent replaces the running agent. Runs last: it stops the
 * agent every other suite uses.
 */
import * as assert from 'assert';
import * as vscode from 'vscode';
import type { StrataApi } from '../../../extension/api';
import { cli, clientFor, eventually, strata } from './helpers';
import { pidAlive } from '../../../shared/paths';

export function reconnectTests(): void {
  describe('agent connection', function () {
    this.timeout(90000);
    let api: StrataApi;

    before(async () => {
      api = await strata();
    });

    it('shows the agent down when it stops, and reconnects after it is started again', async () => {
      const c = await clientFor(api.home());
      const { pid } = await c.call('status', {});
      await c.call('agent.stop', {});
      c.close();
      await eventually('the extension to notice', () => !api.connected(), 15000);
      assert.strictEqual(api.statusBarText(), '$(warning) Strata agent down');
      assert.deepStrictEqual(api.layersProvider.getChildren(), []);
      await eventually('the old agent to exit', () => !pidAlive(pid), 20000);

      const r = await cli(api.home(), 'agent', 'start');
      assert.strictEqual(r.code, 0, r.stderr);
      await eventually('the extension to reconnect', () => api.connected(), 15000);
      const c2 = await clientFor(api.home());
      const st = await c2.call('status', {});
      c2.close();
      assert.notStrictEqual(st.pid, pid);
      await eventually('the Layers tree to fill again', () => api.layersProvider.getChildren().length === st.layers.length, 5000);
      assert.match(api.statusBarText(), /^\$\(layers\) /);
    });

    it('Restart Agent replaces the running agent and reconnects', async () => {
      const before = await clientFor(api.home());
      const { pid } = await before.call('status', {});
      before.close();
      await vscode.commands.executeCommand('strata.restartAgent');
      assert.strictEqual(api.connected(), true);
      assert.strictEqual(pidAlive(pid), false);
      const after = await clientFor(api.home());
      const st = await after.call('status', {});
      after.close();
      assert.notStrictEqual(st.pid, pid);
    });
  });
}
