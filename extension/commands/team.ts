/** Team commands: join (secret from SecretStorage), leave, history, revert (confirmed), follow again, update the team file. */
import * as os from 'os';
import * as vscode from 'vscode';
import { TeamEvent, eventId, isNatsUrl } from '../../protocol';
import { ask, input } from '../ask';
import { COMMANDS, secretKey } from '../constants';
import { Ctx } from '../ctx';
import { ago, decisionSummary } from '../decisions';
import { withSecretFile } from '../secrets';
import { findTeamFiles, readTeamFile, updateTeamFileDigests } from '../teamFiles';
import { TeamItem } from '../trees/team';
import { CommandSpec } from './table';

interface EventPick extends vscode.QuickPickItem {
  ev: TeamEvent;
}

/** Newest first, in words: "bob: tool-3 → tool-2" · "2 min ago · bob@host". */
function eventPicks(history: TeamEvent[]): EventPick[] {
  const now = Date.now();
  return [...history].reverse().map((ev) => ({
    label: `$(history) ${ev.user}: ${decisionSummary(ev)}`,
    description: `${ago(ev.tag.wall, now)} · ${ev.user}@${ev.host}`,
    detail: new Date(ev.tag.wall).toLocaleString(),
    ev,
  }));
}

/** The layer a Team view item is about, or every layer `all` lists. */
function layersFromArg(arg: unknown, all: readonly string[]): string[] {
  return arg instanceof TeamItem && arg.layer ? [arg.layer] : typeof arg === 'string' ? [arg] : [...all];
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

  /** Revert a decision for the whole team, once the user confirms. */
  async function revert(ev: TeamEvent): Promise<unknown> {
    const id = eventId(ev);
    const ok = await ask(
      `Revert ${ev.user}'s change (${decisionSummary(ev)}) for the whole team?`,
      `This is a new team decision: every teammate's views switch back. (${ago(ev.tag.wall)}, ${ev.user}@${ev.host})`,
      'Revert for the Team',
    );
    if (!ok) return undefined;
    const r = await ctx.call('team.revert', { id });
    log.info(`reverted ${ev.user}'s ${decisionSummary(ev)} (${id}) with decision ${r.decision}; active: ${r.active.join(', ')}`);
    void vscode.window.showInformationMessage(`Strata: reverted ${ev.user}'s change (${decisionSummary(ev)}) for the team.`);
    return r;
  }

  async function eventById(id: string): Promise<TeamEvent> {
    const ev = (await ctx.call('team.history', {})).find((e) => eventId(e) === id);
    if (!ev) throw new Error(`team decision ${id} is not in this agent's history`);
    return ev;
  }

  return [
    {
      id: COMMANDS.joinTeam,
      title: 'Join Team…',
      needsAgent: true,
      needsTrust: true,
      run: async (arg) => {
        // Asked afresh: the view's copy may lag just after a leave or a join.
        const now = await ctx.call('team.status', {});
        if (now.joined) {
          void vscode.window.showInformationMessage(`Strata: this agent is already in team ${now.team}. Leave it first.`);
          return undefined;
        }
        const uri = await teamFileFromArg(arg);
        if (!uri) return undefined;
        const spec = await readTeamFile(uri);
        // A NATS team has one more step: this agent's NATS credentials file.
        let steps = spec.relays[0] && isNatsUrl(spec.relays[0]) ? 4 : 3;
        const title = (step: number) => `Join Team ${spec.team} (${step}/${steps})`;
        const url = await input({
          title: title(1),
          prompt: 'Relay address (a Strata relay, or a NATS server)',
          value: spec.relays[0] ?? 'ws://',
          ignoreFocusOut: true,
          validateInput: (v) =>
            /^wss?:\/\/\S+$/.test(v) || isNatsUrl(v)
              ? undefined
              : 'A Strata relay (ws:// or wss://, like ws://relay.example:7450) or a NATS server (nats://, tls://, nats+wss://)',
        });
        if (!url) return undefined;
        steps = isNatsUrl(url) ? 4 : 3;
        const stored = await ctx.extension.secrets.get(secretKey(spec.team));
        const typed = await input({
          title: title(2),
          password: true,
          ignoreFocusOut: true,
          prompt: stored ? 'Team secret (leave empty to use the one stored for this team)' : 'Team secret (at least 16 characters)',
          validateInput: (v) => (!v && stored ? undefined : v.length < 16 ? 'The team secret has at least 16 characters' : undefined),
        });
        if (typed === undefined) return undefined;
        const secret = typed || stored!;
        const name = await input({
          title: title(3),
          prompt: 'Your name in the team',
          value: os.userInfo().username,
          ignoreFocusOut: true,
        });
        if (name === undefined) return undefined;
        let credentials: string | undefined;
        if (isNatsUrl(url)) {
          credentials = await input({
            title: title(4),
            prompt: "This agent's NATS credentials file (mode 0600; see docs/nats.md), or empty for none",
            ignoreFocusOut: true,
          });
          if (credentials === undefined) return undefined;
        }
        const st = await withSecretFile(ctx.extension.globalStorageUri.fsPath, secret, (secretFile) =>
          // Send the file's text: the agent must not read inside a view it serves itself.
          ctx.call('team.join', {
            url,
            secretFile,
            teamFile: uri.fsPath,
            teamText: JSON.stringify(spec),
            ...(name ? { name } : {}),
            ...(credentials ? { credentials } : {}),
          }),
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
          placeHolder: 'Pick a change to revert it for the team (you are asked first)',
          matchOnDescription: true,
        });
        if (p) await revert(p.ev);
        return history;
      },
    },
    {
      id: COMMANDS.revertTeamChange,
      title: 'Revert Team Change',
      needsAgent: true,
      run: async (arg) => {
        if (typeof arg === 'string') return revert(await eventById(arg));
        const p = await vscode.window.showQuickPick(eventPicks(await ctx.call('team.history', {})), {
          title: 'Revert Team Change',
          placeHolder: 'Pick the change to undo for the team (you are asked first)',
        });
        return p ? revert(p.ev) : undefined;
      },
    },
    {
      id: COMMANDS.followTeam,
      title: 'Follow the Team',
      needsAgent: true,
      run: async (arg) => {
        const layers = layersFromArg(arg, ctx.team?.held ?? []);
        for (const name of layers) await ctx.call('team.hold', { name, hold: false });
        if (layers.length) log.info(`following the team again for ${layers.join(', ')}`);
        return layers;
      },
    },
    {
      id: COMMANDS.updateTeamFile,
      title: 'Update Team File with This Layer',
      needsAgent: true,
      needsTrust: true,
      run: async (arg) => {
        const drift = ctx.team?.contentDrift ?? [];
        const names = layersFromArg(
          arg,
          drift.map((d) => d.layer),
        );
        const entries = drift.filter((d) => names.includes(d.layer));
        if (!entries.length) {
          void vscode.window.showInformationMessage('Strata: the team layers here match the team file.');
          return undefined;
        }
        const uri = await updateTeamFileDigests(ctx, entries);
        log.info(`wrote the digests of ${names.join(', ')} into ${uri.fsPath}`);
        void vscode.window.showInformationMessage(
          `Strata: ${vscode.workspace.asRelativePath(uri)} now names this machine's ${names.join(', ')}. Commit it to share the change with the team.`,
        );
        return uri;
      },
    },
  ];
}
