/**
 * The Layer Editor webview view. Posts nothing before the webview's `ready`; after it, sends the
 * selected layer again whenever the agent reports a change to it (the webview keeps unsaved edits
 * and offers to reload).
 */
import * as vscode from 'vscode';
import { HostMessage, PathKind, isWebviewMessage } from '../../protocol/webview';
import { VIEWS } from '../constants';
import { Ctx } from '../ctx';
import { editorHtml, nonce } from './html';
import { EditorSession } from './session';

export class LayerEditorProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  readonly session: EditorSession;
  private view: vscode.WebviewView | undefined;
  private viewDisposables: vscode.Disposable[] = [];
  private ready = false;
  private lastLoad = '';
  private readonly sub: vscode.Disposable;

  constructor(
    ctx: Ctx,
    private readonly extensionUri: vscode.Uri,
  ) {
    this.session = new EditorSession(ctx, (kind, start) => this.openDialog(kind, start), ctx.log.for('editor'));
    this.sub = ctx.onDidChange((c) => {
      if (c !== 'team') this.pushLoad(false);
    });
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.disposeView();
    this.view = view;
    view.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
    view.webview.html = editorHtml(view.webview, this.extensionUri, nonce());
    this.viewDisposables.push(
      view.webview.onDidReceiveMessage((m) => void this.receive(m)),
      view.onDidDispose(() => {
        if (this.view === view) this.disposeView();
      }),
    );
  }

  /** Edit `name`: select it and bring the view forward. */
  async show(name: string): Promise<void> {
    this.session.selected = name;
    this.pushLoad(true);
    await vscode.commands.executeCommand(`${VIEWS.layerEditor}.focus`);
  }

  /** Select `name` without moving focus (a selection in the Layers view). */
  select(name: string): void {
    if (this.session.selected === name) return;
    this.session.selected = name;
    this.pushLoad(true);
  }

  private async receive(raw: unknown): Promise<void> {
    if (isWebviewMessage(raw) && raw.type === 'ready') {
      this.ready = true;
      this.lastLoad = '';
    }
    for (const reply of await this.session.handle(raw)) {
      if (reply.type === 'load') this.lastLoad = JSON.stringify(reply);
      this.post(reply);
    }
  }

  private post(m: HostMessage): void {
    if (this.view && this.ready) void this.view.webview.postMessage(m);
  }

  private pushLoad(force: boolean): void {
    if (!this.ready) return;
    const m = this.session.load();
    const key = JSON.stringify(m);
    if (!force && key === this.lastLoad) return;
    this.lastLoad = key;
    this.post(m);
  }

  private async openDialog(kind: PathKind, start: string | undefined): Promise<string | undefined> {
    const picked = await vscode.window.showOpenDialog({
      title: kind === 'destination' ? 'Pick a path inside the layer' : 'Pick a path inside a Strata view',
      defaultUri: start ? vscode.Uri.file(start) : vscode.workspace.workspaceFolders?.[0]?.uri,
      canSelectFiles: true,
      canSelectFolders: true,
      canSelectMany: false,
      openLabel: 'Use Path',
    });
    return picked?.[0]?.fsPath;
  }

  private disposeView(): void {
    for (const d of this.viewDisposables.splice(0)) d.dispose();
    this.view = undefined;
    this.ready = false;
  }

  dispose(): void {
    this.disposeView();
    this.sub.dispose();
  }
}
