/**
 * Typed wrapper around the strata_fuse native addon (libfuse 3, high-level API).
 *
 * Handlers run on the JS thread; every handler gets a `reply` callback that may
 * be called synchronously or later, once (further calls are ignored). A handler
 * that throws answers EIO. read/write/flush/fsync never reach JS: they run in C
 * on the fd that `open`/`create` replied with, so those must be real OS fds
 * (e.g. from fs.open), and `release` must close them.
 *
 * Never touch the mount itself from the serving process (no fs calls on paths
 * under the mountpoint): the request would need this very thread to answer it.
 */
import * as path from 'path';

/** [mode, uid, gid, size, nlink, ino, rdev, blksize, blocks, atimeSec, atimeNsec, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec] (numbers or bigints) */
export type StatTuple = Array<number | bigint>;
/** errno: 0 = ok, positive errno on failure (e.g. 2 = ENOENT). */
export type Reply = (errno: number) => void;

export interface FuseHandlers {
  /** path is null (and fd >= 0) for fstat on an open file: answer from the fd. */
  getattr(path: string | null, fd: number, reply: (errno: number, st?: StatTuple) => void): void;
  access(path: string, mask: number, reply: Reply): void;
  /** names exclude . and .. ; modes (optional) give st_mode per name, for d_type. */
  readdir(path: string, reply: (errno: number, names?: string[], modes?: number[]) => void): void;
  open(path: string, flags: number, pid: number, reply: (errno: number, fd?: number) => void): void;
  create(path: string, mode: number, flags: number, pid: number, reply: (errno: number, fd?: number) => void): void;
  /** JS closes the fd. path is null for files unlinked while open. */
  release(path: string | null, fd: number, reply: Reply): void;
  /** fd is -1 unless ftruncate; path is null when fd >= 0. */
  truncate(path: string | null, size: number, fd: number, reply: Reply): void;
  unlink(path: string, reply: Reply): void;
  rmdir(path: string, reply: Reply): void;
  mkdir(path: string, mode: number, reply: Reply): void;
  /** flags: 0, RENAME_NOREPLACE (1) or RENAME_EXCHANGE (2). */
  rename(from: string, to: string, flags: number, reply: Reply): void;
  symlink(target: string, path: string, reply: Reply): void;
  readlink(path: string, reply: (errno: number, target?: string) => void): void;
  link(from: string, to: string, reply: Reply): void;
  chmod(path: string | null, mode: number, fd: number, reply: Reply): void;
  /** uid/gid -1 = leave unchanged. */
  chown(path: string | null, uid: number, gid: number, fd: number, reply: Reply): void;
  /** nsec may be UTIME_NOW / UTIME_OMIT. */
  utimens(path: string | null, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, fd: number, reply: Reply): void;
  /** st: [bsize, frsize, blocks, bfree, bavail, files, ffree, namemax] */
  statfs(path: string, reply: (errno: number, st?: number[]) => void): void;
}

export interface MountOptions {
  fsname: string;
  subtype?: string;
  allowOther?: boolean;
  debug?: boolean;
  /** seconds, may be fractional */
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
  kernelCache?: boolean;
  autoCache?: boolean;
  /** default true */
  useIno?: boolean;
  /** default 30000; a FUSE request not answered in time fails with ETIMEDOUT */
  requestTimeoutMs?: number;
  /** libfuse worker threads, default 16 */
  maxThreads?: number;
  /** fusermount3 helper unmounts if this process dies; default true */
  autoUnmount?: boolean;
  /** let the kernel check permissions from st_mode (then `access` is not called); default false */
  defaultPermissions?: boolean;
  /** the loop ended without unmount() (e.g. unmounted from outside) */
  onExit?: (reason: string) => void;
  /** a handler threw or its returned promise rejected (the request got EIO) */
  onHandlerError?: (op: keyof FuseHandlers, err: unknown) => void;
}

export interface FuseMount {
  readonly mountpoint: string;
  /** fuse_invalidate_path for each path, on a worker thread; resolves with how many were known to the kernel cache. */
  invalidate(paths: string[]): Promise<number>;
  /** Detach the mount, stop the loop, destroy. Idempotent. */
  unmount(): Promise<void>;
}

interface NativeHandle {
  readonly __strataFuseHandle: unique symbol;
}

interface NativeAddon {
  mount(mountpoint: string, handlers: FuseHandlers, options: MountOptions): NativeHandle;
  invalidate(handle: NativeHandle, paths: string[]): Promise<number>;
  unmount(handle: NativeHandle): Promise<void>;
  UTIME_NOW: number;
  UTIME_OMIT: number;
}

const ADDON = 'strata_fuse.node';
let addon: NativeAddon | undefined;
let loadError: string | undefined;

function candidates(): string[] {
  const list: string[] = [];
  const env = process.env.STRATA_NATIVE;
  if (env) list.push(env);
  // dist/*.js, dist/test/*/*.js and unbundled sources all find the package's build/ above them.
  for (let up = 1; up <= 4; up++) list.push(path.join(__dirname, ...Array<string>(up).fill('..'), 'build', 'Release', ADDON));
  return list;
}

function load(): NativeAddon {
  if (addon) return addon;
  if (loadError === undefined) {
    const errors: string[] = [];
    for (const file of candidates()) {
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- the addon's path is found at run time
        addon = require(file) as NativeAddon;
        return addon;
      } catch (err) {
        errors.push(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    loadError =
      `the native FUSE addon (${ADDON}) could not be loaded; build it with \`npm ci\` ` +
      `(needs libfuse3-dev, pkg-config and a C compiler) or set STRATA_NATIVE. Tried: ${errors.join('; ')}`;
  }
  throw new Error(loadError);
}

export function nativeAvailable(): { ok: true } | { ok: false; error: string } {
  try {
    load();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Raw tv_nsec values for utimens (see utimensat(2)). */
export const UTIME_NOW: number = (1 << 30) - 1;
export const UTIME_OMIT: number = (1 << 30) - 2;

/** Mountpoints served by this process: mounting inside one would deadlock (mount() stats the path). */
const active = new Set<string>();

class Mount implements FuseMount {
  private unmounting: Promise<void> | undefined;

  constructor(
    readonly mountpoint: string,
    private readonly native: NativeAddon,
    private readonly handle: NativeHandle,
  ) {}

  invalidate(paths: string[]): Promise<number> {
    if (this.unmounting || paths.length === 0) return Promise.resolve(0);
    return this.native.invalidate(this.handle, paths);
  }

  unmount(): Promise<void> {
    this.unmounting ??= this.native.unmount(this.handle).finally(() => active.delete(this.mountpoint));
    return this.unmounting;
  }

  /** The loop ended on its own (e.g. unmounted from outside). */
  ended(): void {
    if (!this.unmounting) active.delete(this.mountpoint);
  }
}

const EIO = 5;

/** Handlers that throw, or are async and reject, answer EIO (and are reported). */
function guard(handlers: FuseHandlers, onError?: (op: keyof FuseHandlers, err: unknown) => void): FuseHandlers {
  const out: Record<string, unknown> = {};
  for (const op of Object.keys(handlers) as Array<keyof FuseHandlers>) {
    const fn = handlers[op] as unknown;
    if (typeof fn !== 'function') continue;
    out[op] = (...args: unknown[]): void => {
      const reply = args[args.length - 1] as (errno: number) => void;
      const fail = (err: unknown): void => {
        reply(EIO);
        onError?.(op, err);
      };
      try {
        const ret: unknown = (fn as (...a: unknown[]) => unknown).apply(handlers, args);
        if (ret && typeof (ret as PromiseLike<unknown>).then === 'function') (ret as PromiseLike<unknown>).then(undefined, fail);
      } catch (err) {
        fail(err);
      }
    };
  }
  return out as unknown as FuseHandlers;
}

export function mount(mountpoint: string, handlers: FuseHandlers, options: MountOptions): FuseMount {
  const native = load();
  const abs = path.resolve(mountpoint);
  for (const mp of active) {
    if (abs === mp || abs.startsWith(mp.endsWith('/') ? mp : mp + '/')) {
      throw new Error(`strata_fuse: cannot mount at ${abs}: it is inside ${mp}, served by this process`);
    }
  }
  const onExit = options.onExit;
  const opts: MountOptions = {
    ...options,
    onExit: (reason) => {
      m.ended(); // EXIT reaches JS through the callback queue: always after m exists
      onExit?.(reason);
    },
  };
  const m: Mount = new Mount(abs, native, native.mount(abs, guard(handlers, options.onHandlerError), opts));
  active.add(abs);
  return m;
}
