/**
 * The agent names the field of every problem ("…/layer.json: mappings[1].destination: reason");
 * the editor shows each under its field. Pure.
 */
import { Problem } from '../../protocol';
import { FieldProblem } from '../../protocol/webview';
import { StrataError } from '../../shared/errors';

const FIELD = /^.*?layer\.json: (\(top level\)|[A-Za-z]+(?:\[\d+\])?(?:\.[A-Za-z]+)?): ([\s\S]*)$/;

export function toFieldProblem(info: Problem): FieldProblem {
  const m = FIELD.exec(info.message);
  const severity = info.severity === 'warning' ? { severity: info.severity } : {};
  if (m) return { field: m[1] === '(top level)' ? '' : m[1], code: info.code, message: m[2], ...severity };
  // The agent refuses renames without naming a field.
  if (/^renaming /.test(info.message)) return { field: 'name', code: info.code, message: info.message };
  return { field: '', code: info.code, message: info.hint ? `${info.message}. ${info.hint}` : info.message };
}

/** A failed save: the agent joins several problems with "; " before each file name. */
export function problemsFromError(e: unknown): FieldProblem[] {
  if (e instanceof StrataError) {
    return e.message.split(/; (?=\S*layer\.json: )/).map((message) => toFieldProblem({ code: e.code, message, hint: e.hint }));
  }
  return [{ field: '', code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) }];
}
