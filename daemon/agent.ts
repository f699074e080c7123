/**
 * The agent: the layer store, the catalog of layers, the views, the local switch and the layer
 * commands, sharing one queue so every change runs alone. A change is persisted, applied to every
 * view (kernel caches invalidated) and only then acknowledged and announced to subscribers.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { AgentStatus, CONTROL_PROTOCOL_VERSION, ViewChange } from '../protocol';
import { LayerStore } from './store';
import { LayerCatalog } from './catalog';
import { Layers } from './layers';
import { Queue } from './queue';
import { StateFile } from './statefile';
import { LocalSwitch } from './switch';
import { DEFAULT_WARM, Views, WarmBounds } from './fuse/views';
import { DEFAULT_IMPORT_LIMITS, ImportLimits } from './archive';
import { logFile } from '../shared/client';
import { sweepStaging } from './leftovers';

export interface AgentOptions {
  home: string;
  socket: string;
  log: (msg: string) => void;
  /** Kernel cache timeouts (seconds) for entries and attributes; switches invalidate explicitly. */
  cacheTimeout?: number;
  /** What an imported archive may unpack to (archive.ts). */
  importLimits?: ImportLimits;
  /** How far a new view's server lists its mount first (views.ts). */
  warm?: WarmBounds;
}

export interface ProgressInfo {
  task: string;
  message: string;
  done?: number;
  total?: number;
}

export class Agent {
  readonly store: LayerStore;
  readonly catalog: LayerCatalog;
  readonly views: Views;
  readonly switch: LocalSwitch;
  readonly layers: Layers;
  private readonly state: StateFile;
  private readonly listeners = new Set<(reason: string, change?: ViewChange) => void>();
  private readonly progressListeners = new Set<(p: ProgressInfo) => void>();

  constructor(readonly opts: AgentOptions) {
    makePrivate(opts.home);
    const log = opts.log;
    const emit = (reason: string, change?: ViewChange) => this.emit(reason, change);
    const queue = new Queue();
    const fsname = 'strata-' + crypto.createHash('sha256').update(opts.home).digest('hex').slice(0, 8);
    this.store = new LayerStore(opts.home);
    this.state = new StateFile(path.join(opts.home, 'state.json'), log);
    this.catalog = new LayerCatalog(this.store, () => this.state.data.active, log);
    this.views = new Views({
      home: opts.home,
      runtime: path.dirname(opts.socket),
      logFile: logFile(opts.home),
      fsname,
      cacheTimeout: opts.cacheTimeout ?? 60,
      warm: opts.warm ?? DEFAULT_WARM,
      queue,
      state: this.state,
      catalog: this.catalog,
      emit,
      log,
    });
    this.switch = new LocalSwitch({ queue, state: this.state, catalog: this.catalog, views: this.views, emit, log });
    this.layers = new Layers({
      queue,
      store: this.store,
      catalog: this.catalog,
      views: this.views,
      switch: this.switch,
      emit,
      importLimits: opts.importLimits ?? DEFAULT_IMPORT_LIMITS,
    });
  }

  async start(): Promise<void> {
    await sweepStaging(this.store.root, this.opts.log);
    await this.state.load();
    await this.catalog.reload();
    await this.views.restore();
  }

  /** Unmount every view, or with `keepViews` leave them serving for the next agent. */
  async stop(keepViews = false): Promise<void> {
    await this.views.stop(keepViews);
    await this.state.flush();
  }

  onChange(fn: (reason: string, change?: ViewChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onProgress(fn: (p: ProgressInfo) => void): () => void {
    this.progressListeners.add(fn);
    return () => this.progressListeners.delete(fn);
  }

  progress(task: string, message: string, done?: number, total?: number): void {
    this.opts.log(`[progress] ${task}: ${message}${total ? ` (${done}/${total})` : ''}`);
    for (const fn of this.progressListeners) fn({ task, message, done, total });
  }

  /** Announce a change to subscribers (also used by the team service), with what it changed in the views. */
  emit(reason: string, change?: ViewChange): void {
    for (const fn of this.listeners) {
      try {
        fn(reason, change);
      } catch (e) {
        this.opts.log(`[agent] listener failed: ${(e as Error).message}`);
      }
    }
  }

  async status(): Promise<AgentStatus> {
    return {
      protocol: CONTROL_PROTOCOL_VERSION,
      pid: process.pid,
      home: this.opts.home,
      socket: this.opts.socket,
      active: this.switch.active(),
      layers: await this.layers.list(),
      views: this.views.list(),
    };
  }
}

/**
 * STRATA_HOME holds the layers, state and log of one user: 0700, so its files are private whatever
 * their own modes (the views serve layer files to others with the modes they have).
 */
function makePrivate(home: string): void {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  if (fs.statSync(home).uid === process.getuid?.()) fs.chmodSync(home, 0o700);
}
