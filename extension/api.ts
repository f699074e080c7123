/** What activate() returns: a small handle for the extension-host tests (and other extensions). */
import { HostMessage } from '../protocol/webview';
import { Ctx } from './ctx';
import { LayerEditorProvider } from './editor/provider';
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
}

export function makeApi(
  ctx: Ctx,
  parts: { layers: LayersProvider; mappings: MappingsProvider; team: TeamProvider; statusBar: StatusBar; editor: LayerEditorProvider },
): StrataApi {
  return {
    layersProvider: parts.layers,
    mappingsProvider: parts.mappings,
    teamProvider: parts.team,
    home: () => ctx.where.home,
    connected: () => ctx.connected,
    statusBarText: () => parts.statusBar.text,
    editorMessage: (msg) => parts.editor.session.handle(msg),
  };
}
