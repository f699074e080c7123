/**
 * The agent's state machine: layers, the active set, views. Every change goes through one queue,
 * is persisted atomically, applied to every view (kernel caches invalidated) and only then
 * acknowledged and announced to subscribers.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import * as crypto from 'crypto';
import { AgentState, AgentStateSchema, AgentStatus, CONTROL_PROTOCOL_VERSION, LayerInfo, LayerSpec, OpenFileHolder, ViewInfo, parseJson } from '../protocol';
import { StrataError } from '../shared/errors';
import { LayerStore, Progress } from './store';
import { LayerMarks } from './fuse/marks';
import { RuleLayer, Resolver, normalizeLayerPath, normalizeViewPath, PathError } from '../shared/resolver';
import { destRel, checkLayerSpec } from './layerspec';
import { ViewFs } from './fuse/viewfs';
import { writeFileAtomic } from './atomic';
import { detach, strataMountAt } from './fuse/mounts';
import { isInside } from '../shared/paths';
import * as native from './fuse/native';

export interface AgentOptions {
  home: string;
  socket: string;
  log: (msg: string) => void;
  /** Kernel cache timeouts (seconds) for entries and attributes; switches invalidate explicitly. */
  cacheTimeout?: number;
}

interface View {
  base: string;
  mountpoint: string;
  inPlace: boolean;
  baseFd: number | null;
  fs: ViewFs;
  mount: native.FuseMount | null;
  error?: string;
}

function toRules(spec: LayerSpec): RuleLayer {
  return {
    name: spec.name,
    priority: spec.priority,
    mappings: spec.mappings.map((m) => ({ original: m.original, destination: destRel(m) })),
    excludes: spec.excludes,
    deletes: spec.deletes,
  };
}

function rulePaths(spec: LayerSpec): string[] {
  return [...spec.mappings.map((m) => m.original), ...spec.excludes, ...spec.deletes];
}

export class Agent {
  readonly store: LayerStore;
  private readonly stateFile: string;
  private state: AgentState = { format: 1, active: [], views: [] };
  private specs = new Map<string, LayerSpec>();
  private marks = new Map<string, LayerMarks>();
  private resolver = new Resolver([]);
  private watched: string[] = [];
  private views = new Map<string, View>();
  private queue: Promise<unknown> = Promise.resolve();
  private listeners = new Set<(reason: string) => void>();
  private progressListeners = new Set<(p: { task: string; message: string; done?: number; total?: number }) => void>();
  readonly fsname: string;

  constructor(readonly opts: AgentOptions) {
    fs.mkdirSync(opts.home, { recursive: true });
    this.store = new LayerStore(opts.home);
    this.stateFile = path.join(opts.home, 'state.json');
    this.fsname = 'strata-' + crypto.createHash('sha256').update(opts.home).digest('hex').slice(0, 8);
  }

  private log(msg: string): void {
    this.opts.log(msg);
  }

  /** Run state changes one at a time. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  onChange(fn: (reason: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  onProgress(fn: (p: { task: string; message: string; done?: number; total?: number }) => void): () => void {
    this.progressListeners.add(fn);
    return () => this.progressListeners.delete(fn);
  }
  progress(task: string, message: string, done?: number, total?: number): void {
    this.log(`[progress] ${task}: ${message}${total ? ` (${done}/${total})` : ''}`);
    for (const fn of this.progressListeners) fn({ task, message, done, total });
  }

  /** Announce a change to subscribers (also used by the team service). */
  emit(reason: string): void {
    for (const fn of this.listeners) {
      try {
        fn(reason);
      } catch (e) {
        this.log(`[agent] listener failed: ${(e as Error).message}`);
      }
    }
  }

  // ---- start / stop ------------------------------------------------------------------------------

  async start(): Promise<void> {
    await this.loadState();
    await this.reloadLayers();
    for (const v of this.state.views) {
      try {
        await this.mountView(v.base, v.at);
      } catch (e) {
        this.log(`[agent] view ${v.base} could not be mounted: ${(e as Error).message}`);
        this.views.set(v.base, {
          base: v.base, mountpoint: v.at ?? v.base, inPlace: !v.at, baseFd: null, mount: null,
          fs: this.newViewFs(v.base), error: (e as Error).message,
        });
      }
    }
  }

  async stop(): Promise<void> {
    for (const v of this.views.values()) await this.unmountView(v);
  }

  private async loadState(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.stateFile, 'utf8');
    } catch {
      return;
    }
    try {
      this.state = parseJson(AgentStateSchema, text, this.stateFile);
    } catch (e) {
      const aside = `${this.stateFile}.broken-${Date.now()}`;
      await fsp.rename(this.stateFile, aside).catch(() => {});
      this.log(`[agent] ${this.stateFile} was unreadable (${(e as Error).message}); kept it as ${aside} and started with nothing active`);
    }
  }

  private async saveState(): Promise<void> {
    await writeFileAtomic(this.stateFile, JSON.stringify(this.state, null, 2) + '\n');
  }

  /** Re-read every layer.json; broken ones are logged and left out of the active set. */
  private async reloadLayers(): Promise<void> {
    const { layers, broken } = await this.store.list();
    this.specs = new Map(layers.map((l) => [l.name, l]));
    for (const b of broken) this.log(`[store] layer ${b.name} skipped: ${b.error.message}`);
    for (const name of this.specs.keys()) {
      if (!this.marks.has(name)) {
        const m = new LayerMarks(this.store.writableDir(name));
        m.load();
        this.marks.set(name, m);
      }
    }
    for (const name of [...this.marks.keys()]) if (!this.specs.has(name)) this.marks.delete(name);
    this.rebuild();
  }

  private effectiveActive(): string[] {
    return this.state.active.filter((n) => this.specs.has(n));
  }

  private rebuild(): void {
    this.resolver = new Resolver(this.effectiveActive().map((n) => toRules(this.specs.get(n)!)));
    this.watched = [...new Set([...this.specs.values()].flatMap(rulePaths))];
  }

  private marksOf(layer: string): LayerMarks {
    let m = this.marks.get(layer);
    if (!m) {
      m = new LayerMarks(this.store.writableDir(layer));
      m.load();
      this.marks.set(layer, m);
    }
    return m;
  }

  private newViewFs(baseRoot: string): ViewFs {
    return new ViewFs(
      baseRoot,
      {
        filesDir: (l) => this.store.filesDir(l),
        writableDir: (l) => this.store.writableDir(l),
        marks: (l) => this.marksOf(l),
      },
      () => this.resolver,
      () => this.watched,
      (m) => this.log(m),
    );
  }

  // ---- views -------------------------------------------------------------------------------------

  private async mountView(base: string, at?: string): Promise<View> {
    const loaded = native.nativeAvailable();
    if (!loaded.ok) {
      throw new StrataError('E_NATIVE_MISSING', `the FUSE addon is not available: ${loaded.error}`, 'Install libfuse3-dev and fuse3, then run "npm ci" to build it.');
    }
    const mountpoint = at ?? base;
    // A killed agent leaves its mount answering ENOTCONN: clear it before touching the path.
    if (strataMountAt(mountpoint, this.fsname)) {
      this.log(`[view] clearing a stale mount at ${mountpoint}`);
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
    const timeout = this.opts.cacheTimeout ?? 60;
    let mount: native.FuseMount;
    try {
      mount = native.mount(mountpoint, vfs.handlers(), {
        fsname: this.fsname,
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
            this.log(`[view] ${mountpoint} ended: ${reason}`);
            this.emit('view-lost');
          }
        },
      });
    } catch (e) {
      if (baseFd !== null) fs.closeSync(baseFd);
      throw new StrataError('E_MOUNT_FAILED', `mounting ${mountpoint} failed: ${(e as Error).message}`, 'Check that /dev/fuse exists and fusermount3 is installed (Debian: fuse3).');
    }
    const view: View = { base, mountpoint, inPlace: !at, baseFd, fs: vfs, mount };
    this.views.set(base, view);
    this.log(`[view] serving ${base}${at ? ` at ${at}` : ' in place'}`);
    return view;
  }

  private async unmountView(v: View): Promise<void> {
    try {
      if (v.mount) await v.mount.unmount();
    } catch (e) {
      this.log(`[view] unmount of ${v.mountpoint} failed: ${(e as Error).message}`);
    }
    v.mount = null;
    for (const fd of v.fs.openFiles.keys()) fs.close(fd, () => {});
    v.fs.openFiles.clear();
    if (v.baseFd !== null) {
      fs.closeSync(v.baseFd);
      v.baseFd = null;
    }
  }

  addView(baseIn: string, atIn?: string): Promise<ViewInfo> {
    return this.serial(async () => {
      const base = path.resolve(baseIn);
      const at = atIn ? path.resolve(atIn) : undefined;
      if (this.views.has(base)) throw new StrataError('E_VIEW_EXISTS', `${base} already has a view`, `Remove it first with "strata view rm ${base}".`);
      const home = this.opts.home;
      if (!at && (isInside(home, base) || isInside(base, home))) {
        throw new StrataError('E_VIEW_INVALID', `an in-place view of ${base} would cover the layer store ${home}`, 'Move STRATA_HOME out of the base, or use --at MOUNTPOINT.');
      }
      if (at && (isInside(at, base) || isInside(base, at))) {
        throw new StrataError('E_VIEW_INVALID', `mountpoint ${at} and base ${base} overlap`, 'Mount the view beside the base, not inside it.');
      }
      for (const v of this.views.values()) {
        if (isInside(base, v.mountpoint) || isInside(v.mountpoint, base) || (at && (isInside(at, v.mountpoint) || isInside(v.mountpoint, at)))) {
          throw new StrataError('E_VIEW_INVALID', `${at ?? base} overlaps the view mounted at ${v.mountpoint}`, 'Views may not nest.');
        }
      }
      const view = await this.mountView(base, at);
      this.state.views.push(at ? { base, at } : { base });
      await this.saveState();
      this.emit('view-added');
      return this.viewInfo(view);
    });
  }

  removeView(baseIn: string): Promise<{ removed: string }> {
    return this.serial(async () => {
      const base = path.resolve(baseIn);
      const v = this.views.get(base);
      if (!v) throw new StrataError('E_VIEW_UNKNOWN', `no view of ${base}`, 'Run "strata view list" to see the views.');
      await this.unmountView(v);
      this.views.delete(base);
      this.state.views = this.state.views.filter((x) => x.base !== base);
      await this.saveState();
      this.emit('view-removed');
      return { removed: base };
    });
  }

  private viewInfo(v: View): ViewInfo {
    const info: ViewInfo = { base: v.base, mountpoint: v.mountpoint, inPlace: v.inPlace, state: v.mount ? 'mounted' : 'failed' };
    if (v.error) info.error = v.error;
    return info;
  }

  /**
   * Refuse a client-given path inside one of this agent's views: reading it would send the agent
   * a FUSE request that only its own (busy) thread could answer.
   */
  assertOutsideViews(p: string, what: string): void {
    const abs = path.resolve(p);
    for (const v of this.views.values()) {
      if (v.mount && isInside(abs, v.mountpoint)) {
        throw new StrataError('E_BAD_REQUEST', `${what} ${abs} is inside the view at ${v.mountpoint}, which this agent serves`, 'Keep it outside the view, or let the client send its content.');
      }
    }
  }

  listViews(): ViewInfo[] {
    return [...this.views.values()].map((v) => this.viewInfo(v));
  }

  // ---- activation --------------------------------------------------------------------------------

  /** Apply a new active set: persist, rebuild, invalidate what changed, then announce. */
  private async applyActive(next: string[], changedRulePaths: string[], reason: string): Promise<void> {
    this.state.active = next;
    await this.saveState();
    this.rebuild();
    await this.invalidate(changedRulePaths);
    this.emit(reason);
  }

  private async invalidate(prefixes: string[]): Promise<void> {
    if (!prefixes.length) return;
    await Promise.all(
      [...this.views.values()].map(async (v) => {
        if (!v.mount) return;
        const paths = v.fs.invalidationSet([...new Set(prefixes)]);
        await v.mount.invalidate(paths);
      }),
    );
  }

  private requireLayer(name: string): LayerSpec {
    const s = this.specs.get(name);
    if (!s) {
      throw new StrataError('E_LAYER_UNKNOWN', `no layer named "${name}"`, 'Run "strata layer list" to see the layers.');
    }
    return s;
  }

  private async refreshSpecs(): Promise<void> {
    // A layer.json edited by hand may have become invalid: surface that on use, not later.
    await this.reloadLayers();
  }

  activate(names: string[]): Promise<{ active: string[] }> {
    return this.serial(async () => {
      await this.refreshSpecs();
      for (const n of names) await this.requireLayerOrBroken(n);
      const next = [...this.state.active];
      const changed: string[] = [];
      for (const n of names) {
        if (!next.includes(n)) {
          next.push(n);
          changed.push(...rulePaths(this.specs.get(n)!));
        }
      }
      await this.applyActive(next, changed, 'activate');
      return { active: this.effectiveActive() };
    });
  }

  private async requireLayerOrBroken(name: string): Promise<void> {
    if (this.specs.has(name)) return;
    if (this.store.exists(name)) await this.store.get(name); // throws the precise validation error
    this.requireLayer(name);
  }

  /**
   * Make the team layers match the team's decision in one step: among `teamLayers`, exactly
   * `desired` is active, except `held` ones, which stay as they are here. Returns the desired
   * layers missing from the store (to be pulled). Files open in the views do not block a team
   * switch: a teammate's decision is applied like `--force`.
   */
  applyTeamSet(teamLayers: string[], desired: string[], held: string[], reason: string): Promise<{ active: string[]; missing: string[] }> {
    return this.serial(async () => {
      await this.reloadLayers();
      const isTeam = new Set(teamLayers);
      const keep = this.state.active.filter((n) => !isTeam.has(n) || held.includes(n));
      const want = desired.filter((n) => !held.includes(n));
      const missing = want.filter((n) => !this.specs.has(n));
      const next = [...new Set([...keep, ...want.filter((n) => this.specs.has(n))])];
      const before = new Set(this.state.active);
      const after = new Set(next);
      const changed = [...before, ...after].filter((n) => before.has(n) !== after.has(n));
      if (changed.length) {
        await this.applyActive(next, changed.flatMap((n) => (this.specs.has(n) ? rulePaths(this.specs.get(n)!) : [])), reason);
      }
      return { active: this.effectiveActive(), missing };
    });
  }

  /** Team layers with files open in any view (reported to teammates for --when-idle). */
  busyLayers(names: string[]): string[] {
    return names.filter((n) => this.holders([n]).length > 0);
  }

  activeLayers(): string[] {
    return this.effectiveActive();
  }

  hasLayer(name: string): boolean {
    return this.specs.has(name);
  }

  /** Re-read the store after a layer arrived from a peer. */
  refresh(): Promise<void> {
    return this.serial(() => this.reloadLayers());
  }

  holders(names: string[]): OpenFileHolder[] {
    const set = new Set(names);
    const out: OpenFileHolder[] = [];
    for (const v of this.views.values()) {
      for (const o of v.fs.holders(set)) {
        const tgid = readTgid(o.pid);
        const file = path.join(v.mountpoint, o.path);
        // The kernel sends RELEASE after close() returns; a file already closed is not held.
        if (stillHolds(tgid, file)) out.push({ pid: tgid, command: readComm(tgid), path: file });
      }
    }
    return out;
  }

  deactivate(names: string[], force = false): Promise<{ active: string[] }> {
    return this.serial(async () => {
      for (const n of names) {
        if (!this.state.active.includes(n)) this.requireLayer(n);
      }
      if (!force) this.refuseIfBusy(names);
      const changed = names.filter((n) => this.state.active.includes(n)).flatMap((n) => (this.specs.has(n) ? rulePaths(this.specs.get(n)!) : []));
      await this.applyActive(this.state.active.filter((n) => !names.includes(n)), changed, 'deactivate');
      return { active: this.effectiveActive() };
    });
  }

  private refuseIfBusy(names: string[]): void {
    const busy = this.holders(names);
    if (busy.length) {
      const who = busy.slice(0, 5).map((b) => `pid ${b.pid} (${b.command}) has ${b.path} open`).join('; ');
      throw new StrataError('E_LAYER_BUSY', `files of ${names.join(', ')} are open: ${who}${busy.length > 5 ? `; and ${busy.length - 5} more` : ''}`, 'Close them, or pass --force to switch anyway (open files keep their old content).');
    }
  }

  /** Replace OLD by NEW in one step: one persisted state, one rebuild, one invalidation. */
  swap(oldName: string, newName: string): Promise<{ active: string[] }> {
    return this.serial(async () => {
      await this.refreshSpecs();
      this.requireLayer(oldName);
      await this.requireLayerOrBroken(newName);
      if (!this.state.active.includes(oldName)) {
        throw new StrataError('E_LAYER_UNKNOWN', `layer "${oldName}" is not active`, `Activate "${newName}" directly with "strata activate ${newName}".`);
      }
      this.refuseIfBusy([oldName]);
      const next = this.state.active.filter((n) => n !== oldName);
      if (!next.includes(newName)) next.push(newName);
      await this.applyActive(next, [...rulePaths(this.specs.get(oldName)!), ...rulePaths(this.specs.get(newName)!)], 'swap');
      return { active: this.effectiveActive() };
    });
  }

  // ---- layers ------------------------------------------------------------------------------------

  async layerInfo(spec: LayerSpec): Promise<LayerInfo> {
    return { ...spec, active: this.effectiveActive().includes(spec.name), writableBytes: await this.store.writableBytes(spec.name) };
  }

  async listLayers(): Promise<LayerInfo[]> {
    return Promise.all([...this.specs.values()].map((s) => this.layerInfo(s)));
  }

  async showLayer(name: string): Promise<LayerInfo> {
    await this.refreshSpecs();
    await this.requireLayerOrBroken(name);
    return this.layerInfo(this.requireLayer(name));
  }

  createLayer(p: { name: string; from: string; priority?: number; version?: string; description?: string }, progress?: Progress): Promise<LayerInfo> {
    return this.serial(async () => {
      const from = path.resolve(p.from);
      for (const v of this.views.values()) {
        if (isInside(from, v.mountpoint)) {
          throw new StrataError('E_LAYER_INVALID', `--from ${from} is inside the view at ${v.mountpoint}`, 'Capture from a folder outside any Strata view.');
        }
      }
      const spec = await this.store.create(p.name, from, p, progress);
      await this.reloadLayers();
      this.emit('layer-created');
      return this.layerInfo(spec);
    });
  }

  removeLayer(name: string): Promise<{ removed: string }> {
    return this.serial(async () => {
      if (this.state.active.includes(name)) {
        throw new StrataError('E_LAYER_ACTIVE', `layer "${name}" is active`, `Deactivate it first with "strata deactivate ${name}".`);
      }
      await this.store.remove(name);
      await this.reloadLayers();
      this.emit('layer-removed');
      return { removed: name };
    });
  }

  /** Change a layer's rules through `edit`, validate, save, and apply to the views if active. */
  private editLayer(name: string, edit: (spec: LayerSpec) => LayerSpec, reason: string): Promise<LayerInfo> {
    return this.serial(async () => {
      await this.requireLayerOrBroken(name);
      const before = this.requireLayer(name);
      const after = await this.store.save(edit(structuredClone(before)));
      await this.reloadLayers();
      if (this.state.active.includes(name)) await this.invalidate([...rulePaths(before), ...rulePaths(after)]);
      this.emit(reason);
      return this.layerInfo(after);
    });
  }

  mapPath(name: string, original: string, destination: string): Promise<LayerInfo> {
    const o = this.viewPathArg(original, 'ORIGINAL');
    let d: string;
    try {
      d = normalizeLayerPath(destination);
    } catch (e) {
      return Promise.reject(new StrataError('E_MAPPING_ESCAPE', `DESTINATION ${destination}: ${(e as Error).message}`, 'Give a path inside the layer, relative to its files.'));
    }
    return this.editLayer(name, (s) => {
      s.mappings = s.mappings.filter((m) => m.original !== o);
      s.mappings.push({ original: o, destination: d === '' ? '/' : d });
      return s;
    }, 'layer-changed');
  }

  unmapPath(name: string, original: string): Promise<LayerInfo> {
    const o = this.viewPathArg(original, 'ORIGINAL');
    return this.editLayer(name, (s) => {
      if (!s.mappings.some((m) => m.original === o)) {
        throw new StrataError('E_MAPPING_UNKNOWN', `layer "${name}" has no mapping for ${o}`, `See its mappings with "strata layer show ${name}".`);
      }
      s.mappings = s.mappings.filter((m) => m.original !== o);
      return s;
    }, 'layer-changed');
  }

  addExclude(name: string, p: string): Promise<LayerInfo> {
    const v = this.viewPathArg(p, 'PATH');
    return this.editLayer(name, (s) => ({ ...s, excludes: s.excludes.includes(v) ? s.excludes : [...s.excludes, v] }), 'layer-changed');
  }

  addDelete(name: string, p: string): Promise<LayerInfo> {
    const v = this.viewPathArg(p, 'PATH');
    return this.editLayer(name, (s) => ({ ...s, deletes: s.deletes.includes(v) ? s.deletes : [...s.deletes, v] }), 'layer-changed');
  }

  /** `spec` is unchecked: saving checks it as layer.json and names the field. */
  updateLayer(name: string, spec: Record<string, unknown>): Promise<LayerInfo> {
    if (spec.name !== name) {
      return Promise.reject(new StrataError('E_LAYER_INVALID', `renaming "${name}" to "${String(spec.name)}" is not supported yet`, 'Export the layer and import it under the new name.'));
    }
    return this.editLayer(name, () => spec as LayerSpec, 'layer-changed');
  }

  validateSpec(spec: unknown): { problems: ReturnType<typeof checkLayerSpec>['problems'] } {
    return { problems: checkLayerSpec(spec, 'layer.json').problems };
  }

  resetLayer(name: string): Promise<LayerInfo> {
    return this.serial(async () => {
      const spec = this.requireLayer(name);
      await this.store.reset(name);
      this.marksOf(name).load();
      if (this.state.active.includes(name)) await this.invalidate(rulePaths(spec));
      this.emit('layer-reset');
      return this.layerInfo(spec);
    });
  }

  exportLayer(name: string, file: string) {
    return this.serial(async () => {
      this.assertOutsideViews(file, 'export file');
      return { file: path.resolve(file), ...(await this.store.exportTo(name, file)) };
    });
  }

  importLayer(file: string, progress?: Progress): Promise<LayerInfo> {
    return this.serial(async () => {
      this.assertOutsideViews(file, 'layer archive');
      const spec = await this.store.importFrom(file, progress);
      await this.reloadLayers();
      this.emit('layer-imported');
      return this.layerInfo(spec);
    });
  }

  private viewPathArg(p: string, what: string): string {
    try {
      return normalizeViewPath(p);
    } catch (e) {
      throw new StrataError('E_BAD_REQUEST', `${what} ${p}: ${(e as PathError).message}`, 'Give a path inside the view, like /bin/node.');
    }
  }

  async status(): Promise<AgentStatus> {
    return {
      protocol: CONTROL_PROTOCOL_VERSION,
      pid: process.pid,
      home: this.opts.home,
      socket: this.opts.socket,
      active: this.effectiveActive(),
      layers: await this.listLayers(),
      views: this.listViews(),
    };
  }
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Does process `pid` still hold `file` (an fd, its executable, or a mapping)? Reads /proc only:
 * link targets are strings, so this never enters the agent's own mount.
 */
function stillHolds(pid: number, file: string): boolean {
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
      } catch {
        /* closed meanwhile */
      }
    }
    if (fs.readlinkSync(`/proc/${pid}/exe`) === file) return true;
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes(` ${file}\n`);
  } catch {
    return false; // the process is gone (or not ours to inspect)
  }
}

/** FUSE reports the calling thread; name its process. */
function readTgid(tid: number): number {
  try {
    const m = /^Tgid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : tid;
  } catch {
    return tid;
  }
}
