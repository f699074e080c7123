/**
 * The content digest of a layer, as written in strata.team.json: "sha256:<hex>" over layer.json
 * (parsed, re-serialized with sorted keys) and a sorted walk of files/ (the read-only sublayer; the
 * writable sublayer is each machine's own). Each entry contributes its relative path, type (f, d,
 * l), permission bits, and the sha256 of a file's content or a symlink's target. Independent of
 * mtime, owner, inode and readdir order, so two copies of one layer agree.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

const DOMAIN = 'strata-layer-digest-v1';

/** JSON with object keys sorted at every level. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

async function fileSha256(p: Buffer): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function digestLayerDir(layerDir: string): Promise<string> {
  const h = crypto.createHash('sha256');
  const put = (field: string | Buffer): void => {
    const b = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len);
    h.update(b);
  };
  put(DOMAIN);

  const specFile = path.join(layerDir, 'layer.json');
  let spec: unknown;
  try {
    spec = JSON.parse(await fsp.readFile(specFile, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(
      err.code
        ? `cannot digest layer ${layerDir}: ${specFile}: ${err.message}`
        : `cannot digest layer ${layerDir}: ${specFile} is not valid JSON`,
      { cause: e },
    );
  }
  put('layer.json');
  put(canonicalJson(spec));

  const root = Buffer.from(path.join(layerDir, 'files'));
  const st = await fsp.lstat(root).catch((e: Error) => {
    throw new Error(`cannot digest layer ${layerDir}: ${e.message}`);
  });
  if (!st.isDirectory()) throw new Error(`cannot digest layer ${layerDir}: files is not a directory`);
  put('files');

  // Buffers throughout: names need not be UTF-8, and byte order is the same everywhere.
  const walk = async (dir: Buffer, rel: Buffer | null): Promise<void> => {
    const names = await fsp.readdir(dir, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    for (const name of names) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const relPath = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const s = await fsp.lstat(full);
      const mode = (s.mode & 0o7777).toString(8);
      if (s.isFile()) {
        put(relPath);
        put('f');
        put(mode);
        put(await fileSha256(full));
      } else if (s.isSymbolicLink()) {
        put(relPath);
        put('l');
        put(mode);
        put(await fsp.readlink(full, { encoding: 'buffer' }));
      } else if (s.isDirectory()) {
        put(relPath);
        put('d');
        put(mode);
        put('');
        await walk(full, relPath);
      } else {
        throw new Error(`cannot digest layer ${layerDir}: files/${relPath.toString()} is not a file, directory or symlink`);
      }
    }
  };
  await walk(root, null);
  return `sha256:${h.digest('hex')}`;
}
