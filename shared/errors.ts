import { ErrorCode, ErrorInfo } from '../protocol';

/** An error with a stable code, a message naming what failed, and a hint saying what to do. */
export class StrataError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
  toInfo(): ErrorInfo {
    return this.hint ? { code: this.code, message: this.message, hint: this.hint } : { code: this.code, message: this.message };
  }
}

/** Turn anything thrown into ErrorInfo; unexpected errors keep their message under E_INTERNAL/E_IO. */
export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof StrataError) return e.toInfo();
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.syscall === 'string') {
    return { code: 'E_IO', message: err.message };
  }
  return { code: 'E_INTERNAL', message: err && err.message ? err.message : String(e) };
}
