/**
 * The layer store under $STRATA_HOME/layers: one folder per layer holding layer.json, `files/`
 * (the read-only sublayer) and `writable/files/` (the writable sublayer; reset discards it).
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import * as crypto from 'crypto';
import { execFile } from 'child_process';
import { promisify } from 'util';
import { LAYER_FORMAT, LAYER_NAME_RE, LayerSpec } from '../protocol';
import { StrataError } from '../shared/errors';
import { checkLayerSpec, destRel, parseLayerJson } from './layerspec';
import { writeFileAtomic } from './atomic';

const run = promisify(execFile);

export type Progress = (message: string) => void;

export class LayerStore {
  readonly root: string;

  constructor(home: string) {
    this.root = path.join(home, 'layers');
    fs.mkdirSync(this.root, { recursive: true, mode: 0o755 });
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
    if (await isRealDir(this.filesDir(name), this.dir(name), 'E_LAYER_INVALID')) await this.checkDestinations(spec);
    return spec;
  }

  /** All layers; malformed ones are returned apart so one bad file never hides the rest. */
  async list(): Promise<{ layers: LayerSpec[]; broken: { name: string; error: StrataError }[] }> {
    const layers: LayerSpec[] = [];
    const broken: { name: string; error: StrataError }[] = [];
    for (const name of (await fsp.readdir(this.root)).sort()) {
      if (name.startsWith('.')) continue;
      try {
        layers.push(await this.get(name));
      } catch (e) {
        broken.push({ name, error: e instanceof StrataError ? e : new StrataError('E_IO', String((e as Error).message)) });
      }
    }
    return { layers, broken };
  }

  /** Refuse destinations that reach outside the layer through a symlink in its files. */
  async checkDestinations(spec: LayerSpec, filesRoot = this.filesDir(spec.name)): Promise<void> {
    const realRoot = await fsp.realpath(filesRoot);
    for (const [i, m] of spec.mappings.entries()) {
      let probe = path.join(filesRoot, destRel(m));
      // The destination may not exist yet; check the longest existing prefix.
      for (;;) {
        try {
          const real = await fsp.realpath(probe);
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
    await this.checkDestinations(clean);
    await writeFileAtomic(file, JSON.stringify(clean, null, 2) + '\n');
    return clean;
  }

  async create(
    name: string,
    from: string,
    opts: { priority?: number; version?: string; description?: string },
    progress: Progress = () => {},
  ): Promise<LayerSpec> {
    LayerStore.checkName(name);
    if (this.exists(name)) {
      throw new StrataError(
        'E_LAYER_EXISTS',
        `a layer named "${name}" already exists`,
        `Remove it with "strata layer rm ${name}" or pick another name.`,
      );
    }
    const src = path.resolve(from);
    const st = await fsp.stat(src).catch(() => null);
    if (!st || !st.isDirectory()) {
      throw new StrataError('E_LAYER_INVALID', `--from ${from}: not a directory`, 'Give the folder that holds the captured toolchain.');
    }
    const tmp = await fsp.mkdtemp(path.join(this.root, '.create-'));
    try {
      progress(`copying ${src} into the layer store`);
      await fsp.mkdir(path.join(tmp, 'files'));
      await run('cp', ['-a', '--', src + '/.', path.join(tmp, 'files')], { maxBuffer: 1 << 20 }).catch((e) => {
        throw new StrataError(
          'E_IO',
          `copying ${src} failed: ${String((e as Error).message).split('\n')[0]}`,
          'Check that the folder is readable and the disk has room.',
        );
      });
      await fsp.mkdir(path.join(tmp, 'writable', 'files'), { recursive: true });
      const spec: LayerSpec = {
        format: LAYER_FORMAT,
        name,
        version: opts.version ?? '1.0.0',
        description: opts.description ?? `captured from ${src}`,
        priority: opts.priority ?? 100,
        mappings: [{ original: '/', destination: '/' }],
        excludes: [],
        deletes: [],
      };
      const { spec: clean, problems } = checkLayerSpec(spec, `${name}/layer.json`);
      if (!clean) throw new StrataError(problems[0].code, problems[0].message);
      await writeFileAtomic(path.join(tmp, 'layer.json'), JSON.stringify(clean, null, 2) + '\n');
      await fsp.rename(tmp, this.dir(name));
      progress(`layer ${name} created`);
      return clean;
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
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
    const walk = async (d: string): Promise<void> => {
      let ents: fs.Dirent[];
      try {
        ents = await fsp.readdir(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) total += (await fsp.lstat(p)).size;
      }
    };
    await walk(this.writableDir(name));
    return total;
  }

  /** Export layer.json and the read-only files (not the writable sublayer) as a .tar.gz. */
  async exportTo(name: string, file: string): Promise<{ bytes: number; sha256: string }> {
    await this.get(name);
    const out = path.resolve(file);
    const tmp = `${out}.partial-${process.pid}`;
    try {
      await run('tar', ['-C', this.dir(name), '-czf', tmp, '--', 'layer.json', 'files'], { maxBuffer: 1 << 20 });
      await fsp.rename(tmp, out);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw new StrataError(
        'E_ARCHIVE',
        `exporting ${name} to ${out} failed: ${(e as Error).message.split('\n')[0]}`,
        'Check that the target folder exists and is writable.',
      );
    }
    return { bytes: (await fsp.stat(out)).size, sha256: await sha256File(out) };
  }

  /**
   * Import an exported archive; validates everything before the layer appears in the store.
   * `verify` may refuse the unpacked layer (its folder, before it moves in) by throwing.
   */
  async importFrom(
    file: string,
    progress: Progress = () => {},
    verify?: (dir: string, spec: LayerSpec) => Promise<void>,
  ): Promise<LayerSpec> {
    const src = path.resolve(file);
    if (!fs.existsSync(src))
      throw new StrataError('E_ARCHIVE', `${src}: no such file`, 'Give the path of a file made by "strata layer export".');
    let listing: string;
    try {
      listing = (await run('tar', ['-tzf', src], { maxBuffer: 64 << 20 })).stdout;
    } catch (e) {
      throw new StrataError(
        'E_ARCHIVE',
        `${src}: not a readable layer archive (${(e as Error).message.split('\n')[0].slice(0, 200)})`,
        'Export the layer again with "strata layer export".',
      );
    }
    for (const entry of listing.split('\n').filter(Boolean)) {
      const clean = entry.replace(/^\.\//, '');
      if (
        clean.startsWith('/') ||
        clean.split('/').includes('..') ||
        !(clean === 'layer.json' || clean === 'files' || clean.startsWith('files/'))
      ) {
        throw new StrataError(
          'E_ARCHIVE',
          `${src}: unexpected entry "${entry}"; a layer archive holds only layer.json and files/`,
          'Nothing was imported.',
        );
      }
    }
    const tmp = await fsp.mkdtemp(path.join(this.root, '.import-'));
    try {
      progress(`unpacking ${src}`);
      await run('tar', ['-xzf', src, '-C', tmp, '--no-same-owner'], { maxBuffer: 1 << 20 });
      const specFile = path.join(tmp, 'layer.json');
      if (!fs.existsSync(specFile)) throw new StrataError('E_ARCHIVE', `${src}: has no layer.json`, 'Nothing was imported.');
      if (!fs.lstatSync(specFile).isFile())
        throw new StrataError('E_ARCHIVE', `${src}: layer.json is not a regular file`, 'Nothing was imported.');
      const spec = parseLayerJson(await fsp.readFile(specFile, 'utf8'), `${src}:layer.json`);
      if (!(await isRealDir(path.join(tmp, 'files'), src, 'E_ARCHIVE'))) await fsp.mkdir(path.join(tmp, 'files'));
      await this.checkDestinations(spec, path.join(tmp, 'files'));
      if (this.exists(spec.name)) {
        throw new StrataError(
          'E_LAYER_EXISTS',
          `a layer named "${spec.name}" already exists`,
          `Remove it first with "strata layer rm ${spec.name}".`,
        );
      }
      await fsp.mkdir(path.join(tmp, 'writable', 'files'), { recursive: true });
      await writeFileAtomic(specFile, JSON.stringify(spec, null, 2) + '\n');
      if (verify) await verify(tmp, spec);
      await fsp.rename(tmp, this.dir(spec.name));
      progress(`layer ${spec.name} imported`);
      return spec;
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
}

/**
 * Is `dir` (a layer's files/) a real folder? False when absent; `code` when it is anything else,
 * a symlink above all: the whole layer would lead outside the store.
 */
async function isRealDir(dir: string, where: string, code: 'E_ARCHIVE' | 'E_LAYER_INVALID'): Promise<boolean> {
  const st = await fsp.lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
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
