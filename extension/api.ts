/** What activate() returns: a small handle for the extension-host tests (and other extensions). */
import * as vscode from 'vscode';
import { HostMessage } from '../protocol/webview';
import { Answerer, answerQuestions } from './ask';
import { Ctx } from './ctx';
import { LayerEditorProvider } from './editor/provider';
import { Notice, recentNotices } from './errors';
import { FollowRecord, Follower } from './follow/follow';
import { StatusBar } from './statusBar';
import { LayersProvider } from './trees/layers';
import { MappingsProvider } from './trees/mappings';
import { TeamProvider } from './trees/team';

export interface StrataApi {
  readonly layersProvider: LayersProvider;
  readonly mappingsProvider: MappingsProvider;
  readonly teamProvider: TeamProvider;
  /** The STRATA_HOME the extension talks to. */
  home(): string;
  connected(): boolean;
  statusBarText(): string;
  /** Hand a message to the Layer Editor's host side as if the webview had posted it; resolves with the replies it would post back. */
  editorMessage(msg: unknown): Promise<HostMessage[]>;
  /** What VS Code did after the last changes to the views (editors reloaded, Explorer refreshed, processes named), newest last. */
  follows(): readonly FollowRecord[];
  readonly onDidFollow: vscode.Event<FollowRecord>;
  /** The notifications the extension showed lately, newest last, with their actions (a test runs one as a click would). */
  notices(): readonly Notice[];
  /** Answer the extension's confirmation dialogs with `fn` instead of showing them (null: show them again). */
  answerQuestions(fn: Answerer | null): void;
}

export function makeApi(
  ctx: Ctx,
  parts: {
    layers: LayersProvider;
    mappings: MappingsProvider;
    team: TeamProvider;
    statusBar: StatusBar;
    editor: LayerEditorProvider;
    follower: Follower;
  },
): StrataApi {
  return {
    layersProvider: parts.layers,
    mappingsProvider: parts.mappings,
    teamProvider: parts.team,
    home: () => ctx.where.home,
    connected: () => ctx.connected,
    statusBarText: () => parts.statusBar.text,
    editorMessage: (msg) => parts.editor.session.handle(msg),
    follows: () => parts.follower.history(),
    onDidFollow: parts.follower.onDidFollow,
    notices: recentNotices,
    answerQuestions,
  };
}
