/**
 * Entry point: wiring only. Ctx owns everything; views, commands and the status bar react to it;
 * the agent connection is made asynchronously so activation stays fast.
 */
import * as vscode from 'vscode';
import { StrataApi, makeApi } from './api';
import { agentCommands } from './commands/agent';
import { layerCommands } from './commands/layers';
import { registerCommands } from './commands/table';
import { teamCommands } from './commands/team';
import { VIEWS } from './constants';
import { Ctx } from './ctx';
import { LayerEditorProvider } from './editor/provider';
import { StatusBar } from './statusBar';
import { TeamFileOffer } from './teamFiles';
import { LayerItem, LayersProvider } from './trees/layers';
import { MappingsProvider } from './trees/mappings';
import { TeamProvider } from './trees/team';

export function activate(context: vscode.ExtensionContext): StrataApi {
  const ctx = new Ctx(context);
  context.subscriptions.push(ctx);

  const layers = ctx.own(new LayersProvider(ctx));
  const mappings = ctx.own(new MappingsProvider(ctx));
  const team = ctx.own(new TeamProvider(ctx));
  const layersView = ctx.own(vscode.window.createTreeView(VIEWS.layers, { treeDataProvider: layers, showCollapseAll: true }));
  ctx.own(vscode.window.createTreeView(VIEWS.mappings, { treeDataProvider: mappings, showCollapseAll: true }));
  ctx.own(vscode.window.createTreeView(VIEWS.team, { treeDataProvider: team }));

  const editor = ctx.own(new LayerEditorProvider(ctx, context.extensionUri));
  ctx.own(vscode.window.registerWebviewViewProvider(VIEWS.layerEditor, editor));
  ctx.own(
    layersView.onDidChangeSelection((e) => {
      const item = e.selection[0];
      if (item instanceof LayerItem) editor.select(item.layer.name);
    }),
  );

  registerCommands(ctx, [...layerCommands(ctx, editor), ...teamCommands(ctx), ...agentCommands(ctx)]);
  const statusBar = ctx.own(new StatusBar(ctx));
  ctx.own(new TeamFileOffer(ctx));

  ctx.start();
  return makeApi(ctx, { layers, mappings, team, statusBar, editor });
}

export function deactivate(): void {
  // Ctx is in context.subscriptions: VS Code disposes it. The agent keeps running on purpose.
}
