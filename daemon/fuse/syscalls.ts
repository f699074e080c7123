/**
 * The system-call side of the view handlers: errno names and the one conversion of anything thrown
 * to an errno, and promise wrappers for raw fds (the native side reads and writes them directly).
 */
import * as fs from 'fs';
import { constants as osc } from 'os';

export const errno = osc.errno as Record<string, number>;
const E = (name: string): number => errno[name] ?? errno.EIO;

export class FsErr extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}
export const fail = (name: string): never => {
  throw new FsErr(E(name));
};

/** One errno for anything thrown by a handler. */
export function toErrno(e: unknown): number {
  if (e instanceof FsErr) return e.errno;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && errno[code]) return errno[code];
  return errno.EIO;
}

export function openFd(p: string, flags: number, mode = 0o666): Promise<number> {
  return new Promise((res, rej) => fs.open(p, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}
export function closeFd(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.close(fd, (e) => (e ? rej(e) : res())));
}
export function ftruncateFd(fd: number, size: number): Promise<void> {
  return new Promise((res, rej) => fs.ftruncate(fd, size, (e) => (e ? rej(e) : res())));
}
export function fchmodFd(fd: number, mode: number): Promise<void> {
  return new Promise((res, rej) => fs.fchmod(fd, mode, (e) => (e ? rej(e) : res())));
}
export function fchownFd(fd: number, uid: number, gid: number): Promise<void> {
  return new Promise((res, rej) => fs.fchown(fd, uid, gid, (e) => (e ? rej(e) : res())));
}
export function futimesFd(fd: number, at: number, mt: number): Promise<void> {
  return new Promise((res, rej) => fs.futimes(fd, at, mt, (e) => (e ? rej(e) : res())));
}
export function fstatBig(fd: number): Promise<fs.BigIntStats> {
  return new Promise((res, rej) => fs.fstat(fd, { bigint: true }, (e, st) => (e ? rej(e) : res(st))));
}
