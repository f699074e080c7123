/**
 * The team secret: kept in VS Code's SecretStorage, handed to the agent as a file (its API takes a
 * path, and a secret never goes on a command line). The file is created 0600 with O_EXCL under the
 * extension's private storage and removed as soon as the agent has read it.
 */
import * as crypto from 'crypto';
import * as fsp from 'fs/promises';
import * as path from 'path';

export async function withSecretFile<T>(dir: string, secret: string, use: (file: string) => Promise<T>): Promise<T> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `team-${crypto.randomBytes(8).toString('hex')}.secret`);
  const fh = await fsp.open(file, 'wx', 0o600);
  try {
    await fh.writeFile(secret, 'utf8');
  } finally {
    await fh.close();
  }
  try {
    return await use(file);
  } finally {
    await fsp.rm(file, { force: true });
  }
}
