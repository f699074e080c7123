/** A tiny element builder: h('input', {id: 'x', onInput: fn}, children...). */
type Handler = (e: Event) => void;
export type Attrs = Record<string, string | number | boolean | undefined | Handler>;
export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'value' && (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement)) el.value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A stable, CSS-safe id for a field name like 'mappings[2].destination'. */
export function slotId(field: string): string {
  return 'err-' + (field.replace(/[^A-Za-z0-9]+/g, '-') || 'form');
}
