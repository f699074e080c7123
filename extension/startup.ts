/**
 * Whether this window may start the agent by itself. The extension activates in every window once
 * VS Code has started (so it is there whenever this machine's agent runs) but starts an agent only
 * where one is wanted: a workspace with a team file, a workspace inside one of the agent's views
 * (state.json lists them, so this holds while the agent is stopped too), or a window where the user
 * opens the Strata views. Elsewhere it only connects to an agent that runs.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import { AgentStateSchema } from '../protocol';
import { isInside } from '../shared/paths';

/** The views state.json lists (base, and the mountpoint when it is not in place); [] when it cannot be read. */
export function viewsOfHome(home: string): { base: string; at?: string }[] {
  try {
    const r = v.safeParse(AgentStateSchema, JSON.parse(fs.readFileSync(path.join(home, 'state.json'), 'utf8')));
    return r.success ? r.output.views : [];
  } catch {
    return [];
  }
}

/** Is one of the folders inside a view (or a view inside one of the folders)? */
export function inAView(folders: readonly string[], views: readonly { base: string; at?: string }[]): boolean {
  return folders.some((f) =>
    views.some((v) => {
      const mountpoint = v.at ?? v.base;
      return isInside(f, mountpoint) || isInside(mountpoint, f);
    }),
  );
}
