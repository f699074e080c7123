/** The Layers view: every layer with its state, version and priority; its rules as children. */
import * as vscode from 'vscode';
import { LayerInfo } from '../../protocol';
import { byPriority } from '../../shared/resolver';
import { COMMANDS, ITEMS } from '../constants';
import { Ctx } from '../ctx';
import { CtxTree } from './base';

export function layerDescription(l: LayerInfo): string {
  const requires = l.requires?.length ? `requires ${l.requires.join(', ')}` : '';
  return [l.version, `priority ${l.priority}`, l.active ? 'active' : '', requires].filter(Boolean).join(' · ');
}

/** The layers that require `name` (from the agent's list). */
export function requiredBy(name: string, layers: readonly LayerInfo[]): string[] {
  return layers.filter((l) => l.requires?.includes(name)).map((l) => l.name);
}

/** Layers in the order they win: priority descending, then name. */
export function orderedLayers(layers: readonly LayerInfo[]): LayerInfo[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  return byPriority(layers).map((r) => byName.get(r.name)!);
}

export class LayerItem extends vscode.TreeItem {
  constructor(
    readonly layer: LayerInfo,
    all: readonly LayerInfo[] = [],
  ) {
    const rules = layer.mappings.length + layer.excludes.length + layer.deletes.length;
    super(layer.name, rules ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    this.id = `layer:${layer.name}`;
    this.description = layerDescription(layer);
    this.contextValue = layer.active ? ITEMS.layerActive : ITEMS.layerInactive;
    this.iconPath = layer.active
      ? new vscode.ThemeIcon('layers-active', new vscode.ThemeColor('charts.green'))
      : new vscode.ThemeIcon('layers');
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**${layer.name}** ${layer.version}  \n`);
    if (layer.description) md.appendText(layer.description + '\n\n');
    md.appendMarkdown(
      `${layer.active ? '$(check) active' : 'inactive'} · priority ${layer.priority} · ${layer.mappings.length} mapping(s)`,
    );
    if (layer.writableBytes) md.appendMarkdown(` · ${layer.writableBytes} bytes written since the last reset`);
    if (layer.requires?.length) md.appendMarkdown('  \n').appendText(`Requires ${layer.requires.join(', ')} (activated with it)`);
    const by = requiredBy(layer.name, all);
    if (by.length) md.appendMarkdown('  \n').appendText(`Required by ${by.join(', ')}`);
    this.tooltip = md;
    this.command = { command: COMMANDS.editLayer, title: 'Edit Layer', arguments: [this] };
  }
}

/** A rule of a layer: a mapping, an exclude or a delete entry. */
export class RuleItem extends vscode.TreeItem {
  constructor(
    readonly layer: LayerInfo,
    readonly kind: 'mapping' | 'exclude' | 'delete',
    readonly path: string,
    readonly destination?: string,
  ) {
    super(path, vscode.TreeItemCollapsibleState.None);
    this.id = `layer:${layer.name}:${kind}:${path}`;
    if (kind === 'mapping') {
      this.description = `→ ${destination === '/' ? '(whole layer)' : destination}`;
      this.contextValue = ITEMS.mapping;
      this.iconPath = new vscode.ThemeIcon('arrow-right');
      this.tooltip = `${path} in the view is served from ${destination} inside ${layer.name} while it is active`;
    } else if (kind === 'exclude') {
      this.description = 'passes through';
      this.contextValue = ITEMS.exclude;
      this.iconPath = new vscode.ThemeIcon('pass');
      this.tooltip = `${path} always passes through ${layer.name} to what lies below`;
    } else {
      this.description = 'delete entry';
      this.contextValue = ITEMS.delete;
      this.iconPath = new vscode.ThemeIcon('trash');
      this.tooltip = `Delete entry: ${path} is hidden while ${layer.name} is active`;
    }
  }
}

export type LayerNode = LayerItem | RuleItem;

export class LayersProvider extends CtxTree<LayerNode> {
  constructor(ctx: Ctx) {
    super(ctx, 'team');
  }

  getChildren(node?: LayerNode): LayerNode[] {
    const all = this.ctx.status?.layers ?? [];
    if (!node) return orderedLayers(all).map((l) => new LayerItem(l, all));
    if (node instanceof RuleItem) return [];
    const l = node.layer;
    return [
      ...l.mappings.map((m) => new RuleItem(l, 'mapping', m.original, m.destination)),
      ...l.excludes.map((p) => new RuleItem(l, 'exclude', p)),
      ...l.deletes.map((p) => new RuleItem(l, 'delete', p)),
    ];
  }

  getParent(node: LayerNode): LayerNode | undefined {
    return node instanceof RuleItem ? new LayerItem(node.layer, this.ctx.status?.layers) : undefined;
  }

  /** The item of a layer by name, for reveal. */
  itemFor(name: string): LayerItem | undefined {
    const l = this.ctx.status?.layers.find((x) => x.name === name);
    return l ? new LayerItem(l, this.ctx.status?.layers) : undefined;
  }
}
