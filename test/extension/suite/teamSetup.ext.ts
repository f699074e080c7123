/**
 * A team set up from the editor, from no team file to a working switch: Add Layer to Team File
 * writes strata.team.json (as `strata team init` and `team add` would: the same text), Join Team
 * joins with it, a second agent ("bob", the CLI, its own STRATA_HOME) joins the same file, and his
 * switch reaches alice's view and her Team view; a layer added while joined is the agent's team
 * layer at once (team.reload).
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as net from 'net';
import * as path from 'path';
import * as vscode from 'vscode';
import { AgentClient } from '../../../shared/client';
import { TEAM_FILE } from '../../../protocol';
import { digestLayerDir } from '../../../daemon/team/digest';
import { COMMANDS, ITEMS } from '../../../extension/constants';
import type { StrataApi } from '../../../extension/api';
import type { TeamItem } from '../../../extension/trees/team';
import type { LayerItem } from '../../../extension/trees/layers';
import {
  answerInputs,
  cli,
  clientFor,
  eventually,
  notice,
  read,
  createMappedLayers,
  startRelay,
  startSecondAgent,
  strata,
} from './helpers';

export function teamSetupTests(): void {
  describe('team set-up from the editor', function () {
    this.timeout(90000);
    let api: StrataApi;
    let c: AgentClient;
    let dir: string;
    let wsFile: string;
    let relay: { url: string; stop(): void } | undefined;
    let url: string;
    let bob: AgentClient | undefined;
    let bobHome: string;
    let stopBob: (() => Promise<void>) | undefined;
    let base: string;
    let file: string;
    let joined = false;
    const secret = 'extension set-up secret 2026';
    const id = `ts-${crypto.randomBytes(3).toString('hex')}`;
    const la = `${id}-a`;
    const lb = `${id}-b`;
    const asked: string[] = [];

    const items = (): TeamItem[] => api.teamProvider.getChildren();
    const answer = (choice: string | undefined) =>
      api.answerQuestions((message) => {
        asked.push(message);
        return choice;
      });
    const add = (arg?: unknown) =>
      vscode.commands.executeCommand<{ file: string; digest: string; changed: boolean } | undefined>(COMMANDS.addLayerToTeamFile, arg);

    const createLayers = (client: AgentClient) =>
      createMappedLayers(
        client,
        dir,
        id,
        [
          [la, 'src-a'],
          [lb, 'src-b'],
        ],
        'set-up test',
      );

    before(async function () {
      api = await strata();
      c = await clientFor(api.home());
      if ((await c.call('team.status', {})).joined) this.skip(); // never take the harness's agent out of its team
      const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      assert.ok(ws, 'the test window has a workspace folder');
      wsFile = path.join(ws, TEAM_FILE);
      assert.ok(!fs.existsSync(wsFile), `${wsFile} does not exist yet (this suite creates it)`);

      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-setup-'));
      fs.chmodSync(dir, 0o755);
      for (const [where, text] of [
        ['src-a', 'A'],
        ['src-b', 'B'],
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
      await eventually('the Layers view to list the new layers', () => api.layersProvider.getChildren().some((i) => i.label === la));

      const secretFile = path.join(dir, 'team.secret');
      fs.writeFileSync(secretFile, secret, { mode: 0o600 });
      relay = await startRelay(secretFile);
      url = relay.url;

      bobHome = path.join(dir, 'bob-home');
      ({ client: bob, stop: stopBob } = await startSecondAgent(bobHome));
      await createLayers(bob);
    });

    after(async () => {
      api?.answerQuestions(null);
      api?.answerInputs(null);
      if (wsFile) fs.rmSync(wsFile, { force: true }); // first: leaving would offer to join its team again
      if (joined) await c.call('team.leave', {}).catch(() => {});
      await c?.call('deactivate', { names: [la, lb], force: true }).catch(() => {});
      if (base) await c?.call('view.rm', { base }).catch(() => {});
      for (const n of [la, lb]) await c?.call('layer.rm', { name: n }).catch(() => {});
      await stopBob?.();
      relay?.stop();
      c?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('with no team file, Add Layer to Team File on a Layers item creates strata.team.json with the layer’s digest', async () => {
      const item = api.layersProvider.getChildren().find((i): i is LayerItem => i.label === la);
      assert.ok(item, `${la} in the Layers view`);
      answer('Create Team File');
      const prompts = answerInputs(api, ['not a name!', 'ext-setup', 'http://nope', (p) => (p.invalid ? url : undefined)]);
      const since = Date.now();
      const r = await add(item);

      assert.match(asked.at(-1) ?? '', new RegExp(`^There is no ${TEAM_FILE} in this workspace\\. Create one in `));
      assert.deepStrictEqual(
        prompts.map((p) => [p.title, p.invalid ?? null]),
        [
          ['Create Team File (1/2)', null],
          ['Create Team File (1/2)', 'Up to 64 letters, digits, ".", "_", "+" and "-", starting with a letter or digit'],
          ['Create Team File (2/2)', null],
          ['Create Team File (2/2)', 'http://nope is not a ws:// or wss:// address, like ws://relay.example.com:7450'],
        ],
      );
      assert.ok(r?.changed, JSON.stringify(r));
      const written = JSON.parse(read(wsFile) ?? 'null');
      const digest = await digestLayerDir(path.join(api.home(), 'layers', la));
      assert.deepStrictEqual(written, {
        format: 1,
        team: 'ext-setup',
        relays: [url],
        layers: { [la]: { digest, version: '1.0.0' } },
        defaults: [],
        slots: {},
      });
      const n = await notice(api, /^Strata: created .*strata\.team\.json for team ext-setup with /, since);
      assert.match(n.message, /Commit it to share it with the team\./);
      assert.deepStrictEqual(
        n.actions.map((a) => a.title),
        ['Open Team File', 'Join Team'],
      );
    });

    it('the CLI’s team init and team add write the same pin, and the same file, for the same layer', async () => {
      const ext = read(wsFile);
      const initFile = path.join(dir, 'init', TEAM_FILE);
      const addFile = path.join(dir, 'add', TEAM_FILE);
      fs.mkdirSync(path.dirname(initFile));
      fs.mkdirSync(path.dirname(addFile));
      const init = await cli(api.home(), 'team', 'init', '--team', 'ext-setup', '--relay', url, '--layer', la, '--team-file', initFile);
      assert.strictEqual(init.code, 0, init.stderr);
      assert.strictEqual(read(initFile), ext, 'team init --layer writes what the extension wrote');
      const empty = await cli(api.home(), 'team', 'init', '--team', 'ext-setup', '--relay', url, '--team-file', addFile);
      assert.strictEqual(empty.code, 0, empty.stderr);
      const added = await cli(api.home(), 'team', 'add', la, '--team-file', addFile);
      assert.strictEqual(added.code, 0, added.stderr);
      assert.deepStrictEqual(JSON.parse(read(addFile)!).layers[la], JSON.parse(ext!).layers[la], 'team add pins it the same way');
    });

    it('the same digest again changes nothing; another digest is replaced only once the user agrees', async () => {
      const before = read(wsFile)!;
      let since = Date.now();
      const same = await add(la);
      assert.strictEqual(same?.changed, false);
      await notice(api, new RegExp(`already pins ${la} with this machine's digest`), since);
      assert.strictEqual(read(wsFile), before);

      const stale = JSON.parse(before);
      stale.layers[la].digest = `sha256:${'0'.repeat(64)}`;
      const staleText = JSON.stringify(stale, null, 2) + '\n';
      fs.writeFileSync(wsFile, staleText);
      answer(undefined); // the user closes the dialog
      assert.strictEqual(await add(la), undefined);
      assert.match(asked.at(-1) ?? '', new RegExp(`pins ${la} with another digest\\. Replace it with this machine's\\?$`));
      assert.strictEqual(read(wsFile), staleText, 'nothing written without a yes');

      answer('Replace Digest');
      since = Date.now();
      assert.ok((await add(la))?.changed);
      assert.strictEqual(read(wsFile), before);
      await notice(api, new RegExp(`now pins ${la} \\(sha256:`), since);
    });

    it('Join Team with that file and a secret; bob joins it from the CLI; his switch reaches alice’s view and her Team view', async () => {
      const prompts = answerInputs(api, [(p) => p.value, secret, 'alice']);
      const st = await vscode.commands.executeCommand<{ team?: string } | undefined>(COMMANDS.joinTeam, vscode.Uri.file(wsFile));
      assert.strictEqual(st?.team, 'ext-setup', JSON.stringify(st));
      joined = true;
      assert.deepStrictEqual(
        prompts.map((p) => [p.title, p.value]),
        [
          ['Join Team ext-setup (1/3)', url],
          ['Join Team ext-setup (2/3)', undefined],
          ['Join Team ext-setup (3/3)', os.userInfo().username],
        ],
      );

      const bobSecret = path.join(dir, 'bob.secret');
      fs.writeFileSync(bobSecret, secret, { mode: 0o600 });
      const j = await cli(bobHome, 'team', 'join', url, '--secret-file', bobSecret, '--name', 'bob', '--team-file', wsFile);
      assert.strictEqual(j.code, 0, j.stderr);
      await eventually(
        'bob in the Team view',
        () => items().some((i) => i.contextValue === ITEMS.teamPeer && /^bob@/.test(String(i.label))),
        30000,
      );

      assert.strictEqual(fs.readFileSync(file, 'utf8'), 'base');
      const sw = await cli(bobHome, 'activate', la);
      assert.strictEqual(sw.code, 0, sw.stderr);
      await eventually(`alice's view to serve ${la}`, () => fs.readFileSync(file, 'utf8') === 'A', 20000);
      await eventually('bob’s decision in the Team view', () =>
        items().some((i) => i.contextValue === ITEMS.teamDecision && new RegExp(`^bob: activated ${la}, `).test(String(i.label))),
      );
    });

    it('Add Layer to Team File while joined: the agent’s team status lists the new team layer at once', async () => {
      assert.deepStrictEqual((await c.call('team.status', {})).teamLayers, [la]);
      const prompts = answerInputs(api, [lb]);
      const r = await add();
      assert.ok(r?.changed, JSON.stringify(r));
      assert.deepStrictEqual(prompts[0]?.items?.includes(la), false, `the pick offers only layers not in the file: ${prompts[0]?.items}`);
      assert.ok(prompts[0]?.items?.includes(lb), String(prompts[0]?.items));
      const digest = await digestLayerDir(path.join(api.home(), 'layers', lb));
      assert.strictEqual(JSON.parse(read(wsFile)!).layers[lb].digest, digest);
      const st = await c.call('team.status', {});
      assert.deepStrictEqual([...(st.teamLayers ?? [])].sort(), [la, lb].sort());
    });
  });

  describe('joining a NATS team from the editor', function () {
    this.timeout(60000);
    let api: StrataApi;
    let c: AgentClient;
    let dir: string;

    before(async function () {
      api = await strata();
      c = await clientFor(api.home());
      if ((await c.call('team.status', {})).joined) this.skip(); // never take the harness's agent out of its team
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-nats-'));
    });
    after(() => {
      api?.answerInputs(null);
      c?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('takes a NATS address, asks for the credentials file as a fourth step, and says which server it could not reach', async () => {
      // A port nothing listens on: the join must fail, naming that server.
      const srv = net.createServer();
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as net.AddressInfo).port;
      await new Promise((r) => srv.close(r));
      const natsUrl = `nats://127.0.0.1:${port}`;
      const file = path.join(dir, TEAM_FILE);
      fs.writeFileSync(file, JSON.stringify({ format: 1, team: 'ext-nats', relays: [natsUrl], layers: {}, defaults: [], slots: {} }));
      const creds = path.join(dir, 'nats.creds');
      fs.writeFileSync(creds, JSON.stringify({ user: 'alice', password: 'not-a-real-one' }), { mode: 0o600 });
      const prompts = answerInputs(api, [(p) => p.value, 'a nats team secret 2026', 'alice', creds]);
      const since = Date.now();
      await vscode.commands.executeCommand(COMMANDS.joinTeam, vscode.Uri.file(file));
      assert.deepStrictEqual(
        prompts.map((p) => [p.title, p.invalid ?? null]),
        [
          ['Join Team ext-nats (1/4)', null],
          ['Join Team ext-nats (2/4)', null],
          ['Join Team ext-nats (3/4)', null],
          ['Join Team ext-nats (4/4)', null],
        ],
      );
      assert.strictEqual(prompts[0].value, natsUrl);
      await notice(api, new RegExp(`cannot reach the NATS server at nats://127\\.0\\.0\\.1:${port}`), since);
      assert.strictEqual((await c.call('team.status', {})).joined, false);
    });
  });
}
