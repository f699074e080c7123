/**
 * The host side of the layer editor: checks each webview message, answers it, and never leaves a
 * request without a reply. Independent of the webview itself, so the extension-host tests drive it
 * directly with the messages the webview would post.
 */
import * as path from 'path';
import { LayerInfo, LayerSpec } from '../../protocol';
import { HostMessage, PathKind, WEBVIEW_PROTOCOL_VERSION, WebviewMessage, isWebviewMessage } from '../../protocol/webview';
import { Ctx } from '../ctx';
import { formatError } from '../errors';
import { Logger } from '../log';
import { problemsFromError, toFieldProblem } from './problems';
import { toLayerPath, toViewPath } from './paths';

/** Shows a file dialog starting at `start`; the absolute path picked, or undefined. */
export type Browse = (kind: PathKind, start: string | undefined) => Promise<string | undefined>;

export function specOf(l: LayerInfo): LayerSpec {
  const { format, name, version, description, priority, mappings, excludes, deletes } = l;
  return { format, name, version, description, priority, mappings, excludes, deletes };
}

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
        try {
          const saved = await this.ctx.call('layer.update', { name: m.name, spec: m.spec });
          this.log.info(`saved layer ${saved.name}`);
          this.selected = saved.name;
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
