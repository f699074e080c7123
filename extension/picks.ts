/** Quick picks that show state, and turning a command's argument into the layer it names. */
import * as vscode from 'vscode';
import { LayerInfo } from '../protocol';
import { StrataError } from '../shared/errors';
import { pick } from './ask';
import { Ctx } from './ctx';
import { LayerItem, RuleItem, layerDescription, orderedLayers } from './trees/layers';

export interface LayerPick extends vscode.QuickPickItem {
  layer: LayerInfo;
}

/** "$(check) node20   20.11.0 · priority 100 · active" */
export function layerPickItem(l: LayerInfo): LayerPick {
  return {
    label: `${l.active ? '$(check)' : '$(circle-large-outline)'} ${l.name}`,
    description: layerDescription(l) || 'inactive',
    detail: l.description || undefined,
    layer: l,
  };
}

export async function pickLayer(
  ctx: Ctx,
  opts: { title: string; placeHolder: string; filter?: (l: LayerInfo) => boolean },
): Promise<LayerInfo | undefined> {
  const layers = orderedLayers(ctx.status?.layers ?? []).filter(opts.filter ?? (() => true));
  if (!layers.length) {
    void vscode.window.showInformationMessage(`Strata: no layer to choose for ${opts.title.toLowerCase()}.`);
    return undefined;
  }
  const picked = await pick(layers.map(layerPickItem), {
    title: opts.title,
    placeHolder: opts.placeHolder,
    matchOnDescription: true,
  });
  return picked?.layer;
}

/** The layer named by a command argument (a tree item, a layer name), or undefined when there is none. */
export function layerOfArg(ctx: Ctx, arg: unknown): LayerInfo | undefined {
  let name: string | undefined;
  if (arg instanceof LayerItem || arg instanceof RuleItem) name = arg.layer.name;
  else if (typeof arg === 'string') name = arg;
  else if (typeof arg === 'object' && arg !== null && typeof (arg as { name?: unknown }).name === 'string')
    name = (arg as { name: string }).name;
  if (name === undefined) return undefined;
  const layer = ctx.status?.layers.find((l) => l.name === name);
  if (!layer) throw new StrataError('E_LAYER_UNKNOWN', `no layer named "${name}"`, 'Refresh the Layers view to see the current layers.');
  return layer;
}

/** The argument's layer, else one the user picks. */
export async function layerFromArg(
  ctx: Ctx,
  arg: unknown,
  opts: { title: string; placeHolder: string; filter?: (l: LayerInfo) => boolean },
): Promise<LayerInfo | undefined> {
  return layerOfArg(ctx, arg) ?? pickLayer(ctx, opts);
}
