/** strata.team.json in the workspace: finding it, reading it, and offering to join its team. */
import * as vscode from 'vscode';
import { TEAM_FILE, TeamFile, checkTeamFile } from '../protocol/team';
import { StrataError } from '../shared/errors';
import { COMMANDS } from './constants';
import { Ctx } from './ctx';
import { showActions } from './errors';

/** The team files at the roots of the workspace folders. */
export async function findTeamFiles(): Promise<vscode.Uri[]> {
  const found: vscode.Uri[] = [];
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    const uri = vscode.Uri.joinPath(f.uri, TEAM_FILE);
    try {
      await vscode.workspace.fs.stat(uri);
      found.push(uri);
    } catch {
      /* none in this folder */
    }
  }
  return found;
}

export async function readTeamFile(uri: vscode.Uri): Promise<TeamFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(uri)));
  } catch (e) {
    throw new StrataError('E_TEAM_INVALID', `${uri.fsPath}: ${(e as Error).message}`, 'Fix the team file.');
  }
  const { team, problems } = checkTeamFile(raw, uri.fsPath);
  if (!team) throw new StrataError('E_TEAM_INVALID', problems.join('; '), 'Fix the team file.');
  return team;
}

/**
 * Offers once per file and window to join the team of a workspace's strata.team.json — only in a
 * trusted workspace, and only when this agent is in no team.
 */
export class TeamFileOffer implements vscode.Disposable {
  private readonly offered = new Set<string>();
  private readonly subs: vscode.Disposable[];

  constructor(private readonly ctx: Ctx) {
    this.subs = [
      ctx.onDidChange((c) => {
        if (c === 'team') void this.check();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.check()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.check()),
    ];
  }

  private async check(): Promise<void> {
    if (!vscode.workspace.isTrusted || !this.ctx.team || this.ctx.team.joined) return;
    for (const uri of await findTeamFiles()) {
      if (this.offered.has(uri.toString())) continue;
      this.offered.add(uri.toString());
      let team: string;
      try {
        team = (await readTeamFile(uri)).team;
      } catch {
        continue; // Join Team… reports a broken file when the user asks for it
      }
      showActions(
        'info',
        `This workspace belongs to the Strata team "${team}" (${vscode.workspace.asRelativePath(uri)}). Join it to switch layers together?`,
        [{ title: 'Join Team', run: () => vscode.commands.executeCommand(COMMANDS.joinTeam, uri) }],
      );
      return;
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

/**
 * Write this agent's digests of `layers` into the team file and have the agent read it again, so an
 * edited team layer is the team's version (commit the file to share it). Keeps the file's indent.
 */
export async function updateTeamFileDigests(ctx: Ctx, layers: readonly { layer: string; here: string }[]): Promise<vscode.Uri> {
  const file = ctx.team?.teamFile;
  if (!file) throw new StrataError('E_TEAM_NOT_JOINED', 'this agent is not in a team', 'Join one with "Strata: Join Team…".');
  const uri = vscode.Uri.file(file);
  const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  let raw: { layers?: Record<string, { digest?: string }> };
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StrataError('E_TEAM_INVALID', `${file}: ${(e as Error).message}`, 'Fix the team file.');
  }
  for (const { layer, here } of layers) {
    const entry = raw.layers?.[layer];
    if (!entry) throw new StrataError('E_TEAM_INVALID', `${file} does not list layer "${layer}"`, 'Add it to the team file first.');
    entry.digest = here;
  }
  const { problems } = checkTeamFile(raw, file);
  if (problems.length) throw new StrataError('E_TEAM_INVALID', problems.join('; '), 'Fix the team file.');
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  const updated = JSON.stringify(raw, null, indent) + '\n';
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(updated));
  await ctx.call('team.reload', { teamText: updated });
  return uri;
}
