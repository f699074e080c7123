/**
 * Workspace trust. An untrusted workspace never brings layers or a team into Strata: no team join,
 * no offer to join its strata.team.json, no layer captured or imported from inside it.
 */
import * as vscode from 'vscode';
import { StrataError } from '../shared/errors';
import { isInside } from '../shared/paths';

/** Throws when `file` lies inside a folder of this workspace and the workspace is not trusted. */
export function refuseUntrustedSource(file: string): void {
  if (vscode.workspace.isTrusted) return;
  const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file' && isInside(file, f.uri.fsPath));
  if (folder) {
    throw new StrataError(
      'E_BAD_REQUEST',
      `${file} is inside the untrusted workspace folder ${folder.uri.fsPath}`,
      'Trust the workspace first (Workspaces: Manage Workspace Trust).',
    );
  }
}
