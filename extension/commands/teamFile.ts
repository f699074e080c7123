/**
 * Add Layer to Team File: pins a layer in strata.team.json with this agent's digest, as
 * `strata team add` does, with the same code (shared/teamfile.ts); where the workspace has no team
 * file, offers to write one as `strata team init` would (never a secret). A joined agent reads its
 * team's file again at once.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { LAYER_NAME_RE, TEAM_FILE, TEAM_FILE_FORMAT } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { Pin, TeamFileJson, pinLayers, readTeamFile, writeTeamFile } from '../../shared/teamfile';
import { ask, input, pick } from '../ask';
import { COMMANDS } from '../constants';
import { Ctx } from '../ctx';
import { Action, reportError, showActions } from '../errors';
import { layerOfArg, pickLayer } from '../picks';
import { findTeamFiles } from '../teamFiles';
import { CommandSpec } from './table';

const TITLE = 'Add Layer to Team File';
const CREATE = 'Create Team File';

/** Where the pin goes: the file and its content; `created` when it is a new file, not written yet. */
interface Target {
  file: string;
  /** A new file's content; an existing file is read once the command can report its errors with it. */
  t?: TeamFileJson;
  created: boolean;
  /** The team file this agent joined with: the agent reads it again after the write. */
  joined: boolean;
}

const short = (digest: string) => `${digest.slice(0, 19)}…`;
const rel = (file: string) => vscode.workspace.asRelativePath(file);
const has = (t: TeamFileJson, name: string) => Object.prototype.hasOwnProperty.call(t.layers, name);

/** As `strata team init` names a team after its folder. */
function defaultTeam(folder: string): string {
  return (
    folder
      .replace(/[^A-Za-z0-9._+-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 64) || 'team'
  );
}

function splitRelays(v: string): string[] {
  return v.split(/[\s,]+/).filter(Boolean);
}

/** Asks for a new team file's team and relays (nothing is written here), or undefined when the user declines. */
async function newTeamFile(): Promise<Target | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    throw new StrataError(
      'E_TEAM_INVALID',
      `no ${TEAM_FILE} and no workspace folder to write one in`,
      'Open the project\'s folder, or run "strata team init" in it.',
    );
  }
  const file = path.join(folder.uri.fsPath, TEAM_FILE);
  const yes = await ask(
    `There is no ${TEAM_FILE} in this workspace. Create one in ${folder.name}?`,
    `It names the team, its relays and the layers teammates share, each pinned by its content digest, ` +
      `as "strata team init" writes it. No secret is written: for a new random one, run ` +
      `"strata team init --secret-file FILE --new-secret" in a terminal instead (README: "Set up a team").`,
    CREATE,
  );
  if (yes !== CREATE) return undefined;
  const team = await input({
    title: `${CREATE} (1/2)`,
    prompt: 'The team name: teammates join it with the same name and secret',
    value: defaultTeam(folder.name),
    ignoreFocusOut: true,
    validateInput: (v) =>
      LAYER_NAME_RE.test(v) ? undefined : 'Up to 64 letters, digits, ".", "_", "+" and "-", starting with a letter or digit',
  });
  if (team === undefined) return undefined;
  const relays = await input({
    title: `${CREATE} (2/2)`,
    prompt: 'Relay addresses (ws:// or wss://, separated by spaces). Empty: no relay, teammates dial each other',
    value: '',
    ignoreFocusOut: true,
    validateInput: (v) => {
      const bad = splitRelays(v).find((r) => !/^wss?:\/\/[^\s/]+/.test(r));
      return bad ? `${bad} is not a ws:// or wss:// address, like ws://relay.example.com:7450` : undefined;
    },
  });
  if (relays === undefined) return undefined;
  const t: TeamFileJson = { format: TEAM_FILE_FORMAT, team, relays: splitRelays(relays), layers: {}, defaults: [], slots: {} };
  return { file, t, created: true, joined: false };
}

/** The joined team's file, else the workspace's (one picked when there are several), else a new one. */
async function target(ctx: Ctx): Promise<Target | undefined> {
  const st = await ctx.call('team.status', {});
  if (st.joined && st.teamFile) return { file: st.teamFile, created: false, joined: true };
  const found = await findTeamFiles();
  if (!found.length) return newTeamFile();
  const uri =
    found.length === 1
      ? found[0]
      : (
          await pick(
            found.map((u) => ({ label: rel(u.fsPath), uri: u })),
            { title: `${TITLE}: which team file?` },
          )
        )?.uri;
  return uri && { file: uri.fsPath, created: false, joined: false };
}

export function teamFileCommands(ctx: Ctx): CommandSpec[] {
  const log = ctx.log.for('team');

  async function run(arg: unknown): Promise<unknown> {
    const given = layerOfArg(ctx, arg);
    const to = await target(ctx);
    if (!to) return undefined;
    const file = to.file;
    const open: Action = { title: 'Open Team File', run: () => vscode.window.showTextDocument(vscode.Uri.file(file)) };
    try {
      const t = to.t ?? readTeamFile(file);
      let name = given?.name;
      if (!name) {
        const left = (ctx.status?.layers ?? []).filter((l) => !has(t, l.name));
        if (!left.length) {
          showActions('info', `Strata: every layer of this agent is in ${rel(file)} already.`, [open]);
          return undefined;
        }
        name = (await pickLayer(ctx, { title: TITLE, placeHolder: `The layer to pin in ${rel(file)}`, filter: (l) => !has(t, l.name) }))
          ?.name;
        if (!name) return undefined;
      }
      const l = await ctx.call('layer.show', { name });
      const pin: Pin = { digest: l.digest, version: l.version };
      const before = t.layers[name]?.digest;
      if (before === pin.digest) {
        showActions(
          'info',
          `Strata: ${rel(file)} already pins ${name} with this machine's digest (${short(pin.digest)}). Nothing to change.`,
          [open],
        );
        return { file, layer: name, digest: pin.digest, changed: false };
      }
      if (before) {
        const replace = await ask(
          `${rel(file)} pins ${name} with another digest. Replace it with this machine's?`,
          `The file: ${before}\nThis machine: ${pin.digest}\nTeammates then run this machine's content of ${name}; a copy with the old content is drift.`,
          'Replace Digest',
        );
        if (replace !== 'Replace Digest') return undefined;
      }
      pinLayers(t, { [name]: pin });
      writeTeamFile(file, t);
      log.info(`${to.created ? 'created' : 'wrote'} ${file}: ${name} ${before ? `${before} -> ` : ''}${pin.digest}`);
      if (to.joined) {
        // Send the text: the agent must not read inside a view it serves itself.
        await ctx.call('team.reload', { teamText: JSON.stringify(t, null, 2) + '\n' });
        log.info(`the agent read ${file} again`);
      }
      const what = to.created
        ? `created ${rel(file)} for team ${t.team} with ${name} (${short(pin.digest)})`
        : `${rel(file)} now pins ${name} (${short(pin.digest)})`;
      const join: Action[] = to.joined
        ? []
        : [{ title: 'Join Team', run: () => vscode.commands.executeCommand(COMMANDS.joinTeam, vscode.Uri.file(file)) }];
      showActions(
        'info',
        `Strata: ${what}. Commit it to share it with the team.` +
          (to.created
            ? " Teammates also need the team's secret (16 characters or more), shared over a safe channel, never in the repository."
            : ''),
        [open, ...join],
      );
      return { file, layer: name, digest: pin.digest, changed: true, created: to.created };
    } catch (e) {
      reportError(log, TITLE, e, [open]);
      return undefined;
    }
  }

  return [{ id: COMMANDS.addLayerToTeamFile, title: TITLE, needsAgent: true, needsTrust: true, run }];
}
