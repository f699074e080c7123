/**
 * The layer store under $STRATA_HOME/layers: one folder per layer holding layer.json, `files/`
 * (the read-only sublayer) and `writable/files/` (the writable sublayer; reset discards it).
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import * as crypto from 'crypto';
import { LAYER_FORMAT, LAYER_NAME_RE, LayerSpec, Mapping } from '../protocol';
import { StrataError } from '../shared/errors';
import { checkLayerSpec, destRel, parseLayerJson } from './layerspec';
import { writeFileAtomic } from './atomic';
import { DEFAULT_IMPORT_LIMITS, ImportLimits, tarFailed, unpackLayerArchive } from './archive';
import { captureInto, captureSource, packLayer, requireDestinations } from './capture';

/** A step's message, with bytes done of a total when known. */
export type Progress = (message: string, done?: number, total?: number) => void;

/** A layer made in a staging folder of the store, waiting to be installed under its name. */
export interface Staged {
  dir: string;
  spec: LayerSpec;
  /** What to do when the name is taken by then. */
  hint: string;
  /** The progress message once installed. */
  done: string;
}

export class LayerStore {
  readonly root: string;

  constructor(home: string) {
    this.root = path.join(home, 'layers');
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  dir(name: string): string {
    return path.join(this.root, name);
  }
  filesDir(name: string): string {
    return path.join(this.root, name, 'files');
  }
  writableDir(name: string): string {
    return path.join(this.root, name, 'writable', 'files');
  }
  /** The view server's record of the writable sublayer (whiteouts, opaque folders, copy-up work); reset discards it with it. */
  metaDir(name: string): string {
    return path.join(this.root, name, 'writable', 'meta');
  }
  specFile(name: string): string {
    return path.join(this.root, name, 'layer.json');
  }

  static checkName(name: string): void {
    if (!LAYER_NAME_RE.test(name)) {
      throw new StrataError(
        'E_LAYER_INVALID',
        `layer name "${name}" is not valid`,
        'Use letters, digits, ".", "_", "+" and "-" (up to 64 characters).',
      );
    }
  }

  exists(name: string): boolean {
    return LAYER_NAME_RE.test(name) && fs.existsSync(this.specFile(name));
  }

  /** Read and validate one layer; E_LAYER_UNKNOWN when missing, E_LAYER_INVALID when malformed. */
  async get(name: string): Promise<LayerSpec> {
    if (!this.exists(name)) {
      throw new StrataError(
        'E_LAYER_UNKNOWN',
        `no layer named "${name}" in ${this.root}`,
        'Run "strata layer list" to see the layers, or create one with "strata layer create".',
      );
    }
    const file = this.specFile(name);
    const spec = parseLayerJson(await fsp.readFile(file, 'utf8'), file);
    if (spec.name !== name) {
      throw new StrataError(
        'E_LAYER_INVALID',
        `${file}: name: "${spec.name}" does not match its folder "${name}"`,
        'Rename the folder or fix the name field.',
      );
    }
    // Checked on every read, not only on save and import: layer.json may be edited by hand.
    this.checkFiles(spec);
    return spec;
  }

  /** The layer's files are a real folder and its destinations stay inside it (they may change without layer.json). */
  checkFiles(spec: LayerSpec): void {
    if (isRealDir(this.filesDir(spec.name), this.dir(spec.name), 'E_LAYER_INVALID')) this.checkDestinations(spec);
  }

  /** The layers' folder names (a folder may lack a valid layer.json). Synchronous, like specKey: on a switch's path. */
  names(): string[] {
    return fs
      .readdirSync(this.root)
      .filter((n) => !n.startsWith('.'))
      .sort();
  }

  /** What identifies this version of a layer's layer.json (any write changes it), or null when there is none. */
  specKey(name: string): string | null {
    const st = fs.statSync(this.specFile(name), { bigint: true, throwIfNoEntry: false });
    return st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : null;
  }

  /** Refuse destinations that reach outside the layer through a symlink in its files (synchronous: a switch checks them). */
  checkDestinations(spec: LayerSpec, filesRoot = this.filesDir(spec.name)): void {
    const realRoot = fs.realpathSync.native(filesRoot);
    for (const [i, m] of spec.mappings.entries()) {
      let probe = path.join(filesRoot, destRel(m));
      // The destination may not exist yet; check the longest existing prefix.
      for (;;) {
        try {
          const real = fs.realpathSync.native(probe);
          if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
            throw new StrataError(
              'E_MAPPING_ESCAPE',
              `${this.specFile(spec.name)}: mappings[${i}].destination: "${m.destination}" leads outside the layer through a symlink (to ${real})`,
              'Point the mapping at a real folder inside the layer.',
            );
          }
          break;
        } catch (e) {
          if (e instanceof StrataError) throw e;
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          const up = path.dirname(probe);
          if (up === probe || probe === filesRoot) break;
          probe = up;
        }
      }
    }
  }

  /** Validate and write layer.json atomically. */
  async save(spec: LayerSpec): Promise<LayerSpec> {
    const file = this.specFile(spec.name);
    const { spec: clean, problems } = checkLayerSpec(spec, file);
    if (!clean) throw new StrataError(problems[0].code, problems.map((p) => p.message).join('; '), 'Nothing was changed.');
    this.checkDestinations(clean);
    await writeFileAtomic(file, JSON.stringify(clean, null, 2) + '\n');
    return clean;
  }

  /** Copy a folder into a new layer: the slow part, in a staging folder (see install). */
  async stageCreate(
    name: string,
    from: string,
    opts: { priority?: number; version?: string; description?: string; mappings?: Mapping[]; requires?: string[] },
    progress: Progress = () => {},
  ): Promise<Staged> {
    LayerStore.checkName(name);
    this.refuseExisting(name, `Remove it with "strata layer rm ${name}" or pick another name.`);
    const src = path.resolve(from);
    const source = await captureSource(src);
    const tmp = await fsp.mkdtemp(path.join(this.root, '.create-'));
    try {
      const { root } = await captureInto(source, path.join(tmp, 'files'), progress);
      await fsp.mkdir(path.join(tmp, 'writable', 'files'), { recursive: true });
      const spec: LayerSpec = {
        format: LAYER_FORMAT,
        name,
        version: opts.version ?? '1.0.0',
        description: opts.description ?? `captured from ${src}`,
        priority: opts.priority ?? 100,
        mappings: opts.mappings ?? [{ original: '/', destination: '/' }],
        excludes: [],
        deletes: [],
        requires: opts.requires,
      };
      const { spec: clean, problems } = checkLayerSpec(spec, `${name}/layer.json`);
      if (!clean) throw new StrataError(problems[0].code, problems[0].message);
      await requireDestinations(clean.mappings, path.join(tmp, 'files'), root);
      this.checkDestinations(clean, path.join(tmp, 'files'));
      await writeFileAtomic(path.join(tmp, 'layer.json'), JSON.stringify(clean, null, 2) + '\n');
      return {
        dir: tmp,
        spec: clean,
        hint: `Remove it with "strata layer rm ${name}" or pick another name.`,
        done: `layer ${name} created`,
      };
    } catch (e) {
      await this.discard(tmp);
      throw e;
    }
  }

  /** Move a staged layer into the store (quick); the staging folder is gone either way. */
  async install(staged: Staged, progress: Progress = () => {}): Promise<LayerSpec> {
    try {
      this.refuseExisting(staged.spec.name, staged.hint);
      await fsp.rename(staged.dir, this.dir(staged.spec.name));
    } catch (e) {
      await this.discard(staged.dir);
      throw e;
    }
    progress(staged.done);
    return staged.spec;
  }

  discard(dir: string): Promise<void> {
    return fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
  }

  async create(
    name: string,
    from: string,
    opts: { priority?: number; version?: string; description?: string },
    progress: Progress = () => {},
  ): Promise<LayerSpec> {
    return this.install(await this.stageCreate(name, from, opts, progress), progress);
  }

  private refuseExisting(name: string, hint: string): void {
    if (this.exists(name)) throw new StrataError('E_LAYER_EXISTS', `a layer named "${name}" already exists`, hint);
  }

  async remove(name: string): Promise<void> {
    await this.get(name).catch((e) => {
      if (e instanceof StrataError && e.code === 'E_LAYER_UNKNOWN') throw e;
    });
    // Move aside first so a half-removed layer never looks valid.
    const trash = path.join(this.root, `.rm-${name}-${process.pid}-${Date.now()}`);
    await fsp.rename(this.dir(name), trash);
    await fsp.rm(trash, { recursive: true, force: true });
  }

  /** Discard the writable sublayer (everything tools wrote while the layer was active). */
  async reset(name: string): Promise<void> {
    await this.get(name);
    const w = path.join(this.dir(name), 'writable');
    const trash = path.join(this.dir(name), `.writable-old-${Date.now()}`);
    await fsp.rename(w, trash).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    });
    await fsp.mkdir(path.join(w, 'files'), { recursive: true });
    await fsp.rm(trash, { recursive: true, force: true });
  }

  async writableBytes(name: string): Promise<number> {
    let total = 0;
    // Names as bytes: a file written through the view may have a name that is not UTF-8.
    const walk = async (d: Buffer): Promise<void> => {
      let ents: fs.Dirent<Buffer>[];
      try {
        ents = await fsp.readdir(d, { withFileTypes: true, encoding: 'buffer' });
      } catch {
        return;
      }
      for (const e of ents) {
        const p = Buffer.concat([d, Buffer.from('/'), e.name]);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) total += (await fsp.lstat(p).catch(() => ({ size: 0 }))).size;
      }
    };
    await walk(Buffer.from(this.writableDir(name)));
    return total;
  }

  /** Export layer.json and the read-only files (not the writable sublayer) as a .tar.gz. */
  async exportTo(name: string, file: string, progress: Progress = () => {}): Promise<{ bytes: number; sha256: string }> {
    await this.get(name);
    const out = path.resolve(file);
    const tmp = `${out}.partial-${process.pid}`;
    try {
      await packLayer(this.dir(name), tmp, progress);
      await fsp.rename(tmp, out);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      const err = e as Error & { stderr?: string };
      const failed = tarFailed(`exporting ${name} to ${out}`, err.stderr || err.message);
      if (failed.code === 'E_IO') throw failed;
      throw new StrataError('E_ARCHIVE', failed.message, 'Check that the target folder exists and is writable.');
    }
    return { bytes: (await fsp.stat(out)).size, sha256: await sha256File(out) };
  }

  /**
   * Unpack an exported archive into a staging folder and validate it (see archive.ts and install);
   * nothing appears in the store until install. `verify` may refuse the unpacked layer (its folder)
   * by throwing.
   */
  async stageImport(
    file: string,
    limits: ImportLimits = DEFAULT_IMPORT_LIMITS,
    progress: Progress = () => {},
    verify?: (dir: string, spec: LayerSpec) => Promise<void>,
  ): Promise<Staged> {
    const src = path.resolve(file);
    await fsp.stat(src).catch(() => {
      throw new StrataError('E_ARCHIVE', `${src}: no such file`, 'Give the path of a file made by "strata layer export".');
    });
    const tmp = await fsp.mkdtemp(path.join(this.root, '.import-'));
    try {
      progress(`unpacking ${src}`);
      await unpackLayerArchive(src, tmp, limits);
      const specFile = path.join(tmp, 'layer.json');
      const spec = parseLayerJson(await fsp.readFile(specFile, 'utf8'), `${src}:layer.json`);
      if (!isRealDir(path.join(tmp, 'files'), src, 'E_ARCHIVE')) await fsp.mkdir(path.join(tmp, 'files'));
      this.checkDestinations(spec, path.join(tmp, 'files'));
      const hint = `Remove it first with "strata layer rm ${spec.name}".`;
      this.refuseExisting(spec.name, hint);
      await fsp.mkdir(path.join(tmp, 'writable', 'files'), { recursive: true });
      await writeFileAtomic(specFile, JSON.stringify(spec, null, 2) + '\n');
      if (verify) await verify(tmp, spec);
      return { dir: tmp, spec, hint, done: `layer ${spec.name} imported` };
    } catch (e) {
      await this.discard(tmp);
      throw e;
    }
  }

  async importFrom(file: string, progress: Progress = () => {}, limits: ImportLimits = DEFAULT_IMPORT_LIMITS): Promise<LayerSpec> {
    return this.install(await this.stageImport(file, limits, progress), progress);
  }
}

/**
 * Is `dir` (a layer's files/) a real folder? False when absent; `code` when it is anything else,
 * a symlink above all: the whole layer would lead outside the store.
 */
function isRealDir(dir: string, where: string, code: 'E_ARCHIVE' | 'E_LAYER_INVALID'): boolean {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!st) return false;
  if (st.isDirectory()) return true;
  throw new StrataError(
    code,
    `${where}: files is ${st.isSymbolicLink() ? 'a symlink' : 'not a folder'}; a layer's files must be a real folder`,
    code === 'E_ARCHIVE' ? 'Nothing was imported.' : 'The layer is not served: replace files with a real folder.',
  );
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
