/**
 * VS Code follows a switch made outside it (the CLI): an open editor shows the new content with no
 * refresh and without taking the focus, a file with unsaved edits keeps them and offers Compare and
 * Reload, and the processes still holding a replaced file are named, a task among them restarted.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn } from 'child_process';
import * as vscode from 'vscode';
import { AgentClient } from '../../../shared/client';
import type { StrataApi } from '../../../extension/api';
import { Fixture, cli, click, clientFor, eventually, makeFixture, notice, read, strata } from './helpers';

/** Kill a process started with `detached` and what it started (its sleep holds the file too). */
function killGroup(p: ChildProcess): void {
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

export function followTests(): void {
  describe('VS Code follows a switch', function () {
    this.timeout(90000);
    let api: StrataApi;
    let c: AgentClient;
    let fx: Fixture;
    let plain: string;
    const children: ChildProcess[] = [];

    const files = () => vscode.workspace.getConfiguration('files');
    let autoSave: string | undefined;

    before(async () => {
      api = await strata();
      c = await clientFor(api.home());
      fx = await makeFixture(c, 'fol');
      plain = path.join(fx.dir, 'plain.txt');
      fs.writeFileSync(plain, 'a file outside any view\n');
      // In a browser VS Code saves edits after a second by default: keep them unsaved, as on a desktop.
      autoSave = files().inspect<string>('autoSave')?.globalValue;
      await files().update('autoSave', 'off', vscode.ConfigurationTarget.Global);
    });

    after(async () => {
      await files().update('autoSave', autoSave, vscode.ConfigurationTarget.Global);
      for (const ch of children) killGroup(ch);
      for (const x of vscode.tasks.taskExecutions) x.terminate();
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor').then(undefined, () => {});
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      await fx?.cleanup();
      c?.close();
    });

    it('an open editor shows the new content after a switch made from the CLI, and the focus stays put', async () => {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(fx.file));
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
      await vscode.window.showTextDocument(vscode.Uri.file(plain), { viewColumn: vscode.ViewColumn.Two, preview: false });
      assert.strictEqual(doc.getText(), 'base');
      const r = await cli(api.home(), 'activate', fx.a);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(read(fx.file), 'A');
      await eventually(`the editor to show A (it shows ${JSON.stringify(doc.getText())})`, () => doc.getText() === 'A', 10000);
      assert.strictEqual(vscode.window.activeTextEditor?.document.uri.fsPath, plain, 'the active editor is still the one the user was in');
      const rec = [...api.follows()].reverse().find((f) => f.reloaded.includes(fx.file));
      assert.ok(rec, `a follow record names ${fx.file}: ${JSON.stringify(api.follows())}`);
      assert.match(rec.reason, /^activate/);
    });

    it('an editor whose file kept its size and time is read again when it becomes the active editor', async () => {
      // Two versions with the same size and mtime: VS Code's own reload sees no change.
      const t = new Date('2020-01-01T00:00:00Z');
      for (const n of [fx.a, fx.b]) fs.utimesSync(path.join(api.home(), 'layers', n, 'files', 'tool.txt'), t, t);
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(fx.file));
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
      await vscode.commands.executeCommand('workbench.action.files.revert'); // now it holds A with the 2020 mtime
      await vscode.window.showTextDocument(vscode.Uri.file(plain), { viewColumn: vscode.ViewColumn.Two, preview: false });
      assert.strictEqual(doc.getText(), 'A');
      const r = await cli(api.home(), 'activate', fx.b);
      assert.strictEqual(r.code, 0, r.stderr);
      await eventually('the switch to be followed', () =>
        api.follows().some((f) => f.reason.startsWith('activate') && f.at > Date.now() - 5000),
      );
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
      await eventually(`the editor to show B (it shows ${JSON.stringify(doc.getText())})`, () => doc.getText() === 'B', 10000);
      const back = await cli(api.home(), 'deactivate', fx.b);
      assert.strictEqual(back.code, 0, back.stderr);
      await eventually('the editor to show A again', () => doc.getText() === 'A', 10000);
    });

    it('a file with unsaved edits keeps them, and "Reload" reads the new content', async () => {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(fx.file));
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
      const edit = new vscode.WorkspaceEdit();
      edit.insert(doc.uri, new vscode.Position(0, 1), ' edited');
      assert.ok(await vscode.workspace.applyEdit(edit));
      assert.strictEqual(doc.getText(), 'A edited');
      const since = Date.now();
      const r = await cli(api.home(), 'activate', fx.b);
      assert.strictEqual(r.code, 0, r.stderr);
      const n = await notice(api, /tool\.txt changed on disk with the switch, and it has unsaved edits here/, since);
      assert.deepStrictEqual(
        n.actions.map((a) => a.title),
        ['Compare', 'Reload'],
      );
      assert.strictEqual(doc.getText(), 'A edited', 'the edits are kept');
      assert.ok(doc.isDirty);
      await click(n, 'Reload');
      await eventually(
        `the editor to show B (it shows ${JSON.stringify(doc.getText())})`,
        () => doc.getText() === 'B' && !doc.isDirty,
        10000,
      );
    });

    it('names the processes still holding a replaced file, and restarts a task by running it again', async () => {
      // A task and a plain child of the extension host, each holding the file of layer B open.
      const started = new Promise<vscode.TaskProcessStartEvent>((resolve) => {
        const sub = vscode.tasks.onDidStartTaskProcess((e) => {
          if (e.execution.task.name === 'hold-tool') {
            sub.dispose();
            resolve(e);
          }
        });
      });
      const hold = `exec 3< '${fx.file}'; echo holding; sleep 600`;
      await vscode.tasks.executeTask(
        new vscode.Task({ type: 'shell' }, vscode.TaskScope.Workspace, 'hold-tool', 'strata-test', new vscode.ShellExecution(hold)),
      );
      const first = await started;
      const child = spawn('sh', ['-c', hold], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      children.push(child);
      await new Promise<void>((res) => child.stdout!.once('data', () => res()));
      // The agent sees both holders: a plain deactivate is refused as busy.
      await eventually('the agent to see B busy', async () => {
        const r = await cli(api.home(), 'deactivate', fx.b);
        return r.code !== 0 && /busy|are open/i.test(r.stderr);
      });

      const since = Date.now();
      const r = await cli(api.home(), 'deactivate', '--force', fx.b);
      assert.strictEqual(r.code, 0, r.stderr);
      const n = await notice(api, /still run the old/, since);
      assert.match(n.message, /2 processes still run the old .*-b: /);
      assert.match(n.message, /task "hold-tool" \(pid \d+\)/);
      assert.match(n.message, new RegExp(`sh \\(started by an extension\\) \\(pid ${child.pid}\\)`));
      const rec = [...api.follows()].reverse().find((f) => f.stale.length);
      assert.ok(rec);
      const kinds = rec.stale.map((p) => [p.kind, p.from.join(','), !!p.restart]).sort();
      assert.deepStrictEqual(kinds, [
        ['extension', fx.b, false],
        ['task', fx.b, true],
      ]);

      const again = new Promise<vscode.TaskProcessStartEvent>((resolve) => {
        const sub = vscode.tasks.onDidStartTaskProcess((e) => {
          if (e.execution.task.name === 'hold-tool') {
            sub.dispose();
            resolve(e);
          }
        });
      });
      await click(n, 'Restart task "hold-tool"');
      const second = await again;
      assert.notStrictEqual(second.processId, first.processId, 'the task runs again in a new process');
      await eventually('the old task process to end', () => !fs.existsSync(`/proc/${first.processId}`), 10000);
      // Both still hold what they opened: end them, so the next switch names only its own holders.
      killGroup(child);
      second.execution.terminate();
      await eventually(
        'the holders to end',
        () => !fs.existsSync(`/proc/${second.processId}`) && (child.exitCode !== null || child.signalCode !== null),
        10000,
      );
    });

    it("offers to restart a language server through its extension's command, and only when that command exists", async () => {
      // A stand-in for rust-analyzer started by an extension (this host), holding the file of layer A.
      const server = path.join(fx.dir, 'rust-analyzer');
      fs.writeFileSync(server, `#!/bin/sh\nexec 3< '${fx.file}'\necho ready\nsleep 600\n`, { mode: 0o755 });
      const start = async () => {
        const p = spawn(server, [], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
        children.push(p);
        await new Promise<void>((res) => p.stdout!.once('data', () => res()));
        return p;
      };
      const switchAway = async () => {
        const since = Date.now();
        assert.strictEqual((await cli(api.home(), 'deactivate', '--force', fx.a)).code, 0);
        return notice(api, /still runs? the old/, since);
      };
      assert.strictEqual((await cli(api.home(), 'activate', fx.a)).code, 0);
      let p = await start();
      let n = await switchAway();
      assert.strictEqual(n.message, `Strata: 1 process still runs the old ${fx.a}: rust-analyzer (pid ${p.pid}).`);
      assert.deepStrictEqual(
        n.actions.map((a) => a.title),
        ['Show Processes'],
        'no restart without the rust-analyzer extension',
      );
      killGroup(p);

      let restarts = 0;
      const fake = vscode.commands.registerCommand('rust-analyzer.restartServer', () => restarts++);
      try {
        assert.strictEqual((await cli(api.home(), 'activate', fx.a)).code, 0);
        p = await start();
        n = await switchAway();
        await click(n, 'Restart rust-analyzer');
        assert.strictEqual(restarts, 1);
      } finally {
        fake.dispose();
        killGroup(p);
      }
    });
  });
}
