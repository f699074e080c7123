/**
 * Team decisions in words: "bob: tool-3 → tool-2, 2 min ago" rather than the decision's id,
 * "ABCDEFGH-IJKLMNOP-QRSTUVWX-YZ234567:3" (its agent's key fingerprint and seq). Pure (no
 * vscode), so the unit tests and any other client can use it.
 */
import type { TeamEvent } from '../protocol';

function nameOf(key: string): string {
  return key.slice(key.indexOf(':') + 1);
}

/** What a decision changed: "tool-3 → tool-2", "activated node20", "deactivated gcc, clang". */
export function decisionSummary(ev: Pick<TeamEvent, 'writes' | 'prev' | 'reverts'>): string {
  const before = new Map(ev.prev.map((w) => [w.key, w.value]));
  const on: string[] = [];
  const off: string[] = [];
  const moves: string[] = [];
  for (const w of ev.writes) {
    if ('active' in w.value) (w.value.active ? on : off).push(nameOf(w.key));
    else {
      const was = before.get(w.key);
      const from = was && 'layer' in was ? was.layer : null;
      const to = w.value.layer;
      if (from && to) moves.push(`${from} → ${to}`);
      else if (to) on.push(to);
      else if (from) off.push(from);
      else moves.push(`slot ${nameOf(w.key)} cleared`);
    }
  }
  // One layer replacing another is a swap, however the writes spelled it.
  if (on.length === 1 && off.length === 1) moves.push(`${off.pop()} → ${on.pop()}`);
  const parts = [...moves];
  if (on.length) parts.push(`activated ${on.join(', ')}`);
  if (off.length) parts.push(`deactivated ${off.join(', ')}`);
  const what = parts.join('; ') || 'no change';
  return ev.reverts ? `${what} (undo)` : what;
}

/** "just now", "40 s ago", "2 min ago", "3 h ago", "5 days ago". */
export function ago(then: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

/** "bob: tool-3 → tool-2, 2 min ago". */
export function decisionLine(ev: TeamEvent, now = Date.now()): string {
  return `${ev.user}: ${decisionSummary(ev)}, ${ago(ev.tag.wall, now)}`;
}

/** What a decision switched: the layers it turned on and those it turned off (by its writes and what they replaced). */
export function switchedBy(ev: Pick<TeamEvent, 'writes' | 'prev'>): { on: string[]; off: string[] } {
  const before = new Map(ev.prev.map((w) => [w.key, w.value]));
  const on = new Set<string>();
  const off = new Set<string>();
  for (const w of ev.writes) {
    const was = before.get(w.key);
    if ('active' in w.value) {
      const name = nameOf(w.key);
      const wasActive = !!was && 'active' in was && was.active;
      if (w.value.active && !wasActive) on.add(name);
      if (!w.value.active && wasActive) off.add(name);
    } else {
      const from = was && 'layer' in was ? was.layer : null;
      if (from === w.value.layer) continue;
      if (w.value.layer) on.add(w.value.layer);
      if (from) off.add(from);
    }
  }
  return { on: [...on], off: [...off] };
}
