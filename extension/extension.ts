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
import { showActions } from './errors';
import { ExplorerFollower } from './follow/explorer';
import { Follower } from './follow/follow';
import { TeammateNotices } from './follow/teammates';
import { StatusBar } from './statusBar';
import { inAView, viewsOfHome } from './startup';
import { TeamFileOffer, findTeamFiles } from './teamFiles';
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
  const mappingsView = ctx.own(vscode.window.createTreeView(VIEWS.mappings, { treeDataProvider: mappings, showCollapseAll: true }));
  const teamView = ctx.own(vscode.window.createTreeView(VIEWS.team, { treeDataProvider: team }));
  const trees: [vscode.TreeView<vscode.TreeItem>, { getChildren(): vscode.TreeItem[] }][] = [
    [layersView, layers],
    [teamView, team],
    [mappingsView, mappings],
  ];

  const editor = ctx.own(new LayerEditorProvider(ctx, context.extensionUri));
  // Kept while hidden: refreshing the Explorer shows it for a moment (follow/explorer.ts), and the
  // editor should not load again each time.
  ctx.own(vscode.window.registerWebviewViewProvider(VIEWS.layerEditor, editor, { webviewOptions: { retainContextWhenHidden: true } }));
  ctx.own(
    layersView.onDidChangeSelection((e) => {
      const item = e.selection[0];
      if (item instanceof LayerItem) editor.select(item.layer.name);
    }),
  );

  registerCommands(ctx, [...layerCommands(ctx, editor), ...teamCommands(ctx), ...agentCommands(ctx)]);
  const statusBar = ctx.own(new StatusBar(ctx));
  ctx.own(new TeamFileOffer(ctx));

  // VS Code follows the switches: editors, Explorer, Source Control, processes, teammates' decisions.
  const explorer = new ExplorerFollower(
    ctx.log.for('explorer'),
    async () => {
      // Show the Strata views again after "Refresh Explorer" showed the Explorer (reveal does not take the focus).
      for (const [view, provider] of trees) {
        const first = provider.getChildren()[0];
        if (first) {
          await Promise.resolve(view.reveal(first, { select: false, focus: false })).catch(() => {});
          return true;
        }
      }
      return false;
    },
    () => trees.some(([view]) => view.visible),
  );
  const follower = ctx.own(new Follower(ctx, explorer));
  ctx.own(new TeammateNotices(ctx, ctx.log.for('team'), (message, actions) => showActions('info', message, actions)));

  // Start the agent only where one is wanted (startup.ts); elsewhere connect to one that runs.
  const shown = (): boolean => trees.some(([view]) => view.visible);
  let started = false;
  const startIfShown = (): void => {
    if (started || !shown() || ctx.health !== 'down') return;
    started = true;
    ctx.start(true);
  };
  void findTeamFiles().then((teamFiles) => {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    started = teamFiles.length > 0 || inAView(folders, viewsOfHome(ctx.where.home)) || shown();
    ctx.start(started);
  });
  for (const [view] of trees) ctx.own(view.onDidChangeVisibility(startIfShown));
  ctx.own(ctx.onDidChange((c) => c === 'health' && startIfShown()));
  return makeApi(ctx, { layers, mappings, team, statusBar, editor, follower });
}

export function deactivate(): void {
  // Ctx is in context.subscriptions: VS Code disposes it. The agent keeps running on purpose.
}
