/** Layer commands: switch, create, edit rules, reset, remove, import and export. */
import * as path from 'path';
import * as vscode from 'vscode';
import { LAYER_NAME_RE, LayerInfo } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { COMMANDS } from '../constants';
import { Ctx } from '../ctx';
import { errorCode, reportError } from '../errors';
import { LayerEditorProvider } from '../editor/provider';
import { layerFromArg, layerOfArg, pickLayer } from '../picks';
import { RuleItem } from '../trees/layers';
import { refuseUntrustedSource } from '../trust';
import { CommandSpec } from './table';

function uriArg(arg: unknown): vscode.Uri | undefined {
  return arg instanceof vscode.Uri ? arg : undefined;
}

function withNotification<T>(title: string, work: () => Promise<T>): Promise<T> {
  return Promise.resolve(vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, work));
}

function checkViewPath(v: string): string | undefined {
  if (!v.startsWith('/')) return 'A view path starts with "/", like /tools/node';
  if (v.split('/').includes('..')) return 'A view path cannot contain ".."';
  return undefined;
}

export function layerCommands(ctx: Ctx, editor: LayerEditorProvider): CommandSpec[] {
  const log = ctx.log.for('layers');

  async function deactivate(name: string, force: boolean): Promise<{ active: string[] } | undefined> {
    try {
      const r = await ctx.call('deactivate', { names: [name], force });
      log.info(`deactivated ${name}${force ? ' (forced)' : ''}; active: ${r.active.join(', ') || 'none'}`);
      return r;
    } catch (e) {
      if (errorCode(e) !== 'E_LAYER_BUSY' || force) throw e;
      // Open files keep their old content; let the user decide.
      reportError(log, `Deactivating ${name}`, e, [
        { title: 'Deactivate Anyway', run: () => deactivate(name, true).catch((err) => reportError(log, `Deactivating ${name}`, err)) },
      ]);
      return undefined;
    }
  }

  async function activate(name: string): Promise<{ active: string[]; decision?: string }> {
    const r = await ctx.call('activate', { names: [name] });
    log.info(`activated ${name}; active: ${r.active.join(', ')}${r.decision ? ` (team decision ${r.decision})` : ''}`);
    return r;
  }

  return [
    {
      id: COMMANDS.activateLayer,
      title: 'Activate Layer…',
      needsAgent: true,
      run: async (arg) => {
        const given = layerOfArg(ctx, arg);
        if (given) return given.active ? { active: ctx.status?.active ?? [] } : activate(given.name);
        // From the palette or the status bar: one pick for both directions.
        const l = await pickLayer(ctx, {
          title: 'Activate Layer',
          placeHolder: 'Pick a layer to activate (pick an active one to deactivate it)',
        });
        if (!l) return undefined;
        return l.active ? deactivate(l.name, false) : activate(l.name);
      },
    },
    {
      id: COMMANDS.deactivateLayer,
      title: 'Deactivate Layer…',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, {
          title: 'Deactivate Layer',
          placeHolder: 'Pick an active layer to deactivate',
          filter: (x) => x.active,
        });
        return l ? deactivate(l.name, false) : undefined;
      },
    },
    {
      id: COMMANDS.swapLayer,
      title: 'Swap Layer…',
      needsAgent: true,
      run: async (arg) => {
        const given = layerOfArg(ctx, arg);
        let oldL: LayerInfo | undefined = given?.active ? given : undefined;
        let newL: LayerInfo | undefined = given && !given.active ? given : undefined;
        const steps = (oldL ? 0 : 1) + (newL ? 0 : 1);
        const title = (step: number) => (steps > 1 ? `Swap Layer (${step}/${steps})` : 'Swap Layer');
        oldL ??= await pickLayer(ctx, {
          title: title(1),
          placeHolder: `Pick the active layer to replace${newL ? ` with ${newL.name}` : ''}`,
          filter: (x) => x.active,
        });
        if (!oldL) return undefined;
        newL ??= await pickLayer(ctx, {
          title: title(steps),
          placeHolder: `Pick the layer to run instead of ${oldL.name}`,
          filter: (x) => !x.active,
        });
        if (!newL) return undefined;
        const r = await ctx.call('swap', { old: oldL.name, new: newL.name });
        log.info(`swapped ${oldL.name} for ${newL.name}; active: ${r.active.join(', ')}`);
        return r;
      },
    },
    {
      id: COMMANDS.createLayer,
      title: 'Create Layer from Folder…',
      needsAgent: true,
      run: async (arg) => {
        const from =
          uriArg(arg)?.fsPath ??
          (
            await vscode.window.showOpenDialog({
              title: 'Create Layer from Folder',
              canSelectFolders: true,
              canSelectFiles: false,
              openLabel: 'Capture Folder',
            })
          )?.[0]?.fsPath;
        if (!from) return undefined;
        refuseUntrustedSource(from);
        const taken = new Set(ctx.status?.layers.map((l) => l.name));
        const name = await vscode.window.showInputBox({
          title: 'Create Layer from Folder (1/2)',
          prompt: `Name of the layer captured from ${from}`,
          value: path
            .basename(from)
            .replace(/[^A-Za-z0-9._+-]/g, '-')
            .replace(/^[^A-Za-z0-9]+/, '')
            .slice(0, 64),
          validateInput: (v) =>
            !LAYER_NAME_RE.test(v)
              ? 'Letters, digits, ".", "_", "+" and "-" (up to 64), starting with a letter or digit'
              : taken.has(v)
                ? `A layer named ${v} exists`
                : undefined,
        });
        if (!name) return undefined;
        const version = await vscode.window.showInputBox({
          title: 'Create Layer from Folder (2/2)',
          prompt: `Version of ${name} (optional), like 20.11.0`,
        });
        if (version === undefined) return undefined;
        const l = await withNotification(`Strata: capturing ${from} as layer ${name}…`, () =>
          ctx.call('layer.create', { name, from, ...(version ? { version } : {}) }),
        );
        log.info(`created layer ${l.name} from ${from}`);
        void vscode.window
          .showInformationMessage(
            `Strata: created layer ${l.name}. It maps the whole folder over each view's root until you change its mappings.`,
            'Edit Layer',
          )
          .then((a) => a && editor.show(l.name));
        return l;
      },
    },
    {
      id: COMMANDS.addMapping,
      title: 'Add Mapping…',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, { title: 'Add Mapping', placeHolder: 'Pick the layer to add a mapping to' });
        if (!l) return undefined;
        const original = await vscode.window.showInputBox({
          title: `Add Mapping to ${l.name} (1/2)`,
          prompt: 'The view path to redirect',
          placeHolder: '/tools/node',
          validateInput: checkViewPath,
        });
        if (!original) return undefined;
        const destination = await vscode.window.showInputBox({
          title: `Add Mapping to ${l.name} (2/2)`,
          prompt: `Where ${original} comes from inside ${l.name} ("/" is the whole layer)`,
          value: original.replace(/^\/+/, '') || '/',
        });
        if (destination === undefined) return undefined;
        return ctx.call('layer.map', { name: l.name, original, destination: destination || '/' });
      },
    },
    {
      id: COMMANDS.removeMapping,
      title: 'Remove Mapping',
      needsAgent: true,
      run: async (arg) => {
        if (arg instanceof RuleItem && arg.kind === 'mapping') return ctx.call('layer.unmap', { name: arg.layer.name, original: arg.path });
        const l = await layerFromArg(ctx, arg, {
          title: 'Remove Mapping',
          placeHolder: 'Pick the layer',
          filter: (x) => x.mappings.length > 0,
        });
        if (!l) return undefined;
        const m = await vscode.window.showQuickPick(
          l.mappings.map((x) => ({ label: x.original, description: `→ ${x.destination}` })),
          { title: `Remove Mapping from ${l.name}` },
        );
        return m ? ctx.call('layer.unmap', { name: l.name, original: m.label }) : undefined;
      },
    },
    {
      id: COMMANDS.resetLayer,
      title: 'Reset Layer',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, { title: 'Reset Layer', placeHolder: 'Pick the layer to reset' });
        if (!l) return undefined;
        const ok = await vscode.window.showWarningMessage(
          `Reset ${l.name}? This discards what tools wrote into it (${l.writableBytes} bytes).`,
          { modal: true },
          'Reset',
        );
        return ok ? ctx.call('layer.reset', { name: l.name }) : undefined;
      },
    },
    {
      id: COMMANDS.removeLayer,
      title: 'Remove Layer…',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, {
          title: 'Remove Layer',
          placeHolder: 'Pick the layer to remove',
          filter: (x) => !x.active,
        });
        if (!l) return undefined;
        if (l.active) throw new StrataError('E_LAYER_ACTIVE', `layer "${l.name}" is active`, 'Deactivate it first.');
        const ok = await vscode.window.showWarningMessage(
          `Remove layer ${l.name} from the layer store?`,
          { modal: true, detail: 'Its files and what tools wrote into it are deleted. Export it first to keep a copy.' },
          'Remove',
        );
        return ok ? ctx.call('layer.rm', { name: l.name }) : undefined;
      },
    },
    {
      id: COMMANDS.editLayer,
      title: 'Edit Layer',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, { title: 'Edit Layer', placeHolder: 'Pick the layer to edit' });
        if (l) await editor.show(l.name);
        return l?.name;
      },
    },
    {
      id: COMMANDS.importLayer,
      title: 'Import Layer…',
      needsAgent: true,
      run: async (arg) => {
        const file =
          uriArg(arg)?.fsPath ??
          (
            await vscode.window.showOpenDialog({
              title: 'Import Layer',
              canSelectFiles: true,
              canSelectMany: false,
              openLabel: 'Import',
              filters: { 'Strata layer archive': ['gz', 'tgz'], 'All files': ['*'] },
            })
          )?.[0]?.fsPath;
        if (!file) return undefined;
        refuseUntrustedSource(file);
        // One notification for the whole import: the agent's progress events and the result go into it.
        const task = `import ${path.basename(file)}`;
        const l = await new Promise<LayerInfo>((resolve, reject) => {
          void vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title: `Strata: importing ${path.basename(file)}` },
            async (report) => {
              const claim = ctx.claimProgress(task, report);
              try {
                const layer = await ctx.call('layer.import', { file });
                resolve(layer);
                report.report({ message: `imported layer ${layer.name} ${layer.version}`, increment: 100 });
                await new Promise((r) => setTimeout(r, 2500)); // the result stays long enough to read
              } catch (e) {
                reject(e);
              } finally {
                claim.dispose();
              }
            },
          );
        });
        log.info(`imported layer ${l.name} ${l.version} from ${file}`);
        return l;
      },
    },
    {
      id: COMMANDS.exportLayer,
      title: 'Export Layer…',
      needsAgent: true,
      run: async (arg) => {
        const l = await layerFromArg(ctx, arg, { title: 'Export Layer', placeHolder: 'Pick the layer to export' });
        if (!l) return undefined;
        const dir = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(ctx.where.home);
        const target = await vscode.window.showSaveDialog({
          title: `Export ${l.name}`,
          saveLabel: 'Export',
          defaultUri: vscode.Uri.joinPath(dir, `${l.name}${l.version ? '-' + l.version : ''}.tar.gz`),
          filters: { 'Strata layer archive': ['gz'] },
        });
        if (!target) return undefined;
        const r = await withNotification(`Strata: exporting ${l.name}…`, () =>
          ctx.call('layer.export', { name: l.name, file: target.fsPath }),
        );
        log.info(`exported ${l.name} to ${r.file} (${r.bytes} bytes, sha256 ${r.sha256})`);
        void vscode.window.showInformationMessage(
          `Strata: exported ${l.name} to ${r.file} (${r.bytes} bytes, sha256 ${r.sha256.slice(0, 12)}…).`,
        );
        return r;
      },
    },
  ];
}
