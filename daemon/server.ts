/**
 * The control socket: newline-delimited JSON, one request per line, validated by protocol/ before
 * dispatch (connection.ts reads the lines, within limits). The socket lives in a 0700 directory and
 * is itself 0600.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { Method, Params, Request, Result, checkRequest } from '../protocol';
import type { ViewChange } from '../protocol';
import { CONTROL_LIMITS, Connection, Shared } from './connection';
import { Agent } from './agent';
import { TeamService } from './team/service';
import { StrataError, toErrorInfo } from '../shared/errors';
import { checkRuntimeDir } from '../shared/paths';

type SwitchResult = { active: string[]; decision?: string };

type Handler<M extends Method> = (p: Params<M>, conn: Connection) => Promise<Result<M>> | Result<M>;

export class ControlServer {
  private server: net.Server | null = null;
  private readonly shared: Shared;
  private stopHandler: (keepViews: boolean) => void = () => {};
  private handlers: { [M in Method]: Handler<M> };

  constructor(
    private readonly agent: Agent,
    private readonly team: TeamService,
    private readonly socketPath: string,
    private readonly log: (m: string) => void,
  ) {
    this.shared = { conns: new Set(), partial: 0, limits: CONTROL_LIMITS, handle: (c, l) => this.handleLine(c, l), log };
    const a = agent;
    this.handlers = {
      status: () => a.status(),
      'layer.list': () => a.layers.list(),
      'layer.show': (p) => a.layers.show(p.name),
      'layer.create': (p) => a.layers.create(p, (m, done, total) => a.progress(`create ${p.name}`, m, done, total)),
      'layer.rm': (p) => a.layers.remove(p.name),
      'layer.map': (p) => a.layers.map(p.name, p.original, p.destination),
      'layer.unmap': (p) => a.layers.unmap(p.name, p.original),
      'layer.exclude': (p) => a.layers.addExclude(p.name, p.path),
      'layer.hide': (p) => a.layers.addDeleteEntry(p.name, p.path),
      'layer.update': (p) => a.layers.update(p.name, p.spec),
      'layer.validate': (p) => a.layers.validate(p.spec),
      'layer.reset': (p) => a.layers.reset(p.name),
      'layer.export': (p) => a.layers.exportTo(p.name, p.file, (m, done, total) => a.progress(`export ${p.name}`, m, done, total)),
      'layer.import': (p) => a.layers.importFrom(p.file, (m) => a.progress(`import ${path.basename(p.file)}`, m)),
      'view.add': (p) => a.views.add(p.base, p.at, p.warm ?? true),
      'view.list': () => a.views.list(),
      'view.rm': (p) => a.views.remove(p.base),
      activate: (p) => this.activate(p),
      deactivate: (p) => this.deactivate(p),
      swap: (p) => this.swap(p),
      'team.join': (p) => team.join(p),
      'team.leave': () => team.leave(),
      'team.status': () => team.status(),
      'team.history': () => team.history(),
      'team.revert': (p) => team.revert(p.id),
      'team.hold': (p) => team.hold(p.name, p.hold),
      'team.reload': (p) => team.reload(p),
      'team.prune': (p) => team.prune(p.dryRun ?? false),
      subscribe: (_p, conn) => {
        conn.subscribed = true;
        return a.status();
      },
      'agent.stop': (p) => {
        setImmediate(() => this.stopHandler(p.keepViews === true));
        return { stopping: true };
      },
    };
    agent.onChange((reason, change) => void this.broadcast(reason, change));
    agent.onProgress((p) => {
      for (const c of this.shared.conns) if (c.subscribed) c.send({ event: 'progress', ...p });
    });
  }

  // ---- switches: personal layers go to the local switch, team layers to the team, which applies
  // them through the same switch. A request naming both switches the personal ones first.

  private async activate(p: Params<'activate'>): Promise<SwitchResult> {
    const { team, personal } = this.split(p.names);
    let result: SwitchResult = { active: this.agent.switch.active() };
    if (personal.length) result = await this.agent.switch.activate(personal);
    if (team.length) result = await this.team.switchTeam({ activate: team }, { whenIdle: p.whenIdle, timeoutMs: p.timeoutMs });
    return result;
  }

  private async deactivate(p: Params<'deactivate'>): Promise<SwitchResult> {
    const { team, personal } = this.split(p.names);
    this.refuseInactive(p.names, team.length > 0);
    let result: SwitchResult = { active: this.agent.switch.active() };
    if (personal.length) result = await this.agent.switch.deactivate(personal, p.force ?? false);
    if (team.length) result = await this.team.switchTeam({ deactivate: team });
    else if (personal.length) {
      await this.team.followAgain(); // a team layer the personal ones held comes back to the team's decision
      result = { active: this.agent.switch.active() };
    }
    return result;
  }

  private async swap(p: Params<'swap'>): Promise<SwitchResult> {
    if (p.old === p.new) {
      throw new StrataError('E_BAD_REQUEST', `cannot swap "${p.old}" for itself`, 'Name the layer to replace it with.');
    }
    const isTeam = this.team.followsTeam(p.old);
    if (isTeam !== this.team.followsTeam(p.new)) {
      throw new StrataError(
        'E_BAD_REQUEST',
        `cannot swap team layer and personal layer (${p.old} → ${p.new}) in one step`,
        'Use activate and deactivate.',
      );
    }
    if (isTeam) return this.team.switchTeam({ swap: [p.old, p.new] });
    const result = await this.agent.switch.swap(p.old, p.new, p.force ?? false);
    await this.team.followAgain(); // the old one may have held a team layer it required
    return { ...result, active: this.agent.switch.active() };
  }

  /** Deactivating a layer that is not active changes nothing: say so (before anything switches). */
  private refuseInactive(names: string[], withTeam: boolean): void {
    const teamActive = withTeam ? (this.team.status().desired ?? []) : [];
    const inactive = names.filter((n) => !this.agent.switch.isActive(n) && !teamActive.includes(n));
    for (const n of inactive) this.agent.catalog.require(n); // a name that is no layer stays E_LAYER_UNKNOWN
    if (inactive.length) {
      const active = this.agent.switch.active();
      throw new StrataError(
        'E_LAYER_INACTIVE',
        inactive.length === 1
          ? `layer "${inactive[0]}" is not active`
          : `layers ${inactive.map((n) => `"${n}"`).join(', ')} are not active`,
        `Nothing was changed; active: ${active.join(', ') || '(none)'}.`,
      );
    }
  }

  private split(names: string[]): { team: string[]; personal: string[] } {
    return { team: names.filter((n) => this.team.followsTeam(n)), personal: names.filter((n) => !this.team.followsTeam(n)) };
  }

  onStop(fn: (keepViews: boolean) => void): void {
    this.stopHandler = fn;
  }

  /** Fail when another agent serves this home; remove a socket left by a killed one. */
  async claim(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chmodSync(dir, 0o700); // whatever the umask
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // One that was there already may be another user's, made to catch our clients.
    checkRuntimeDir(dir);
    if (fs.existsSync(this.socketPath)) {
      if (await isAlive(this.socketPath)) {
        throw new Error(`another agent is already serving ${this.socketPath}`);
      }
      fs.unlinkSync(this.socketPath);
    }
  }

  async listen(): Promise<void> {
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    const old = process.umask(0o177);
    try {
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(this.socketPath, () => res());
      });
    } finally {
      process.umask(old);
    }
    fs.chmodSync(this.socketPath, 0o600);
  }

  close(): void {
    for (const c of this.shared.conns) c.socket.destroy();
    this.server?.close();
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      /* already gone */
    }
  }

  private accept(socket: net.Socket): void {
    new Connection(socket, this.shared);
  }

  private async handleLine(conn: Connection, line: string): Promise<void> {
    const checked = checkRequest(line);
    if (!checked.ok) {
      conn.send({ id: checked.id ?? -1, ok: false, error: checked.error });
      return;
    }
    const req: Request = checked.value;
    try {
      const handler = this.handlers[req.method] as Handler<Method>;
      const result = await handler(req.params, conn);
      conn.send({ id: req.id, ok: true, result });
    } catch (e) {
      const info = toErrorInfo(e);
      if (info.code === 'E_INTERNAL') this.log(`[control] ${req.method} failed: ${(e as Error).stack ?? e}`);
      conn.send({ id: req.id, ok: false, error: info });
    }
  }

  private async broadcast(reason: string, change?: ViewChange): Promise<void> {
    const subs = [...this.shared.conns].filter((c) => c.subscribed);
    if (!subs.length) return;
    try {
      const status = await this.agent.status();
      for (const c of subs) c.send({ event: 'state', reason, status, ...(change ? { change } : {}) });
    } catch (e) {
      this.log(`[control] could not build status for subscribers: ${(e as Error).message}`);
    }
  }
}

function isAlive(socketPath: string): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}
