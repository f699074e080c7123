/** Team commands: join (secret from SecretStorage), leave, history, revert. */
import * as os from 'os';
import * as vscode from 'vscode';
import { TeamEvent, eventId } from '../../protocol';
import { COMMANDS, secretKey } from '../constants';
import { Ctx } from '../ctx';
import { showActions } from '../errors';
import { withSecretFile } from '../secrets';
import { findTeamFiles, readTeamFile } from '../teamFiles';
import { CommandSpec } from './table';

/** "activate node20", "slot node → node18". */
export function describeWrites(ev: TeamEvent): string {
  return ev.writes
    .map((w) => {
      const [kind, name] = [w.key.slice(0, w.key.indexOf(':')), w.key.slice(w.key.indexOf(':') + 1)];
      if (kind === 'layer' && 'active' in w.value) return `${w.value.active ? 'activate' : 'deactivate'} ${name}`;
      if ('layer' in w.value) return w.value.layer ? `slot ${name} → ${w.value.layer}` : `slot ${name} cleared`;
      return w.key;
    })
    .join(', ');
}

interface EventPick extends vscode.QuickPickItem {
  id: string;
}

function eventPicks(history: TeamEvent[]): EventPick[] {
  return [...history].reverse().map((ev) => ({
    label: `$(history) ${describeWrites(ev)}`,
    description: `${ev.user}@${ev.host} · ${new Date(ev.tag.wall).toLocaleString()}`,
    detail: ev.reverts ? `reverts ${ev.reverts}` : undefined,
    id: eventId(ev),
  }));
}

async function teamFileFromArg(arg: unknown): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const found = await findTeamFiles();
  if (found.length === 1) return found[0];
  if (found.length > 1) {
    const p = await vscode.window.showQuickPick(
      found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
      { title: 'Join Team: which team file?' },
    );
    return p?.uri;
  }
  return (
    await vscode.window.showOpenDialog({
      title: 'Join Team: the team file (strata.team.json)',
      canSelectFiles: true,
      filters: { 'Strata team file': ['json'] },
    })
  )?.[0];
}

export function teamCommands(ctx: Ctx): CommandSpec[] {
  const log = ctx.log.for('team');

  async function revert(id: string): Promise<unknown> {
    const r = await ctx.call('team.revert', { id });
    log.info(`reverted ${id} with decision ${r.decision}; active: ${r.active.join(', ')}`);
    void vscode.window.showInformationMessage(`Strata: reverted team change ${id}.`);
    return r;
  }

  return [
    {
      id: COMMANDS.joinTeam,
      title: 'Join Team…',
      needsAgent: true,
      needsTrust: true,
      run: async (arg) => {
        if (ctx.team?.joined) {
          void vscode.window.showInformationMessage(`Strata: this agent is already in team ${ctx.team.team}. Leave it first.`);
          return undefined;
        }
        const uri = await teamFileFromArg(arg);
        if (!uri) return undefined;
        const spec = await readTeamFile(uri);
        const title = `Join Team ${spec.team}`;
        const url = await vscode.window.showInputBox({
          title,
          prompt: 'Relay address',
          value: spec.relays[0] ?? 'ws://',
          ignoreFocusOut: true,
          validateInput: (v) => (/^wss?:\/\/\S+$/.test(v) ? undefined : 'A ws:// or wss:// address, like ws://relay.example:7450'),
        });
        if (!url) return undefined;
        const stored = await ctx.extension.secrets.get(secretKey(spec.team));
        const typed = await vscode.window.showInputBox({
          title,
          password: true,
          ignoreFocusOut: true,
          prompt: stored ? 'Team secret (leave empty to use the one stored for this team)' : 'Team secret (at least 16 characters)',
          validateInput: (v) => (!v && stored ? undefined : v.length < 16 ? 'The team secret has at least 16 characters' : undefined),
        });
        if (typed === undefined) return undefined;
        const secret = typed || stored!;
        const name = await vscode.window.showInputBox({
          title,
          prompt: 'Your name in the team',
          value: os.userInfo().username,
          ignoreFocusOut: true,
        });
        if (name === undefined) return undefined;
        const st = await withSecretFile(ctx.extension.globalStorageUri.fsPath, secret, (secretFile) =>
          // Send the file's text: the agent must not read inside a view it serves itself.
          ctx.call('team.join', { url, secretFile, teamFile: uri.fsPath, teamText: JSON.stringify(spec), ...(name ? { name } : {}) }),
        );
        await ctx.extension.secrets.store(secretKey(spec.team), secret);
        log.info(`joined team ${st.team} as ${st.agent} through ${url}`);
        void vscode.window.showInformationMessage(`Strata: joined team ${st.team} as ${st.agent}.`);
        return st;
      },
    },
    {
      id: COMMANDS.leaveTeam,
      title: 'Leave Team',
      needsAgent: true,
      run: async () => {
        const team = ctx.team?.team ?? 'the team';
        const ok = await vscode.window.showWarningMessage(
          `Leave ${team}?`,
          { modal: true, detail: 'Layers stay as they are; this machine stops following the team.' },
          'Leave',
        );
        if (!ok) return undefined;
        const r = await ctx.call('team.leave', {});
        log.info(`left team ${r.left}`);
        return r;
      },
    },
    {
      id: COMMANDS.showTeamHistory,
      title: 'Show Team History',
      needsAgent: true,
      run: async () => {
        const history = await ctx.call('team.history', {});
        if (!history.length) {
          void vscode.window.showInformationMessage('Strata: the team has made no decisions yet.');
          return history;
        }
        const p = await vscode.window.showQuickPick(eventPicks(history), {
          title: 'Team History (newest first)',
          placeHolder: 'Pick a change to revert it',
          matchOnDescription: true,
        });
        if (p)
          showActions('info', `Team change ${p.id}: ${p.label.replace('$(history) ', '')} (${p.description}).`, [
            { title: 'Revert', run: () => vscode.commands.executeCommand(COMMANDS.revertTeamChange, p.id) },
          ]);
        return history;
      },
    },
    {
      id: COMMANDS.revertTeamChange,
      title: 'Revert Team Change',
      needsAgent: true,
      run: async (arg) => {
        if (typeof arg === 'string') return revert(arg);
        const p = await vscode.window.showQuickPick(eventPicks(await ctx.call('team.history', {})), {
          title: 'Revert Team Change',
          placeHolder: 'Pick the change to undo',
        });
        return p ? revert(p.id) : undefined;
      },
    },
  ];
}
