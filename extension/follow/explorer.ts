/**
 * The Explorer and Source Control follow a switch. FUSE gives VS Code's file watcher no event, so
 * the Explorer keeps the listings it read before (a layer-only folder never appears) until it is
 * refreshed, and Git keeps its old status.
 *  - Explorer: VS Code has no API to refresh it; its "Refresh Explorer" command does, but it also
 *    shows the Explorer. When one of Strata's own views was showing, it is shown again at once
 *    (without taking the focus), so switching from the Strata views does not leave them.
 *  - Source Control: the Git extension's API re-reads the status of the repositories concerned.
 */
import * as vscode from 'vscode';
import { Logger } from '../log';
import { overlaps } from './paths';

interface GitRepository {
  rootUri: vscode.Uri;
  status(): Promise<void>;
}
interface GitApi {
  repositories: GitRepository[];
}
interface GitExtension {
  getAPI(version: 1): GitApi;
}

export class ExplorerFollower {
  constructor(
    private readonly log: Logger,
    /** Shows a Strata view that was visible before the refresh again; false when none was. */
    private readonly restoreStrata: () => Promise<boolean>,
    private readonly strataVisible: () => boolean,
  ) {}

  /** Refresh the Explorer when a workspace folder overlaps the changed paths. True when it did. */
  async refreshExplorer(roots: readonly string[]): Promise<boolean> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (!folders.some((f) => f.uri.scheme === 'file' && overlaps(f.uri.fsPath, roots))) return false;
    const wasStrata = this.strataVisible();
    try {
      await vscode.commands.executeCommand('workbench.files.action.refreshFilesExplorer');
      // Shown by that command just now, the Explorer may not have laid out yet, and then skips
      // reading the folders it shows; the second refresh finds it visible and reads them.
      if (wasStrata) await vscode.commands.executeCommand('workbench.files.action.refreshFilesExplorer');
    } catch (e) {
      this.log.warn(`refreshing the Explorer failed: ${(e as Error).message}`);
      return false;
    }
    const restored = wasStrata && (await this.restoreStrata());
    this.log.info(`refreshed the Explorer${restored ? ' (and showed the Strata views again)' : ''}`);
    return true;
  }

  /** Ask Git for the status of the repositories that overlap the changed paths. The roots of those it refreshed. */
  async refreshScm(roots: readonly string[]): Promise<string[]> {
    const git = vscode.extensions.getExtension<GitExtension>('vscode.git');
    if (!git?.isActive) return [];
    let api: GitApi;
    try {
      api = git.exports.getAPI(1);
    } catch {
      return [];
    }
    const repos = api.repositories.filter((r) => overlaps(r.rootUri.fsPath, roots));
    await Promise.all(repos.map((r) => r.status().catch((e: Error) => this.log.warn(`git status of ${r.rootUri.fsPath}: ${e.message}`))));
    return repos.map((r) => r.rootUri.fsPath);
  }
}
