/**
 * Editors follow a switch. FUSE gives VS Code's file watcher no event when a switch changes what a
 * view serves, so VS Code would keep showing the old content. After a change the agent announced:
 *  - the active editor, if it shows a changed file without unsaved edits, is reverted: VS Code reads
 *    the file again (a forced read: it does not trust size and mtime, which two versions of a file
 *    may share);
 *  - another visible editor is opened again with forceReload, which reads the file when its size or
 *    mtime changed, without moving the focus; a tab in the background is read by VS Code when shown.
 *    Both are checked against the disk when they next become the active editor, and reverted if they
 *    still differ;
 *  - a changed file with unsaved edits keeps them, and the user gets a notice: "Compare" (the file
 *    on disk against the edits) or "Reload" (discard the edits, read the file).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { Action } from '../errors';
import { Logger } from '../log';
import { isUnderAny } from './paths';

/** The file as it is on disk now, for "Compare" (read when the diff asks for it). */
const DISK_SCHEME = 'strata-disk';
/** EditorActivation.PRESERVE of the workbench's editor options: keep the active editor group. */
const EDITOR_ACTIVATION_PRESERVE = 3;

export interface EditorsFollowed {
  /** Files shown in an editor, read again. */
  reloaded: string[];
  /** Files with unsaved edits that changed on disk. */
  dirty: string[];
}

export class EditorFollower implements vscode.Disposable {
  private readonly subs: vscode.Disposable[];
  private readonly diskChanged = new vscode.EventEmitter<vscode.Uri>();
  /** Files changed on disk while shown in an editor that is not the active one: checked when it becomes active. */
  private readonly unchecked = new Set<string>();

  constructor(private readonly log: Logger) {
    this.subs = [
      this.diskChanged,
      vscode.workspace.registerTextDocumentContentProvider(DISK_SCHEME, {
        onDidChange: this.diskChanged.event,
        provideTextDocumentContent: (uri) => {
          try {
            return fs.readFileSync(uri.fsPath, 'utf8');
          } catch (e) {
            return `(${(e as Error).message})`;
          }
        },
      }),
      vscode.window.onDidChangeActiveTextEditor((e) => e && void this.check(e.document)),
    ];
  }

  /** Reload the editors of files under `roots`; the notices for edited ones go to `show`. */
  async follow(roots: readonly string[], show: (message: string, actions: Action[]) => void): Promise<EditorsFollowed> {
    const out: EditorsFollowed = { reloaded: [], dirty: [] };
    const dirty = new Map<string, vscode.Uri>();
    const active = activeTextTab();
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        const uri = tab.input instanceof vscode.TabInputText ? tab.input.uri : undefined;
        if (!uri || uri.scheme !== 'file' || !isUnderAny(uri.fsPath, roots)) continue;
        if (tab.isDirty) {
          dirty.set(uri.toString(), uri);
          continue;
        }
        try {
          if (tab === active) {
            await vscode.commands.executeCommand('workbench.action.files.revert');
            out.reloaded.push(uri.fsPath);
            continue;
          }
          this.unchecked.add(uri.toString());
          if (!tab.isActive) continue; // in the background: VS Code reads it again when it is shown
          // The workbench's own open command (its group column counts from 0) with forceReload: the
          // editor reads its file when size or mtime changed. PRESERVE (EditorActivation) and
          // preserveFocus keep the active editor group and the focus where they are.
          await vscode.commands.executeCommand('_workbench.open', uri, [
            group.viewColumn - 1,
            { preserveFocus: true, forceReload: true, activation: EDITOR_ACTIVATION_PRESERVE, pinned: !tab.isPreview },
          ]);
          out.reloaded.push(uri.fsPath);
        } catch (e) {
          this.log.warn(`could not reload ${uri.fsPath}: ${(e as Error).message}`);
        }
      }
    }
    for (const uri of dirty.values()) {
      out.dirty.push(uri.fsPath);
      const name = path.basename(uri.fsPath);
      show(`Strata: ${name} changed on disk with the switch, and it has unsaved edits here.`, [
        { title: 'Compare', run: () => this.compare(uri) },
        { title: 'Reload', run: () => reload(uri) },
      ]);
    }
    if (out.reloaded.length) this.log.info(`reloaded ${out.reloaded.join(', ')}`);
    if (out.dirty.length) this.log.info(`kept unsaved edits of ${out.dirty.join(', ')} (the files changed on disk)`);
    return out;
  }

  /** A file changed on disk became the active editor: if it still shows the old content (and has no edits), read it again. */
  private async check(doc: vscode.TextDocument): Promise<void> {
    const key = doc.uri.toString();
    if (!this.unchecked.delete(key)) return;
    await new Promise((r) => setTimeout(r, 300)); // VS Code's own reload of a tab being shown comes first
    if (doc.isDirty || doc.isClosed) return;
    const tab = activeTextTab();
    if (!(tab?.input instanceof vscode.TabInputText) || tab.input.uri.toString() !== key) return;
    let disk: string;
    try {
      disk = fs.readFileSync(doc.uri.fsPath, 'utf8');
    } catch {
      return; // gone: VS Code marks the editor deleted
    }
    if (sameText(disk, doc.getText())) return;
    this.log.info(`reloading ${doc.uri.fsPath}: it still showed what it held before the switch`);
    await vscode.commands.executeCommand('workbench.action.files.revert');
  }

  /** The file on disk (left, read now) against the unsaved edits (right). */
  private compare(uri: vscode.Uri): Thenable<unknown> {
    const disk = uri.with({ scheme: DISK_SCHEME });
    this.diskChanged.fire(disk);
    const name = path.basename(uri.fsPath);
    return vscode.commands.executeCommand('vscode.diff', disk, uri, `${name} (on disk) ↔ ${name} (your edits)`);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

/** The active tab of the active group, when it shows a text file. */
function activeTextTab(): vscode.Tab | undefined {
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
  return tab?.input instanceof vscode.TabInputText ? tab : undefined;
}

/** The same text, whatever the line ends. */
function sameText(a: string, b: string): boolean {
  return a.replace(/\r\n/g, '\n') === b.replace(/\r\n/g, '\n');
}

/** Discard the edits: show the editor and revert it, which reads the file from disk. */
async function reload(uri: vscode.Uri): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(doc, { preview: false });
  await vscode.commands.executeCommand('workbench.action.files.revert');
}
