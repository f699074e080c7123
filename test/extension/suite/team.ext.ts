/**
 * The Team view with a real relay and a second agent (its own STRATA_HOME): before joining it
 * offers to join; after the extension's agent joins, the second agent shows up as a peer.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn } from 'child_process';
import { AgentClient, startDetached } from '../../../shared/client';
import { TEAM_FILE } from '../../../protocol/team';
import { ITEMS } from '../../../extension/constants';
import type { StrataApi } from '../../../extension/api';
import type { TeamItem } from '../../../extension/trees/team';
import { cliPath, clientFor, eventually, extension, strata } from './helpers';

export function teamTests(): void {
  describe('team view', function () {
    this.timeout(90000);
    let api: StrataApi;
    let c: AgentClient;
    let dir: string;
    let secretFile: string;
    let teamFile: string;
    let relay: ChildProcess | undefined;
    let url: string;
    let bob: AgentClient | undefined;
    let bobPid: number | undefined;
    let joined = false;

    const items = (): TeamItem[] => api.teamProvider.getChildren();

    before(async function () {
      api = await strata();
      c = await clientFor(api.home());
      if ((await c.call('team.status', {})).joined) {
        // Never take the harness's agent out of a team it was put in.
        this.skip();
      }
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-team-'));
      secretFile = path.join(dir, 'team.secret');
      fs.writeFileSync(secretFile, 'extension host test secret 2026', { mode: 0o600 });
      relay = spawn(process.execPath, [cliPath(), 'relay', '--listen', '127.0.0.1:0', '--secret-file', secretFile, '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      });
      let out = '';
      relay.stdout!.on('data', (d) => (out += String(d)));
      url = await eventually('the relay to print its address', () => /"url":\s*"([^"]+)"/.exec(out)?.[1]);
      teamFile = path.join(dir, TEAM_FILE);
      fs.writeFileSync(
        teamFile,
        JSON.stringify({ format: 1, team: 'ext-test', relays: [url], layers: {}, defaults: [], slots: {} }, null, 2),
      );

      const bobHome = path.join(dir, 'bob-home');
      const env = { ...process.env, STRATA_HOME: bobHome, STRATA_TEAM_HEARTBEAT_MS: '500', ELECTRON_RUN_AS_NODE: '1' };
      startDetached(bobHome, path.join(extension().extensionPath, 'dist', 'agent.js'), env);
      bob = await eventually('the second agent to answer', () => clientFor(bobHome), 20000);
      bobPid = (await bob.call('status', {})).pid;
      await bob.call('team.join', { url, secretFile, teamFile, name: 'bob' });
    });

    after(async () => {
      if (joined) await c.call('team.leave', {}).catch(() => {});
      await bob?.call('agent.stop', {}).catch(() => {});
      bob?.close();
      if (bobPid)
        await eventually(
          'the second agent to exit',
          () => {
            try {
              process.kill(bobPid!, 0);
              return false;
            } catch {
              return true;
            }
          },
          15000,
        ).catch(() => {});
      relay?.kill('SIGTERM');
      c?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('shows "Not in a team" with a Join Team… action before joining', async () => {
      const [only] = await eventually('the team view to fill', () => (items().length ? items() : null));
      assert.strictEqual(only.label, 'Not in a team');
      assert.strictEqual(only.contextValue, ITEMS.teamNotJoined);
      assert.strictEqual(only.command?.command, 'strata.joinTeam');
      assert.ok(!api.statusBarText().includes('team'), api.statusBarText());
    });

    it('lists the second agent as a peer once this agent joins', async () => {
      await c.call('team.join', { url, secretFile, teamFile, name: 'alice' });
      joined = true;
      const peer = await eventually('bob in the Team view', () => items().find((i) => i.label === `bob@${os.hostname()}`), 30000);
      assert.strictEqual(peer.contextValue, ITEMS.teamPeer);
      assert.match(String(peer.description), /^(connected|via-relay) · no layers/);
      const header = items().find((i) => i.contextValue === ITEMS.teamHeader);
      assert.strictEqual(header?.label, 'Team ext-test');
      assert.match(String(header?.description), /^as [A-Z2-7]{8}(-[A-Z2-7]{8}){3}/);
      await eventually('the status bar to show the team', () => api.statusBarText().includes('$(sync) team'), 5000);
    });
  });
}
