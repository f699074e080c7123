/**
 * The views: one strata-viewd process each (viewserver.ts), mounted over its base folder (in
 * place) or beside it (--at). The agent starts or finds each view's server, pushes it the rule
 * table of the active layers on every change, asks it who holds files open, and tells it to
 * unmount. A server lives in a session of its own: the views outlive the agent, and the next
 * agent reconnects to them.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { OpenFileHolder, StaleHolder, ViewInfo } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { isInside } from '../../shared/paths';
import { isUnder } from '../../shared/resolver';
import { LayerCatalog } from '../catalog';
import { wholeFromEnv } from '../env';
import { Queue } from '../queue';
import { StateFile } from '../statefile';
import { compileRuleTable, pctDecode } from './ruletable';
import { ViewdControl, ViewdError, ViewdOpenFile } from './viewdctl';
import { detach, strataMountAt } from './mounts';
import { liveHolders } from './proc';
import { Attached, CONTROL_TIMEOUT_MS, attach, serverAlive, socketFor, socketsByCommandLine, startServer, viewsDir } from './viewserver';

interface View {
  base: string;
  mountpoint: string;
  inPlace: boolean;
  /** The control connection while the view is served; null when it failed or its server is gone. */
  ctl: ViewdControl | null;
  pid: number;
  /** The generation of the last table the server took. */
  generation: number;
  /** The server did not answer in time: left out of changes until it does. */
  stuck?: boolean;
  error?: string;
  /** When its server was last restarted after dying, to stop a crash loop. */
  recoveredAt?: number;
}

export interface ViewsOptions {
  /** The layer store's home: an in-place view must not cover it. */
  home: string;
  /** The agent's runtime folder (0700): the servers' control sockets live below it. */
  runtime: string;
  /** The mounts' fsname, unique per home: how a mount of ours is recognised. */
  fsname: string;
  /** Kernel cache timeouts (seconds); switches invalidate explicitly. */
  cacheTimeout: number;
  /** The servers append their log here. */
  logFile: string;
  /** A new server lists its mount first, within these bounds (ms 0: not at all); see warmUp. */
  warm: WarmBounds;
  queue: Queue;
  state: StateFile;
  catalog: LayerCatalog;
  emit: (reason: string) => void;
  log: (msg: string) => void;
}

export interface WarmBounds {
  names: number;
  ms: number;
}

/** About 1 KiB of kernel memory per name held; 50,000 names list in about a second here. */
export const DEFAULT_WARM: WarmBounds = { names: 50000, ms: 1500 };

/** STRATA_VIEW_WARM_MS and STRATA_VIEW_WARM_NAMES (0 turns the warm-up off). */
export function warmFromEnv(env: NodeJS.ProcessEnv = process.env): WarmBounds {
  const b = { ...DEFAULT_WARM };
  for (const [name, key] of [
    ['STRATA_VIEW_WARM_MS', 'ms'],
    ['STRATA_VIEW_WARM_NAMES', 'names'],
  ] as const) {
    b[key] = wholeFromEnv(env, name, 'turns the warm-up off') ?? b[key];
  }
  return b;
}

/** A server that died again this soon after being restarted is left down. */
const RECOVER_INTERVAL_MS = 10000;

export class Views {
  private views = new Map<string, View>();
  private stopping = false;
  private busy: { at: number; layers: Set<string>; refreshing: boolean } = { at: 0, layers: new Set(), refreshing: false };

  constructor(private readonly o: ViewsOptions) {}

  /** Views restore() started new servers for: listed by warmRestored(), once the agent answers. */
  private unwarmed: View[] = [];

  /** Serve the views state.json lists (reconnecting to servers that still run); one that fails stays listed, with its error. */
  async restore(): Promise<void> {
    for (const v of this.o.state.data.views) {
      const mountpoint = realMountpoint(v.at ?? v.base);
      const view: View = { base: v.base, mountpoint, inPlace: !v.at, ctl: null, pid: 0, generation: 0 };
      this.views.set(v.base, view);
      try {
        if (await this.serve(view, false)) this.unwarmed.push(view);
      } catch (e) {
        view.error = (e as Error).message;
        this.o.log(`[agent] view ${v.base} could not be mounted: ${view.error}`);
      }
    }
  }

  /**
   * The agent stops: unmount every view (each server unmounts and exits), or with `keepViews`
   * only let go of them: they keep serving the last table until an agent reconnects.
   */
  async stop(keepViews = false): Promise<void> {
    this.stopping = true;
    for (const v of this.views.values()) {
      if (keepViews) {
        v.ctl?.close();
        if (v.ctl) this.o.log(`[view] ${v.mountpoint} keeps serving (server pid ${v.pid})`);
        v.ctl = null;
      } else {
        await this.unmount(v);
      }
    }
  }

  /** `warm` false: the new mount starts cold (no warm-up listing). */
  add(baseIn: string, atIn?: string, warm = true): Promise<ViewInfo> {
    return this.o.queue.run(async () => {
      const base = path.resolve(baseIn);
      const at = atIn ? path.resolve(atIn) : undefined;
      if (this.views.has(base))
        throw new StrataError('E_VIEW_EXISTS', `${base} already has a view`, `Remove it first with "strata view rm ${base}".`);
      const home = this.o.home;
      if (!at && (isInside(home, base) || isInside(base, home))) {
        throw new StrataError(
          'E_VIEW_INVALID',
          `an in-place view of ${base} would cover the layer store ${home}`,
          'Move STRATA_HOME out of the base, or use --at MOUNTPOINT.',
        );
      }
      if (at && (isInside(at, base) || isInside(base, at))) {
        throw new StrataError(
          'E_VIEW_INVALID',
          `mountpoint ${at} and base ${base} overlap`,
          'Mount the view beside the base, not inside it.',
        );
      }
      for (const v of this.views.values()) {
        if (
          isInside(base, v.mountpoint) ||
          isInside(v.mountpoint, base) ||
          (at && (isInside(at, v.mountpoint) || isInside(v.mountpoint, at)))
        ) {
          throw new StrataError('E_VIEW_INVALID', `${at ?? base} overlaps the view mounted at ${v.mountpoint}`, 'Views may not nest.');
        }
      }
      if (at) await fsp.mkdir(at, { recursive: true });
      const view: View = { base, mountpoint: realMountpoint(at ?? base), inPlace: !at, ctl: null, pid: 0, generation: 0 };
      // Persisted first: a full disk (E_IO) leaves no view mounted and unrecorded.
      const prev = this.o.state.data;
      await this.o.state.commit({ ...prev, views: [...prev.views, at ? { base, at } : { base }] });
      try {
        await this.serve(view, warm);
      } catch (e) {
        await this.o.state.commit({ ...this.o.state.data, views: prev.views }).catch(() => {});
        throw e;
      }
      this.views.set(base, view);
      this.o.emit('view-added');
      return info(view);
    });
  }

  remove(baseIn: string): Promise<{ removed: string }> {
    return this.o.queue.run(async () => {
      const base = path.resolve(baseIn);
      const v = this.views.get(base);
      if (!v) throw new StrataError('E_VIEW_UNKNOWN', `no view of ${base}`, 'Run "strata view list" to see the views.');
      // Persisted first: a full disk (E_IO) leaves the view mounted and recorded.
      const prev = this.o.state.data;
      await this.o.state.commit({ ...prev, views: prev.views.filter((x) => x.base !== base) });
      try {
        await this.unmount(v);
      } catch (e) {
        await this.o.state.commit({ ...this.o.state.data, views: prev.views }).catch(() => {});
        throw e;
      }
      this.views.delete(base);
      this.o.emit('view-removed');
      return { removed: base };
    });
  }

  list(): ViewInfo[] {
    return [...this.views.values()].map(info);
  }

  /**
   * Refuse a client-given path inside one of this agent's views: what the agent would read or
   * write there depends on the active layers (a layer's writable sublayer, or the base).
   */
  assertOutside(p: string, what: string): void {
    const abs = path.resolve(p);
    for (const v of this.views.values()) {
      if (v.ctl && isInside(abs, v.mountpoint)) {
        throw new StrataError(
          'E_BAD_REQUEST',
          `${what} ${abs} is inside the view at ${v.mountpoint}, which this agent serves`,
          'Keep it outside the view, or let the client send its content.',
        );
      }
    }
  }

  /** The mountpoint of the view (mounted or not) that holds `p`, if any. */
  mountpointHolding(p: string): string | undefined {
    return [...this.views.values()].find((v) => isInside(p, v.mountpoint))?.mountpoint;
  }

  /**
   * Push the table of the active layers to every served view and wait until each has
   * invalidated what changed. When one refuses it or does not answer, `undo` restores the
   * previous rules, the views are given those again, and the failure is thrown: a change is
   * applied to every view or to none. A server that dies meanwhile is no failure: it is restarted
   * with the current table.
   */
  async apply(undo?: () => Promise<void>): Promise<void> {
    const failures = (await Promise.all([...this.views.values()].map((v) => this.push(v)))).filter((f) => f !== null);
    if (!failures.length) return;
    if (undo) {
      await undo();
      const again = (await Promise.all([...this.views.values()].map((v) => this.push(v)))).filter((f) => f !== null);
      for (const f of again) this.o.log(`[view] restoring the previous rules failed: ${f}`);
    }
    throw new StrataError(
      'E_MOUNT_FAILED',
      `a view did not take the change: ${failures.join('; ')}`,
      undo
        ? 'Nothing was switched. See the agent log, then try again.'
        : 'See the agent log; "strata view rm" and "view add" restart the view.',
    );
  }

  /** Processes holding files of these layers open, in any view. */
  async holders(names: string[]): Promise<OpenFileHolder[]> {
    return (await this.openFiles(new Set(names))).map((o) => o.holder);
  }

  /** Of these layers, those with files open in any view. */
  async busyLayers(names: string[]): Promise<string[]> {
    const open = new Set((await this.openFiles(new Set(names))).map((o) => o.layer));
    return names.filter((n) => open.has(n));
  }

  /**
   * Processes holding files under `prefixes` that a change replaced: opened from a place (a layer,
   * or the base) that no longer serves that path. They run the old version until restarted.
   */
  async staleHolders(prefixes: string[]): Promise<StaleHolder[]> {
    if (!prefixes.length) return [];
    const out = new Map<string, StaleHolder>();
    for (const { v, ctl, f } of await this.serverOpenFiles()) {
      const rel = f.path.toString('utf8');
      if (!prefixes.some((p) => isUnder(rel, p))) continue;
      const now = await this.servingLayer(ctl, f.path).catch(() => undefined);
      if (now === undefined || now === f.layer) continue;
      for (const h of liveHolders([{ pid: f.pid, file: path.join(v.mountpoint, rel) }]))
        out.set(`${h.pid}:${h.path}`, { ...h, layer: f.layer });
    }
    return [...out.values()];
  }

  /** The layer that serves a view path now (the first source in the server's chain that exists), null for the base. */
  private async servingLayer(ctl: ViewdControl, viewPath: Buffer): Promise<string | null> {
    const fields = (await ctl.resolve(viewPath)).split(' ').slice(3);
    for (const src of fields) {
      const m = /^([wf]):([^:]+):(.*)$/.exec(src);
      if (!m) return null;
      const dir = m[1] === 'w' ? this.o.catalog.writableDir(m[2]) : this.o.catalog.filesDir(m[2]);
      const where = Buffer.concat([Buffer.from(dir + '/'), pctDecode(m[3])]);
      if (
        await fsp.lstat(where).then(
          () => true,
          () => false,
        )
      )
        return m[2];
    }
    return null;
  }

  /**
   * The layers with files open, as last seen (at most about a second old when asked often): for
   * the team's presence, which is built synchronously. Asking refreshes it in the background.
   */
  busySeen(): ReadonlySet<string> {
    const b = this.busy;
    if (!b.refreshing && Date.now() - b.at > 1000) {
      b.refreshing = true;
      this.openFiles(new Set(this.o.catalog.all().map((s) => s.name)))
        .then((open) => (b.layers = new Set(open.map((o) => o.layer))))
        .catch(() => {})
        .finally(() => {
          b.at = Date.now();
          b.refreshing = false;
        });
    }
    return b.layers;
  }

  /**
   * Files of these layers open in any view, as the servers report them, each checked against
   * /proc: the kernel tells a server of a close only after close() returns.
   */
  private async openFiles(layers: ReadonlySet<string>): Promise<{ layer: string; holder: OpenFileHolder }[]> {
    return (await this.serverOpenFiles()).flatMap(({ v, f }) =>
      f.layer !== null && layers.has(f.layer)
        ? liveHolders([{ pid: f.pid, file: path.join(v.mountpoint, f.path.toString('utf8')) }]).map((holder) => ({
            layer: f.layer!,
            holder,
          }))
        : [],
    );
  }

  /** What every served view's server reports open (its opener's thread, layer and view path). */
  private async serverOpenFiles(): Promise<{ v: View; ctl: ViewdControl; f: ViewdOpenFile }[]> {
    const per = await Promise.all(
      [...this.views.values()].map(async (v) => {
        const ctl = v.ctl;
        if (!ctl || v.stuck) return [];
        const open = await ctl.openFiles(CONTROL_TIMEOUT_MS).catch((e: Error) => {
          this.o.log(`[view] open files of ${v.mountpoint}: ${e.message}`);
          return [];
        });
        return open.map((f) => ({ v, ctl, f }));
      }),
    );
    return per.flat();
  }

  // ---- one view's server ------------------------------------------------------------------------

  /**
   * The warm-up of the views restore() mounted, one at a time, each in the queue: the agent
   * starts answering first (a client waits at most 20 s for it), and a switch may come between.
   */
  async warmRestored(): Promise<void> {
    for (const v of this.unwarmed.splice(0)) {
      await this.o.queue.run(async () => {
        if (v.ctl && this.views.get(v.base) === v && !this.stopping) await this.warmUp(v, v.ctl);
      });
    }
  }

  /**
   * Reconnect to the view's running server, or clear a dead one's mount and start a new one; then
   * push the table. Returns whether it started a new server (false: it reconnected).
   */
  private async serve(v: View, warm = true): Promise<boolean> {
    const runtimeViews = viewsDir(this.o.runtime);
    const sock = socketFor(runtimeViews, v.mountpoint);
    let att: Attached | null = await attach(sock, v.mountpoint);
    for (const other of att ? [] : socketsByCommandLine(this.o.fsname, v.mountpoint)) {
      att = await attach(other, v.mountpoint).catch((e: Error) => {
        this.o.log(`[view] ${e.message}`);
        return null;
      });
      if (att) break;
    }
    const started = att === null;
    if (att) {
      this.o.log(`[view] reconnected to the server of ${v.mountpoint} (pid ${att.hello.pid})`);
    } else {
      await this.clearStale(v.mountpoint);
      const st = await fsp.stat(v.base).catch((e) => {
        throw new StrataError('E_VIEW_INVALID', `view base ${v.base}: ${(e as Error).message}`, 'Give an existing folder.');
      });
      if (!st.isDirectory()) throw new StrataError('E_VIEW_INVALID', `view base ${v.base} is not a directory`, 'Give an existing folder.');
      att = await startServer({
        mountpoint: v.mountpoint,
        base: v.base,
        inPlace: v.inPlace,
        fsname: this.o.fsname,
        sock,
        timeout: this.o.cacheTimeout,
        logFile: this.o.logFile,
      });
      this.o.log(`[view] serving ${v.base}${v.inPlace ? ' in place' : ` at ${v.mountpoint}`} (server pid ${att.hello.pid})`);
    }
    this.connect(v, att);
    const failed = await this.push(v);
    if (failed) {
      await this.unmount(v);
      throw new StrataError('E_MOUNT_FAILED', `the view of ${v.base} did not take the rules: ${failed}`, 'See the agent log.');
    }
    if (started && warm) await this.warmUp(v, att.ctl);
    return started;
  }

  /**
   * A new mount lists itself once, so the kernel gets its names in pages (READDIRPLUS) instead of
   * one LOOKUP per name when git or an editor first walks it. Best effort: a failure is logged.
   */
  private async warmUp(v: View, ctl: ViewdControl): Promise<void> {
    const b = this.o.warm;
    if (b.ms <= 0 || b.names <= 0) return;
    const w = await ctl.warm(b.names, b.ms, b.ms + CONTROL_TIMEOUT_MS).catch((e: Error) => {
      this.o.log(`[view] warming ${v.mountpoint}: ${e.message}`);
      return null;
    });
    if (w)
      this.o.log(
        `[view] warmed ${v.mountpoint}: ${w.folders} folders, ${w.names} names in ${w.ms} ms` +
          (w.partial ? ` (stopped at ${b.names} names or ${b.ms} ms; the rest is looked up when used)` : ''),
      );
  }

  private connect(v: View, att: Attached): void {
    v.ctl = att.ctl;
    v.pid = att.hello.pid;
    v.generation = att.hello.generation;
    v.stuck = false;
    delete v.error;
    const ctl = att.ctl;
    ctl.onClose(() => {
      if (v.ctl !== ctl) return; // let go on purpose
      v.ctl = null;
      if (this.stopping) return;
      void this.o.queue.run(() => this.lost(v)).catch((e: Error) => this.o.log(`[view] ${v.mountpoint}: ${e.message}`));
    });
  }

  /** A server of ours may have died and left its mount answering ENOTCONN: detach it before touching the path. */
  private async clearStale(mountpoint: string): Promise<void> {
    if (!strataMountAt(mountpoint, this.o.fsname)) return;
    this.o.log(`[view] clearing a mount of ours at ${mountpoint} whose server is gone`);
    await detach(mountpoint);
  }

  /**
   * The control connection ended without being asked to. The server may still run (reconnect),
   * have died and left its mount (start it again, unless it keeps dying), or have ended because
   * the mount was taken away from outside (the view failed).
   */
  private async lost(v: View): Promise<void> {
    if (this.views.get(v.base) !== v || v.ctl || this.stopping) return;
    // The connection closes while the process exits: give it a moment to be gone.
    for (let i = 0; i < 20 && serverAlive(v.pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (serverAlive(v.pid)) {
      const att = await attach(socketFor(viewsDir(this.o.runtime), v.mountpoint), v.mountpoint).catch(() => null);
      if (att) {
        this.connect(v, att);
        if (!(await this.push(v))) return;
      }
    }
    if (strataMountAt(v.mountpoint, this.o.fsname) && !(v.recoveredAt && Date.now() - v.recoveredAt < RECOVER_INTERVAL_MS)) {
      this.o.log(`[view] the server of ${v.mountpoint} (pid ${v.pid}) died; starting it again`);
      v.recoveredAt = Date.now();
      try {
        await this.serve(v);
        this.o.emit('view-recovered');
        return;
      } catch (e) {
        v.error = `its server died and could not be started again: ${(e as Error).message}`;
      }
    } else if (strataMountAt(v.mountpoint, this.o.fsname)) {
      await detach(v.mountpoint).catch(() => {});
      v.error = 'its server keeps dying; see the agent log';
    } else {
      v.error = 'unmounted from outside (its server ended)';
    }
    this.o.log(`[view] ${v.mountpoint}: ${v.error}`);
    this.o.emit('view-lost');
  }

  /**
   * Give the server the current table; the failure as text, or null (also when the connection
   * dropped or the server is stuck: it gets the current table when it is back).
   */
  private async push(v: View): Promise<string | null> {
    const ctl = v.ctl;
    if (!ctl || v.stuck) return null;
    const c = this.o.catalog;
    const text = compileRuleTable(
      c.resolver(),
      { filesDir: (l) => c.filesDir(l), writableDir: (l) => c.writableDir(l), metaDir: (l) => c.metaDir(l) },
      v.generation + 1,
    );
    try {
      const r = await ctl.rules(text, CONTROL_TIMEOUT_MS);
      v.generation = r.generation;
      return null;
    } catch (e) {
      // The connection dropped: lost() reconnects or restarts the server, and pushes this table then.
      if (!(e instanceof ViewdError) || e.code === 'E_CLOSED') return null;
      if (e instanceof ViewdError && e.code === 'E_TIMEOUT') this.stuck(v, ctl);
      return `${v.mountpoint}: ${(e as Error).message}`;
    }
  }

  /**
   * The server did not answer in time. It may still take the table it was sent once it goes on,
   * so until it answers it is left out of changes, and then it is given the current table: no
   * half switch stays behind.
   */
  private stuck(v: View, ctl: ViewdControl): void {
    v.stuck = true;
    v.error = `its server (pid ${v.pid}) does not answer`;
    this.o.log(`[view] ${v.mountpoint}: ${v.error}`);
    this.o.emit('view-lost');
    ctl.request('hello 1').then(
      () =>
        this.o.queue.run(async () => {
          if (v.ctl !== ctl) return;
          v.stuck = false;
          delete v.error;
          const failed = await this.push(v);
          this.o.log(`[view] ${v.mountpoint}: its server answers again${failed ? `, but: ${failed}` : ''}`);
          this.o.emit('view-recovered');
        }),
      () => {}, // the connection ended: lost() takes over
    );
  }

  private async unmount(v: View): Promise<void> {
    const ctl = v.ctl;
    v.ctl = null;
    if (ctl) {
      await ctl.unmount(CONTROL_TIMEOUT_MS).catch((e: Error) => this.o.log(`[view] unmount of ${v.mountpoint}: ${e.message}`));
      ctl.close();
    }
    if (v.pid) {
      // The server unmounts, then exits: wait for it, so the mount is gone when we return.
      for (let i = 0; i < 200 && serverAlive(v.pid); i++) await new Promise((r) => setTimeout(r, 50));
      if (serverAlive(v.pid)) {
        this.o.log(`[view] the server of ${v.mountpoint} (pid ${v.pid}) did not exit; killing it`);
        process.kill(v.pid, 'SIGKILL');
      }
    }
    if (strataMountAt(v.mountpoint, this.o.fsname)) await detach(v.mountpoint).catch((e: Error) => this.o.log(`[view] ${e.message}`));
  }
}

/** The mountpoint as the kernel names it (symlinks in its parents resolved), without touching the mount itself. */
function realMountpoint(p: string): string {
  try {
    return path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
  } catch {
    return p;
  }
}

function info(v: View): ViewInfo {
  const out: ViewInfo = { base: v.base, mountpoint: v.mountpoint, inPlace: v.inPlace, state: v.ctl && !v.stuck ? 'mounted' : 'failed' };
  if (v.error) out.error = v.error;
  return out;
}
