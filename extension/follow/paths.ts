/** Which absolute paths a change to the views touched (pure: no vscode). */
import * as path from 'path';
import type { ViewChange, ViewInfo } from '../../protocol';

/** The absolute paths a change touched, in every mounted view (the agent names view paths, the same in each view). */
export function changedRoots(change: ViewChange, views: readonly ViewInfo[]): string[] {
  const out = new Set<string>();
  for (const v of views) {
    if (v.state !== 'mounted') continue;
    for (const p of change.paths) out.add(p === '/' ? v.mountpoint : path.join(v.mountpoint, p));
  }
  return [...out];
}

/** Is `file` one of `roots`, or under one? */
export function isUnderAny(file: string, roots: readonly string[]): boolean {
  return roots.some((r) => file === r || file.startsWith(r.endsWith('/') ? r : r + '/'));
}

/** Do the folder and the changed roots overlap (a change inside the folder, or the folder inside a changed root)? */
export function overlaps(folder: string, roots: readonly string[]): boolean {
  return isUnderAny(folder, roots) || roots.some((r) => isUnderAny(r, [folder]));
}
