/**
 * The views: one FUSE mount each, over its base folder (in place) or beside it (--at). Mounting,
 * unmounting, the checks that keep views apart from each other and from the layer store, kernel
 * cache invalidation after a switch, and who holds files open in them.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { OpenFileHolder, StaleHolder, ViewInfo } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { isInside } from '../../shared/paths';
import { isUnder } from '../../shared/resolver';
import { LayerCatalog } from '../catalog';
import { Queue } from '../queue';
import { StateFile } from '../statefile';
import { ViewFs } from './viewfs';
import { fuseHandlers } from './handlers';
import { detach, strataMountAt } from './mounts';
import { liveHolders } from './proc';
import * as native from './native';

interface View {
  base: string;
  mountpoint: string;
  inPlace: boolean;
  baseFd: number | null;
  fs: ViewFs;
  mount: native.FuseMount | null;
  error?: string;
}

export interface ViewsOptions {
  /** The layer store's home: an in-place view must not cover it. */
  home: string;
  /** The mounts' fsname, unique per home: how a stale mount of ours is recognised. */
  fsname: string;
  /** Kernel cache timeouts (seconds); switches invalidate explicitly. */
  cacheTimeout: number;
  queue: Queue;
  state: StateFile;
  catalog: LayerCatalog;
  emit: (reason: string) => void;
  log: (msg: string) => void;
}

export class Views {
  private views = new Map<string, View>();

  constructor(private readonly o: ViewsOptions) {}

  /** Mount the views state.json lists; one that fails stays listed, with its error. */
  async restore(): Promise<void> {
    for (const v of this.o.state.data.views) {
      try {
        await this.mount(v.base, v.at);
      } catch (e) {
        this.o.log(`[agent] view ${v.base} could not be mounted: ${(e as Error).message}`);
        this.views.set(v.base, {
          base: v.base,
          mountpoint: v.at ?? v.base,
          inPlace: !v.at,
          baseFd: null,
          mount: null,
          fs: this.newViewFs(v.base),
          error: (e as Error).message,
        });
      }
    }
  }

  async stop(): Promise<void> {
    for (const v of this.views.values()) await this.unmount(v);
  }

  add(baseIn: string, atIn?: string): Promise<ViewInfo> {
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
      const view = await this.mount(base, at);
      this.o.state.data.views.push(at ? { base, at } : { base });
      await this.o.state.save();
      this.o.emit('view-added');
      return info(view);
    });
  }

  remove(baseIn: string): Promise<{ removed: string }> {
    return this.o.queue.run(async () => {
      const base = path.resolve(baseIn);
      const v = this.views.get(base);
      if (!v) throw new StrataError('E_VIEW_UNKNOWN', `no view of ${base}`, 'Run "strata view list" to see the views.');
      await this.unmount(v);
      this.views.delete(base);
      this.o.state.data.views = this.o.state.data.views.filter((x) => x.base !== base);
      await this.o.state.save();
      this.o.emit('view-removed');
      return { removed: base };
    });
  }

  list(): ViewInfo[] {
    return [...this.views.values()].map(info);
  }

  /**
   * Refuse a client-given path inside one of this agent's views: reading it would send the agent
   * a FUSE request that only its own (busy) thread could answer.
   */
  assertOutside(p: string, what: string): void {
    const abs = path.resolve(p);
    for (const v of this.views.values()) {
      if (v.mount && isInside(abs, v.mountpoint)) {
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

  /** Drop what the kernel caches under the given view paths, in every mounted view. */
  async invalidate(prefixes: string[]): Promise<void> {
    if (!prefixes.length) return;
    await Promise.all(
      [...this.views.values()].map(async (v) => {
        if (!v.mount) return;
        const paths = v.fs.invalidationSet([...new Set(prefixes)]);
        await v.mount.invalidate(paths);
      }),
    );
  }

  /** Processes holding files of these layers open, in any view. */
  holders(names: string[]): OpenFileHolder[] {
    const set = new Set(names);
    return [...this.views.values()].flatMap((v) =>
      liveHolders(v.fs.holders(set).map((o) => ({ pid: o.pid, file: path.join(v.mountpoint, o.path) }))),
    );
  }

  /**
   * Processes holding files under `prefixes` that a change replaced: opened from a place (a layer,
   * or the base) that no longer serves that path. They run the old version until restarted.
   */
  async staleHolders(prefixes: string[]): Promise<StaleHolder[]> {
    const out = new Map<string, StaleHolder>();
    for (const v of this.views.values()) {
      for (const o of v.fs.openFiles.values()) {
        if (!prefixes.some((p) => isUnder(o.path, p))) continue;
        const now = await v.fs.lookup(o.path).catch(() => null);
        if (now && (now.source.kind === 'base' ? null : now.source.layer) === o.layer) continue;
        for (const h of liveHolders([{ pid: o.pid, file: path.join(v.mountpoint, o.path) }]))
          out.set(`${h.pid}:${h.path}`, { ...h, layer: o.layer });
      }
    }
    return [...out.values()];
  }

  private newViewFs(baseRoot: string): ViewFs {
    const c = this.o.catalog;
    return new ViewFs(
      baseRoot,
      c.places(),
      () => c.resolver(),
      () => c.watched(),
      (m) => this.o.log(m),
    );
  }

  private async mount(base: string, at?: string): Promise<View> {
    const loaded = native.nativeAvailable();
    if (!loaded.ok) {
      throw new StrataError(
        'E_NATIVE_MISSING',
        `the FUSE addon is not available: ${loaded.error}`,
        'Install libfuse3-dev and fuse3, then run "npm ci" to build it.',
      );
    }
    const mountpoint = at ?? base;
    // A killed agent leaves its mount answering ENOTCONN: clear it before touching the path.
    if (strataMountAt(mountpoint, this.o.fsname)) {
      this.o.log(`[view] clearing a stale mount at ${mountpoint}`);
      await detach(mountpoint);
    }
    const st = await fsp.stat(base).catch((e) => {
      throw new StrataError('E_VIEW_INVALID', `view base ${base}: ${(e as Error).message}`, 'Give an existing folder.');
    });
    if (!st.isDirectory()) throw new StrataError('E_VIEW_INVALID', `view base ${base} is not a directory`, 'Give an existing folder.');
    let baseFd: number | null = null;
    let baseRoot = base;
    if (!at) {
      // Open the base before mounting over it: the agent reaches the shadowed files through this fd.
      baseFd = fs.openSync(base, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      baseRoot = `/proc/self/fd/${baseFd}`;
    } else {
      await fsp.mkdir(at, { recursive: true });
    }
    const vfs = this.newViewFs(baseRoot);
    const timeout = this.o.cacheTimeout;
    let mount: native.FuseMount;
    try {
      mount = native.mount(mountpoint, fuseHandlers(vfs), {
        fsname: this.o.fsname,
        subtype: 'strata',
        allowOther: process.getuid?.() === 0,
        entryTimeout: timeout,
        attrTimeout: timeout,
        negativeTimeout: timeout,
        kernelCache: true,
        useIno: true,
        onExit: (reason) => {
          const v = this.views.get(base);
          if (v && v.mount === mount) {
            v.mount = null;
            v.error = `unmounted from outside (${reason})`;
            this.o.log(`[view] ${mountpoint} ended: ${reason}`);
            this.o.emit('view-lost');
          }
        },
      });
    } catch (e) {
      if (baseFd !== null) fs.closeSync(baseFd);
      throw new StrataError(
        'E_MOUNT_FAILED',
        `mounting ${mountpoint} failed: ${(e as Error).message}`,
        'Check that /dev/fuse exists and fusermount3 is installed (Debian: fuse3).',
      );
    }
    const view: View = { base, mountpoint, inPlace: !at, baseFd, fs: vfs, mount };
    this.views.set(base, view);
    this.o.log(`[view] serving ${base}${at ? ` at ${at}` : ' in place'}`);
    return view;
  }

  private async unmount(v: View): Promise<void> {
    try {
      if (v.mount) await v.mount.unmount();
    } catch (e) {
      this.o.log(`[view] unmount of ${v.mountpoint} failed: ${(e as Error).message}`);
    }
    v.mount = null;
    for (const fd of v.fs.openFiles.keys()) fs.close(fd, () => {});
    v.fs.openFiles.clear();
    if (v.baseFd !== null) {
      fs.closeSync(v.baseFd);
      v.baseFd = null;
    }
  }
}

function info(v: View): ViewInfo {
  const out: ViewInfo = { base: v.base, mountpoint: v.mountpoint, inPlace: v.inPlace, state: v.mount ? 'mounted' : 'failed' };
  if (v.error) out.error = v.error;
  return out;
}
