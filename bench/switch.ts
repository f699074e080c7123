/**
 * Switch latency over the agent's control socket: newline-delimited JSON requests
 * ({"id":1,"method":"activate","params":{"names":["x"]}}), one response line per request.
 *
 * Each switch is timed from writing the request until a fresh read of a mapped path in the
 * mount shows the new state. The first read after the response must already show it: anything
 * else is a stale read, counted and kept as evidence.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { BASE_RUN, BASE_VERSION, LAYER_RUN, LAYER_VERSION } from './dataset';
import { median, percentile } from './util';

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export class Control {
  private sock: net.Socket | null = null;
  private buf = '';
  private nextId = 1;
  private waiting = new Map<number, (r: Reply) => void>();

  async connect(path: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(path);
      s.setEncoding('utf8');
      s.once('connect', () => {
        this.sock = s;
        resolve();
      });
      s.once('error', reject);
      s.on('data', (chunk: string) => {
        this.buf += chunk;
        let nl: number;
        while ((nl = this.buf.indexOf('\n')) >= 0) {
          const line = this.buf.slice(0, nl);
          this.buf = this.buf.slice(nl + 1);
          let msg: Reply;
          try {
            msg = JSON.parse(line) as Reply;
          } catch {
            continue;
          }
          const w = this.waiting.get(msg.id);
          if (w) {
            this.waiting.delete(msg.id);
            w(msg);
          }
        }
      });
      s.on('close', () => {
        for (const w of this.waiting.values())
          w({ id: -1, ok: false, error: { code: 'E_CLOSED', message: 'the agent closed the connection' } });
        this.waiting.clear();
      });
    });
  }

  call(method: string, params: unknown): Promise<Reply> {
    const s = this.sock;
    if (!s) return Promise.reject(new Error('not connected'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      s.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  close(): void {
    this.sock?.destroy();
    this.sock = null;
  }
}

/** What a switch must make visible, and how to look. */
export interface Probe {
  /** The state the view shows, as one comparable string (e.g. file content, or "<ENOENT>"). */
  read(): string;
  expect(active: boolean): string;
  /** Untimed extra check after the switch (e.g. execute a mapped script); a message when stale. */
  after?(active: boolean): string | null;
  /** Untimed work before the next switch (e.g. fill the kernel caches under the mapping). */
  between?(active: boolean): void;
}

export interface SwitchResult {
  layer: string;
  /** Why the test stopped early: a switch that was not visible within stuckMs (or never). */
  aborted: string | null;
  switches: number;
  latencies: number[];
  /** request written → response read */
  responses: number[];
  staleReads: number;
  staleAfter: number;
  busyRefusals: number;
  /** Up to 10 examples of each kind: stale first reads, failed after-checks, busy refusals. */
  evidence: { stale: string[]; after: string[]; busy: string[] };
  p50: number;
  p99: number;
  max: number;
  activateP50: number;
  activateP99: number;
  deactivateP50: number;
  deactivateP99: number;
  responseP50: number;
  responseP99: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Toggle `layer` 2×`iterations` times (deactivate, activate, ...), starting from active. A switch
 * that is not visible within `stuckMs` ends the test (after waiting up to `giveUpMs` for it, so
 * the view is consistent again); its latency is kept, so the percentiles show it.
 * A deactivate refused with E_LAYER_BUSY (a file of the layer still open) is retried after 5 ms
 * and counted; the timing restarts with the retried request.
 */
export async function measureSwitch(
  ctl: Control,
  layer: string,
  iterations: number,
  probe: Probe,
  stuckMs = 5000,
  giveUpMs = 65000,
): Promise<SwitchResult> {
  let aborted: string | null = null;
  const latencies: number[] = [];
  const responses: number[] = [];
  const byDir: { activate: number[]; deactivate: number[] } = { activate: [], deactivate: [] };
  const evidence: SwitchResult['evidence'] = { stale: [], after: [], busy: [] };
  let staleReads = 0;
  let staleAfter = 0;
  let busy = 0;
  let active: boolean = true;
  // The kernel caches what the view shows now; the switch has to invalidate it.
  const first = probe.read();
  if (first !== probe.expect(true))
    throw new Error(`switch test: before the first switch the view shows ${JSON.stringify(first)}, expected the layer's content`);
  probe.between?.(true);
  for (let i = 0; i < iterations * 2; i++) {
    const next: boolean = !active;
    const method = next ? 'activate' : 'deactivate';
    let t0: number;
    let reply: Reply;
    for (;;) {
      t0 = now();
      reply = await ctl.call(method, { names: [layer] });
      if (reply.ok || reply.error?.code !== 'E_LAYER_BUSY') break;
      busy++;
      if (evidence.busy.length < 10) evidence.busy.push(`${method} ${layer} refused: ${reply.error.message}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const t1 = now();
    if (!reply.ok) throw new Error(`${method} ${layer} failed: ${reply.error?.code}: ${reply.error?.message}`);
    const want = probe.expect(next);
    let seen = probe.read();
    if (seen !== want) {
      staleReads++;
      const first = seen;
      // Poll (tight at first, then gently) until the view follows, for at most giveUpMs.
      const deadline = t1 + giveUpMs;
      let polls = 0;
      while (seen !== want && now() < deadline) {
        polls++;
        if (polls > 1000) await new Promise((r) => setTimeout(r, polls > 5000 ? 20 : 1));
        seen = probe.read();
      }
      const lasted = now() - t1;
      const msg =
        `switch ${i + 1} (${method}): first read after the response showed ${JSON.stringify(first.slice(0, 80))}, expected ${JSON.stringify(want.slice(0, 80))}; ` +
        (seen === want ? `correct after ${lasted.toFixed(0)} ms` : `still wrong after ${lasted.toFixed(0)} ms`);
      if (evidence.stale.length < 10) evidence.stale.push(msg);
      if (seen !== want || lasted > stuckMs) aborted = `${msg}; test stopped there`;
    }
    const t2 = now();
    latencies.push(t2 - t0);
    responses.push(t1 - t0);
    byDir[method].push(t2 - t0);
    if (aborted) break;
    const bad = probe.after?.(next) ?? null;
    if (bad) {
      staleAfter++;
      if (evidence.after.length < 10) evidence.after.push(`switch ${i + 1} (${method}): ${bad}`);
    }
    active = next;
    probe.between?.(next);
  }
  return {
    layer,
    aborted,
    switches: latencies.length,
    latencies,
    responses,
    staleReads,
    staleAfter,
    busyRefusals: busy,
    evidence,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    activateP50: median(byDir.activate),
    activateP99: percentile(byDir.activate, 99),
    deactivateP50: median(byDir.deactivate),
    deactivateP99: percentile(byDir.deactivate, 99),
    responseP50: percentile(responses, 50),
    responseP99: percentile(responses, 99),
  };
}

/** Run a script and return its first output line, or the error. */
export function runScript(file: string): string {
  const r = spawnSync(file, [], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return `<${(r.error as NodeJS.ErrnoException).code ?? r.error.message}>`;
  return (r.stdout || '').trim();
}

// ---- the two switch tests ---------------------------------------------------------------------------

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return `<${(e as NodeJS.ErrnoException).code ?? 'error'}>`;
  }
}

export interface ToolsSwitch extends SwitchResult {
  /** Stale exec of tool/run.sh; a layer-only name looked up before the switch that did not follow it; a fresh lookup wrong. */
  stale: { exec: number; negative: number; freshWrong: number };
}

/**
 * Toggle layer "tools" (/tool -> tool). Besides the first read, each switch checks that running
 * tool/run.sh follows it and that a layer-only name (tool/n/lK) looked up before the switch, in
 * the old state, follows it too. `names` hands out a fresh K each time (K < the layer's count).
 */
export async function switchTools(ctl: Control, mnt: string, iterations: number, names: () => number): Promise<ToolsSwitch> {
  const stale = { exec: 0, negative: 0, freshWrong: 0 };
  let pending: number | null = null;
  const layerOnly = (i: number) => path.join(mnt, 'tool', 'n', `l${i}`);
  const r = await measureSwitch(ctl, 'tools', iterations, {
    read: () => readOr(path.join(mnt, 'tool', 'version')),
    expect: (a) => (a ? LAYER_VERSION : BASE_VERSION),
    after: (a) => {
      const msgs: string[] = [];
      const ran = runScript(path.join(mnt, 'tool', 'run.sh'));
      const wantRun = a ? LAYER_RUN : BASE_RUN;
      if (ran !== wantRun) {
        stale.exec++;
        msgs.push(`executing tool/run.sh printed "${ran}", expected "${wantRun}"`);
      }
      if (pending !== null) {
        // A name looked up before the switch (negative entry when the layer was off) must follow it.
        const seen = readOr(layerOnly(pending));
        if (seen.startsWith('<') === a) {
          stale.negative++;
          msgs.push(
            `tool/n/l${pending} (looked up before the switch) read ${JSON.stringify(seen.trim())} after ${a ? 'activate' : 'deactivate'}`,
          );
        }
      }
      return msgs.length ? msgs.join('; ') : null;
    },
    between: (a) => {
      const i = names();
      const seen = readOr(layerOnly(i));
      if (seen.startsWith('<') === a) stale.freshWrong++;
      pending = i;
    },
  });
  return { ...r, stale };
}

/**
 * Toggle `layer`, which maps the data set's tree at MNT/`mapped`; after each activation, `find`
 * fills the kernel caches below the mapping again, so every deactivation has all of them to drop.
 */
export function switchMapped(
  ctl: Control,
  layer: string,
  mnt: string,
  mapped: string,
  probe: { rel: string; text: string },
  iterations: number,
): Promise<SwitchResult> {
  const file = path.join(mnt, mapped, probe.rel);
  return measureSwitch(ctl, layer, iterations, {
    read: () => readOr(file),
    expect: (a) => (a ? probe.text : '<ENOENT>'),
    between: (a) => {
      if (a) spawnSync('find', [path.join(mnt, mapped), '-printf', '%s\\n'], { stdio: 'ignore', timeout: 120000 });
    },
  });
}
