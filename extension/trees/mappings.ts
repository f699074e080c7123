/**
 * The Mappings view: per view, the effective table of the active layers — which layer answers each
 * mapped path, which mappings are shadowed or hidden, and the excludes and delete entries — so a
 * user sees why a path resolves where it does.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { ViewInfo } from '../../protocol';
import { ITEMS } from '../constants';
import { Ctx } from '../ctx';
import { CtxTree } from './base';
import { RowState, TableRow, effectiveTable } from '../mappingTable';

const ICONS: Record<RowState, [string, string?]> = {
  wins: ['arrow-right', 'charts.green'],
  shadowed: ['debug-step-over', 'disabledForeground'],
  hidden: ['eye-closed', 'disabledForeground'],
  excluded: ['circle-slash', 'disabledForeground'],
  hides: ['trash'],
  passes: ['pass'],
};

function rowDescription(r: TableRow): string {
  switch (r.state) {
    case 'wins':
      return `→ ${r.layer}:${r.destination}`;
    case 'shadowed':
      return `→ ${r.layer}:${r.destination} · shadowed by ${r.by}`;
    case 'hidden':
      return `${r.kind === 'delete' ? 'delete' : `→ ${r.layer}:${r.destination}`} · hidden by ${r.by}`;
    case 'excluded':
      return `${r.layer} · excluded by its own rule`;
    case 'hides':
      return `deleted by ${r.layer}${r.resolvesTo !== 'hidden' ? ` · still served by ${r.resolvesTo}` : ''}`;
    case 'passes':
      return `excluded by ${r.layer} · resolves to ${r.resolvesTo}`;
  }
}

export class ViewItem extends vscode.TreeItem {
  constructor(readonly view: ViewInfo) {
    super(view.mountpoint, vscode.TreeItemCollapsibleState.Expanded);
    this.id = `view:${view.base}`;
    this.description =
      view.state === 'failed' ? `failed: ${view.error ?? 'not mounted'}` : view.inPlace ? 'in place' : `view of ${view.base}`;
    this.contextValue = view.state === 'failed' ? ITEMS.viewFailed : ITEMS.view;
    this.iconPath = new vscode.ThemeIcon(view.state === 'failed' ? 'warning' : 'root-folder');
    this.tooltip = `${view.inPlace ? 'In place over' : 'Serving'} ${view.base}${view.inPlace ? '' : ` at ${view.mountpoint}`}`;
  }
}

export class RowItem extends vscode.TreeItem {
  constructor(
    readonly view: ViewInfo,
    readonly row: TableRow,
  ) {
    super(row.path, vscode.TreeItemCollapsibleState.None);
    this.id = `row:${view.base}:${row.kind}:${row.layer}:${row.path}`;
    this.description = rowDescription(row);
    this.contextValue = `${ITEMS.row}.${row.state}`;
    const [icon, colour] = ICONS[row.state];
    this.iconPath = new vscode.ThemeIcon(icon, colour ? new vscode.ThemeColor(colour) : undefined);
    this.tooltip = `${path.join(view.mountpoint, row.path)}\n${row.kind} of ${row.layer} (priority ${row.priority})\nresolves to ${row.resolvesTo}`;
  }
}

class InfoItem extends vscode.TreeItem {
  constructor(label: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.iconPath = new vscode.ThemeIcon('info');
  }
}

export type MappingNode = ViewItem | RowItem | InfoItem;

export class MappingsProvider extends CtxTree<MappingNode> {
  constructor(ctx: Ctx) {
    super(ctx, 'team');
  }

  getChildren(node?: MappingNode): MappingNode[] {
    const st = this.ctx.status;
    if (!st) return [];
    if (!node) return st.views.map((v) => new ViewItem(v));
    if (!(node instanceof ViewItem)) return [];
    const rows = effectiveTable(st.layers, st.active);
    if (!rows.length)
      return [
        new InfoItem(st.active.length ? 'The active layers have no rules' : 'No active layers: every path passes through to the base'),
      ];
    return rows.map((r) => new RowItem(node.view, r));
  }
}
