/**
 * The host side of the layer editor: checks each webview message, answers it, and never leaves a
 * request without a reply. Independent of the webview itself, so the extension-host tests drive it
 * directly with the messages the webview would post.
 */
import * as path from 'path';
import { LayerInfo, LayerSpec } from '../../protocol';
import { HostMessage, PathKind, WEBVIEW_PROTOCOL_VERSION, WebviewMessage, isWebviewMessage } from '../../protocol/webview';
import { ask } from '../ask';
import { Ctx } from '../ctx';
import { formatError, showActions } from '../errors';
import { updateTeamFileDigests } from '../teamFiles';
import { Logger } from '../log';
import { problemsFromError, toFieldProblem } from './problems';
import { toLayerPath, toViewPath } from './paths';

/** Shows a file dialog starting at `start`; the absolute path picked, or undefined. */
export type Browse = (kind: PathKind, start: string | undefined) => Promise<string | undefined>;

export function specOf(l: LayerInfo): LayerSpec {
  const { format, name, version, description, priority, mappings, excludes, deletes } = l;
  return { format, name, version, description, priority, mappings, excludes, deletes };
}

const SAVE_AND_UPDATE = 'Save and Update Team File';

export class EditorSession {
  /** The layer being edited. */
  selected: string | null = null;

  constructor(
    private readonly ctx: Ctx,
    private readonly browse: Browse,
    private readonly log: Logger,
  ) {}

  async handle(raw: unknown): Promise<HostMessage[]> {
    if (!isWebviewMessage(raw)) {
      this.log.warn(`ignored a malformed message from the editor: ${JSON.stringify(raw)?.slice(0, 200)}`);
      const id = typeof raw === 'object' && raw !== null ? (raw as { requestId?: unknown }).requestId : undefined;
      return [
        {
          type: 'error',
          ...(typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? { requestId: id } : {}),
          message: 'The editor sent a message the extension does not understand; reload the view.',
        },
      ];
    }
    try {
      return await this.dispatch(raw);
    } catch (e) {
      this.log.error(`${raw.type} failed: ${formatError(e)}`);
      return [{ type: 'error', ...('requestId' in raw ? { requestId: raw.requestId } : {}), message: formatError(e) }];
    }
  }

  private async dispatch(m: WebviewMessage): Promise<HostMessage[]> {
    switch (m.type) {
      case 'ready':
        if (m.v !== WEBVIEW_PROTOCOL_VERSION) {
          return [
            { type: 'error', message: `The editor speaks protocol ${m.v}, the extension ${WEBVIEW_PROTOCOL_VERSION}; reload the window.` },
          ];
        }
        return [this.load()];
      case 'reload':
        return [this.load()];
      case 'validate': {
        const { problems } = await this.ctx.call('layer.validate', { spec: m.spec });
        return [{ type: 'validated', requestId: m.requestId, problems: problems.map(toFieldProblem) }];
      }
      case 'save': {
        // The agent's own check first, so every problem is shown at once and nothing half-saves.
        const { problems } = await this.ctx.call('layer.validate', { spec: m.spec });
        if (problems.length) return [{ type: 'saveFailed', requestId: m.requestId, problems: problems.map(toFieldProblem) }];
        const team = this.ctx.team?.joined && this.ctx.team.teamLayers?.includes(m.name) ? this.ctx.team.team : undefined;
        let updateTeamFile = false;
        if (team) {
          // An edit changes the layer's content here only: the team would split silently.
          const choice = await ask(
            `${m.name} is a layer of team ${team}. Save the change on this machine?`,
            "Its content here will no longer match the digest in the team file: that is drift, and teammates keep the team's version. " +
              'Update the team file too (and commit it) to make this the team version.',
            SAVE_AND_UPDATE,
            'Save Only',
          );
          if (!choice) return [{ type: 'error', requestId: m.requestId, message: 'Not saved.' }];
          updateTeamFile = choice === SAVE_AND_UPDATE;
        }
        try {
          const saved = await this.ctx.call('layer.update', { name: m.name, spec: m.spec });
          this.log.info(`saved layer ${saved.name}`);
          this.selected = saved.name;
          if (team) void this.afterTeamEdit(saved.name, updateTeamFile);
          return [{ type: 'saved', requestId: m.requestId, layer: specOf(saved) }];
        } catch (e) {
          this.log.warn(`saving ${m.name} failed: ${formatError(e)}`);
          return [{ type: 'saveFailed', requestId: m.requestId, problems: problemsFromError(e) }];
        }
      }
      case 'browse': {
        const views = this.ctx.status?.views ?? [];
        const files = path.join(this.ctx.where.home, 'layers', m.layer, 'files');
        const start = m.kind === 'destination' ? files : views[0]?.mountpoint;
        const picked = await this.browse(m.kind, start);
        if (picked === undefined) return [{ type: 'picked', requestId: m.requestId, value: null }];
        const mapped = m.kind === 'destination' ? toLayerPath(picked, files) : toViewPath(picked, views);
        return [
          {
            type: 'picked',
            requestId: m.requestId,
            ...('value' in mapped ? { value: mapped.value } : { value: null, problem: mapped.problem }),
          },
        ];
      }
    }
  }

  /**
   * After a team layer was saved: once the agent has its new digest, write it into the team file
   * (when asked to), or say that the layer now drifts from it and offer to.
   */
  private async afterTeamEdit(name: string, updateTeamFile: boolean): Promise<void> {
    try {
      let drift: { layer: string; expected: string; here: string } | undefined;
      for (let i = 0; i < 50 && !drift; i++) {
        drift = (await this.ctx.call('team.status', {})).contentDrift?.find((c) => c.layer === name);
        if (!drift) await new Promise((r) => setTimeout(r, 200));
      }
      if (!drift) return; // the content is the team's after all
      const update = async (): Promise<void> => {
        const uri = await updateTeamFileDigests(this.ctx, [drift!]);
        this.log.info(`wrote the new digest of ${name} into ${uri.fsPath}`);
        showActions(
          'info',
          `Strata: the team file now names this version of ${name}. Commit ${path.basename(uri.fsPath)} to share it.`,
          [],
        );
      };
      if (updateTeamFile) await update();
      else
        showActions('warning', `Strata: ${name} now differs from the team file (drift): teammates run the team's version.`, [
          { title: 'Update Team File', run: () => update().catch((e) => showActions('error', `Strata: ${formatError(e)}`, [])) },
        ]);
    } catch (e) {
      this.log.warn(`after saving team layer ${name}: ${formatError(e)}`);
      showActions('error', `Strata: updating the team file for ${name} failed: ${formatError(e)}`, []);
    }
  }

  /** The `load` message for the selected layer. */
  load(): HostMessage {
    const st = this.ctx.status;
    const base = { type: 'load' as const, canRename: false, connected: this.ctx.connected };
    if (!st) return { ...base, layer: null, active: false, notice: 'The Strata agent is not running.' };
    if (this.selected === null) return { ...base, layer: null, active: false, notice: 'Pick a layer in the Layers view to edit it.' };
    const layer = st.layers.find((l) => l.name === this.selected);
    if (!layer) return { ...base, layer: null, active: false, notice: `Layer "${this.selected}" no longer exists.` };
    return { ...base, layer: specOf(layer), active: layer.active };
  }
}
