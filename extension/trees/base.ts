/** What every Strata tree shares: refresh on the context's changes, items as their own tree items. */
import * as vscode from 'vscode';
import { Change, Ctx } from '../ctx';

export abstract class CtxTree<T extends vscode.TreeItem> implements vscode.TreeDataProvider<T>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<T | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly sub: vscode.Disposable;

  /** `ignore`: the kind of change this tree does not show (e.g. team changes for the Layers tree). */
  constructor(
    protected readonly ctx: Ctx,
    ignore: Change,
  ) {
    this.sub = ctx.onDidChange((c) => {
      if (c !== ignore) this.refresh();
    });
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: T): vscode.TreeItem {
    return node;
  }

  abstract getChildren(node?: T): T[];

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
