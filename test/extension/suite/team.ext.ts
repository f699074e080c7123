/**
 * The team, with a real relay and a second agent ("bob", its own STRATA_HOME) beside the
 * extension's own ("alice"): the Team view before and after joining; a teammate's switch followed
 * by an open editor, told in a notification (who, what) with Undo (confirmed first) and Hold; the
 * latest decision in words; drift from an edited team layer and the team file brought up to date;
 * no ghost peer after a re-join.
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { AgentClient } from '../../../shared/client';
import { LayerSpec, TEAM_FILE } from '../../../protocol';
import { digestLayerDir } from '../../../daemon/team/digest';
import { COMMANDS, ITEMS } from '../../../extension/constants';
import type { StrataApi } from '../../../extension/api';
import type { TeamItem } from '../../../extension/trees/team';
import { click, clientFor, eventually, extension, notice, createMappedLayers, startRelay, startSecondAgent, strata } from './helpers';

export function teamTests(): void {
  describe('team', function () {
    this.timeout(90000);
    let api: StrataApi;
    let c: AgentClient;
    let dir: string;
    let secretFile: string;
    let teamFile: string;
    let relay: { url: string; stop(): void } | undefined;
    let url: string;
    let bob: AgentClient | undefined;
    let bobHome: string;
    let stopBob: (() => Promise<void>) | undefined;
    let joined = false;
    // Two team layers, in one slot, that map /<id> of alice's view: its file reads TA, TB or base.
    const id = `tm-${crypto.randomBytes(3).toString('hex')}`;
    const ta = `${id}-ta`;
    const tb = `${id}-tb`;
    let file: string;
    let base: string;
    const asked: string[] = [];

    const items = (): TeamItem[] => api.teamProvider.getChildren();
    const host = os.hostname();
    const doc = () => vscode.workspace.openTextDocument(vscode.Uri.file(file));
    const bobActive = async () => (await bob!.call('status', {})).active;
    const answer = (choice: string | undefined) =>
      api.answerQuestions((message) => {
        asked.push(message);
        return choice;
      });

    const createLayers = (client: AgentClient) =>
      createMappedLayers(
        client,
        dir,
        id,
        [
          [ta, 'src-a'],
          [tb, 'src-b'],
        ],
        'team test layer',
      );

    before(async function () {
      api = await strata();
      c = await clientFor(api.home());
      if ((await c.call('team.status', {})).joined) {
        // Never take the harness's agent out of a team it was put in.
        this.skip();
      }
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-team-'));
      fs.chmodSync(dir, 0o755);
      for (const [where, text] of [
        ['src-a', 'TA'],
        ['src-b', 'TB'],
        [`base/${id}`, 'base'],
      ]) {
        fs.mkdirSync(path.join(dir, where), { recursive: true });
        fs.writeFileSync(path.join(dir, where, 'tool.txt'), text);
      }
      base = path.join(dir, 'base');
      const mnt = path.join(dir, 'mnt');
      fs.mkdirSync(mnt);
      file = path.join(mnt, id, 'tool.txt');
      await createLayers(c);
      await c.call('view.add', { base, at: mnt });

      secretFile = path.join(dir, 'team.secret');
      fs.writeFileSync(secretFile, 'extension host test secret 2026', { mode: 0o600 });
      relay = await startRelay(secretFile);
      url = relay.url;

      bobHome = path.join(dir, 'bob-home');
      ({ client: bob, stop: stopBob } = await startSecondAgent(bobHome));
      await createLayers(bob);

      const digests: Record<string, { digest: string }> = {};
      for (const n of [ta, tb]) {
        const mine = await digestLayerDir(path.join(api.home(), 'layers', n));
        assert.strictEqual(await digestLayerDir(path.join(bobHome, 'layers', n)), mine, `${n} is the same on both machines`);
        digests[n] = { digest: mine };
      }
      teamFile = path.join(dir, TEAM_FILE);
      fs.writeFileSync(
        teamFile,
        JSON.stringify({ format: 1, team: 'ext-test', relays: [url], layers: digests, defaults: [], slots: { tool: [ta, tb] } }, null, 2) +
          '\n',
      );
      await bob.call('team.join', { url, secretFile, teamFile, name: 'bob' });
    });

    after(async () => {
      api?.answerQuestions(null);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      if (joined) await c.call('team.leave', {}).catch(() => {});
      await c?.call('deactivate', { names: [ta, tb], force: true }).catch(() => {});
      if (base) await c?.call('view.rm', { base }).catch(() => {});
      for (const n of [ta, tb]) await c?.call('layer.rm', { name: n }).catch(() => {});
      await stopBob?.();
      relay?.stop();
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
      const peer = await eventually('bob in the Team view', () => items().find((i) => i.label === `bob@${host}`), 30000);
      assert.strictEqual(peer.contextValue, ITEMS.teamPeer);
      assert.match(String(peer.description), /^(connected|via-relay) · no layers/);
      const header = items().find((i) => i.contextValue === ITEMS.teamHeader);
      assert.strictEqual(header?.label, 'Team ext-test');
      // The user's name, not the agent id (its key's fingerprint), which the tooltip gives.
      assert.match(String(header?.description), /^as alice/);
      assert.match(String(header?.tooltip), /agent [A-Z2-7]{8}(-[A-Z2-7]{8}){3}/);
      await eventually('the status bar to show the team', () => api.statusBarText().includes('$(sync) team'), 5000);
    });

    it('does not offer Join Team… while joined', () => {
      const menus = (extension().packageJSON as { contributes: { menus: Record<string, { command: string; when?: string }[]> } })
        .contributes.menus;
      const offers = Object.entries(menus).flatMap(([where, entries]) =>
        entries.filter((e) => e.command === COMMANDS.joinTeam && where !== 'view/item/context').map((e) => `${where}: ${e.when}`),
      );
      assert.ok(offers.length >= 3, offers.join('\n'));
      for (const o of offers) assert.match(o, /!strata\.teamJoined/, o);
    });

    it("an open editor follows a teammate's switch, and a notification says who did what", async () => {
      const d = await doc();
      await vscode.window.showTextDocument(d, { preview: false });
      assert.strictEqual(d.getText(), 'base');
      const since = Date.now();
      await bob!.call('activate', { names: [ta] });
      await eventually(`the editor to show TA (it shows ${JSON.stringify(d.getText())})`, () => d.getText() === 'TA', 20000);
      const n = await notice(api, /^Strata: bob changed the team's layers: /, since, 20000);
      assert.strictEqual(n.message, `Strata: bob changed the team's layers: activated ${ta}. Your views follow.`);
      assert.deepStrictEqual(
        n.actions.map((a) => a.title),
        ['Undo', 'Hold'],
      );
      const latest = await eventually('the decision in the Team view', () => items().find((i) => i.contextValue === ITEMS.teamDecision));
      assert.match(String(latest.label), new RegExp(`^bob: activated ${ta}, (just now|\\d+ s ago)$`));
      assert.match(String(latest.description), /^applied on [12] of 2$/);
    });

    it('a swap reads "bob: A → B"; Undo asks first, then reverts it for the whole team', async () => {
      const d = await doc();
      let since = Date.now();
      await bob!.call('swap', { old: ta, new: tb });
      await eventually('the editor to show TB', () => d.getText() === 'TB', 20000);
      const n = await notice(api, new RegExp(`bob changed the team's layers: ${ta} → ${tb}\\.`), since, 20000);
      await eventually('the swap in the Team view', () =>
        items().some((i) => i.contextValue === ITEMS.teamDecision && String(i.label).startsWith(`bob: ${ta} → ${tb}, `)),
      );

      answer(undefined); // the user closes the dialog
      await click(n, 'Undo');
      assert.match(asked.at(-1) ?? '', new RegExp(`^Undo bob's change \\(${ta} → ${tb}\\) for the whole team\\?`));
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepStrictEqual(await bobActive(), [tb], 'nothing was reverted without a yes');

      answer('Undo for the Team');
      since = Date.now();
      await click(n, 'Undo');
      await eventually('bob back on A', async () => (await bobActive()).includes(ta), 20000);
      await eventually('the editor to show TA', () => d.getText() === 'TA', 20000);
      assert.ok(!api.notices().some((x) => x.at >= since && /bob changed/.test(x.message)), 'my own undo is no teammate news');
    });

    it('Hold keeps my layers here while the team moves on; Follow the Team switches back', async () => {
      const d = await doc();
      const since = Date.now();
      await bob!.call('swap', { old: ta, new: tb });
      await eventually('the editor to show TB', () => d.getText() === 'TB', 20000);
      const n = await notice(api, new RegExp(`bob changed the team's layers: ${ta} → ${tb}\\.`), since, 20000).catch(async (e) => {
        const st = await c.call('team.status', {});
        throw new Error(
          `${e.message}; latest decision ${JSON.stringify(st.lastDecision)}; history ${JSON.stringify((await c.call('team.history', {})).map((x) => [x.origin, x.seq, x.tag]))}`,
        );
      });
      await click(n, 'Hold');
      await eventually(
        () =>
          `the editor to show TA again (it shows ${d.getText()}; notices: ${api
            .notices()
            .map((x) => x.message)
            .slice(-3)
            .join(' | ')})`,
        () => d.getText() === 'TA',
        20000,
      );
      const st = await c.call('team.status', {});
      assert.deepStrictEqual([...(st.held ?? [])].sort(), [ta, tb].sort());
      assert.deepStrictEqual(await bobActive(), [tb], 'the team keeps its decision');
      await eventually('the Team view to show the holds', () => items().filter((i) => i.contextValue === ITEMS.teamHeld).length === 2);

      await vscode.commands.executeCommand(COMMANDS.followTeam);
      await eventually('the editor to follow the team again (TB)', () => d.getText() === 'TB', 20000);
      assert.deepStrictEqual((await c.call('team.status', {})).held, []);
    });

    it('an edited team layer is drift: the editor warns first, the Team view shows it, and the team file can be updated', async () => {
      answer('Save Only');
      await vscode.commands.executeCommand('strata.editLayer', tb);
      const { format, name, version, priority, mappings, excludes, deletes } = await c.call('layer.show', { name: tb });
      const spec: LayerSpec = { format, name, version, priority, mappings, excludes, deletes, description: 'edited on alice only' };
      const since = Date.now();
      const replies = await api.editorMessage({ type: 'save', requestId: 41, name: tb, spec });
      assert.deepStrictEqual(
        replies.map((r) => r.type),
        ['saved'],
        JSON.stringify(replies),
      );
      assert.match(asked.at(-1) ?? '', new RegExp(`^${tb} is a layer of team ext-test\\. Save the change on this machine\\?`));

      const st = await eventually('the drift in the team status', async () => {
        const s = await c.call('team.status', {});
        return s.drift?.includes(`~${tb}`) ? s : null;
      });
      assert.deepStrictEqual(
        st.contentDrift?.map((x) => x.layer),
        [tb],
      );
      await eventually('the drift in the Team view', () =>
        items().some((i) => i.contextValue === ITEMS.teamContentDrift && i.label === `${tb} differs from the team file`),
      );
      await eventually("bob to see alice's drift", async () => {
        const s = await bob!.call('team.status', {});
        return s.peers?.some((p) => p.user === 'alice' && p.drift.includes(`~${tb}`));
      });
      const n = await notice(api, new RegExp(`${tb} now differs from the team file \\(drift\\)`), since);

      await click(n, 'Update Team File');
      const here = st.contentDrift![0].here;
      await eventually(
        'the team file to name the new digest',
        () => JSON.parse(fs.readFileSync(teamFile, 'utf8')).layers[tb].digest === here,
      );
      await eventually('the drift to end here', async () => !(await c.call('team.status', {})).drift?.includes(`~${tb}`));
      api.answerQuestions(null);
    });

    it('a teammate who leaves and joins again shows up once, with no ghost', async () => {
      const before = (await bob!.call('team.status', {})).agent;
      await bob!.call('team.leave', {});
      await bob!.call('team.join', { url, secretFile, teamFile, name: 'bob' });
      const after = (await bob!.call('team.status', {})).agent;
      assert.notStrictEqual(after, before);
      // Alice keeps the old presence (via the relay, then gone): the view hides it.
      await eventually('the new bob in the Team view', () => items().some((i) => i.id === `peer:${after}`), 20000);
      const raw = await c.call('team.status', {});
      assert.ok(
        raw.peers?.some((p) => p.agent === before),
        'the agent still knows the old presence (this test would prove nothing otherwise)',
      );
      const bobs = items().filter((i) => i.label === `bob@${host}`);
      assert.deepStrictEqual(
        bobs.map((i) => i.id),
        [`peer:${after}`],
      );
    });
  });
}
