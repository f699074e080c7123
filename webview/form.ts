/**
 * The editor form. Rendered from the model on load and when rows are added or removed; typing only
 * updates the model (so focus and caret stay put). Problems are placed under the field they name.
 */
import { FieldProblem, PathKind } from '../protocol/webview';
import { Mapping } from '../protocol/layer';
import { Child, h, slotId } from './dom';
import { Draft, slotFor } from './draft';

export interface FormModel {
  draft: Draft;
  /** The name the layer was loaded under. */
  name: string;
  active: boolean;
  canRename: boolean;
  newMapping: Mapping;
  newExclude: string;
  newDelete: string;
}

/** Where a browse result goes: a row of a list, or its add-row (index -1). */
export type Target = { list: 'mappings'; index: number; key: 'original' | 'destination' } | { list: 'excludes' | 'deletes'; index: number };

export interface FormActions {
  /** A field changed. */
  edited(): void;
  /** Rows were added or removed: render again, then focus `focusId`. */
  restructured(focusId: string): void;
  browse(kind: PathKind, target: Target): void;
  save(): void;
  revert(): void;
}

export function kindOf(t: Target): PathKind {
  return t.list === 'mappings' ? t.key : t.list === 'excludes' ? 'exclude' : 'delete';
}

export function setTarget(m: FormModel, t: Target, value: string): void {
  if (t.list === 'mappings') {
    const row = t.index < 0 ? m.newMapping : m.draft.mappings[t.index];
    if (row) row[t.key] = value;
  } else if (t.index < 0) {
    if (t.list === 'excludes') m.newExclude = value;
    else m.newDelete = value;
  } else {
    m.draft[t.list][t.index] = value;
  }
}

export function targetInputId(t: Target): string {
  if (t.list === 'mappings') return t.index < 0 ? `new-mapping-${t.key}` : `mapping-${t.index}-${t.key}`;
  return t.index < 0 ? `new-${t.list}` : `${t.list}-${t.index}`;
}

function errorSlot(field: string): HTMLElement {
  return h('div', { class: 'error', id: slotId(field), 'data-field': field, role: 'alert' });
}

function textInput(
  id: string,
  field: string | undefined,
  value: string,
  onInput: (v: string) => void,
  extra: Record<string, string | boolean | undefined> = {},
): HTMLInputElement {
  return h('input', {
    type: 'text',
    id,
    value,
    spellcheck: 'false',
    ...(field !== undefined ? { 'data-input-for': field, 'aria-describedby': slotId(field) } : {}),
    ...extra,
    onInput: (e: Event) => onInput((e.target as HTMLInputElement).value),
  });
}

function browseButton(label: string, a: FormActions, t: Target): HTMLButtonElement {
  return h('button', { type: 'button', class: 'icon', 'aria-label': label, title: label, onClick: () => a.browse(kindOf(t), t) }, '…');
}

/** Enter in an add-row's input adds the row instead of submitting the form. */
function onEnter(fn: () => void): (e: Event) => void {
  return (e: Event) => {
    if ((e as KeyboardEvent).key === 'Enter' && e.target instanceof HTMLInputElement) {
      e.preventDefault();
      fn();
    }
  };
}

function scalarField(label: string, field: string, control: HTMLElement, note?: string): HTMLElement {
  const noteEl = note ? h('div', { class: 'note', id: `${control.id}-note` }, note) : null;
  if (noteEl) control.setAttribute('aria-describedby', `${control.getAttribute('aria-describedby') ?? ''} ${noteEl.id}`.trim());
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, noteEl, errorSlot(field));
}

function mappingsSection(m: FormModel, a: FormActions): HTMLElement {
  const cell = (
    id: string,
    field: string | undefined,
    value: string,
    set: (v: string) => void,
    label: string,
    placeholder: string | undefined,
    t: Target,
    arrow: boolean,
  ) =>
    h(
      'div',
      { class: 'cell' },
      arrow ? h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→') : null,
      textInput(id, field, value, set, { 'aria-label': label, placeholder }),
      browseButton(`Browse for the ${label.toLowerCase()}`, a, t),
    );
  // One row per mapping, two lines each (view path, then layer path), so it fits a narrow side bar.
  const rows = m.draft.mappings.map((row, i) => {
    const n = i + 1;
    return h(
      'li',
      { class: 'mapping' },
      cell(
        `mapping-${i}-original`,
        `mappings[${i}].original`,
        row.original,
        (v) => {
          row.original = v;
          a.edited();
        },
        `Mapping ${n} view path`,
        undefined,
        { list: 'mappings', index: i, key: 'original' },
        false,
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          id: `mapping-remove-${i}`,
          'aria-label': `Remove mapping ${n} (${row.original})`,
          title: 'Remove this mapping',
          onClick: () => {
            m.draft.mappings.splice(i, 1);
            a.restructured(m.draft.mappings.length ? `mapping-remove-${Math.min(i, m.draft.mappings.length - 1)}` : 'new-mapping-original');
          },
        },
        'Remove',
      ),
      errorSlot(`mappings[${i}].original`),
      cell(
        `mapping-${i}-destination`,
        `mappings[${i}].destination`,
        row.destination,
        (v) => {
          row.destination = v;
          a.edited();
        },
        `Mapping ${n} layer path`,
        undefined,
        { list: 'mappings', index: i, key: 'destination' },
        true,
      ),
      errorSlot(`mappings[${i}].destination`),
      errorSlot(`mappings[${i}]`),
    );
  });
  const add = (): void => {
    if (!m.newMapping.original.trim()) return;
    m.draft.mappings.push({ original: m.newMapping.original.trim(), destination: m.newMapping.destination.trim() || '/' });
    m.newMapping = { original: '', destination: '' };
    a.restructured('new-mapping-original');
  };
  const newRow = h(
    'li',
    { class: 'mapping new', onKeydown: onEnter(add) },
    cell(
      'new-mapping-original',
      undefined,
      m.newMapping.original,
      (v) => (m.newMapping.original = v),
      'New mapping view path',
      '/tools/node',
      { list: 'mappings', index: -1, key: 'original' },
      false,
    ),
    h('button', { type: 'button', id: 'new-mapping-add', onClick: add, title: 'Add this mapping (Enter)' }, 'Add'),
    cell(
      'new-mapping-destination',
      undefined,
      m.newMapping.destination,
      (v) => (m.newMapping.destination = v),
      'New mapping layer path',
      'node-v20, or / for the whole layer',
      { list: 'mappings', index: -1, key: 'destination' },
      true,
    ),
  );
  return h(
    'fieldset',
    {},
    h('legend', {}, 'Mappings'),
    h(
      'p',
      { class: 'note' },
      'While the layer is active, each view path (first line) is served from the path inside the layer (second line).',
    ),
    h('ul', { class: 'rows' }, ...rows, newRow),
    errorSlot('mappings'),
  );
}

function listSection(m: FormModel, a: FormActions, list: 'excludes' | 'deletes', legend: string, note: string, noun: string): HTMLElement {
  const values = m.draft[list];
  const rows = values.map((v, i) =>
    h(
      'li',
      {},
      h(
        'div',
        { class: 'cell' },
        textInput(
          `${list}-${i}`,
          `${list}[${i}]`,
          v,
          (x) => {
            values[i] = x;
            a.edited();
          },
          { 'aria-label': `${noun} ${i + 1}` },
        ),
        browseButton(`Browse for ${noun.toLowerCase()} ${i + 1}`, a, { list, index: i }),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            id: `${list}-remove-${i}`,
            'aria-label': `Remove ${noun.toLowerCase()} ${v}`,
            onClick: () => {
              values.splice(i, 1);
              a.restructured(values.length ? `${list}-remove-${Math.min(i, values.length - 1)}` : `new-${list}`);
            },
          },
          'Remove',
        ),
      ),
      errorSlot(`${list}[${i}]`),
    ),
  );
  const current = (): string => (list === 'excludes' ? m.newExclude : m.newDelete);
  const add = (): void => {
    const v = current().trim();
    if (!v) return;
    values.push(v);
    if (list === 'excludes') m.newExclude = '';
    else m.newDelete = '';
    a.restructured(`new-${list}`);
  };
  return h(
    'fieldset',
    {},
    h('legend', {}, legend),
    h('p', { class: 'note' }, note),
    h(
      'ul',
      { class: 'rows' },
      ...rows,
      h(
        'li',
        { class: 'new', onKeydown: onEnter(add) },
        h(
          'div',
          { class: 'cell' },
          textInput(`new-${list}`, undefined, current(), (x) => (list === 'excludes' ? (m.newExclude = x) : (m.newDelete = x)), {
            'aria-label': `New ${noun.toLowerCase()}`,
            placeholder: '/path/in/the/view',
          }),
          browseButton(`Browse for a new ${noun.toLowerCase()}`, a, { list, index: -1 }),
          h('button', { type: 'button', onClick: add }, 'Add'),
        ),
      ),
    ),
    errorSlot(list),
  );
}

export function renderForm(m: FormModel, a: FormActions, header: Child[]): HTMLFormElement {
  const d = m.draft;
  const name = textInput(
    'name',
    'name',
    d.name,
    (v) => {
      d.name = v;
      a.edited();
    },
    { readonly: !m.canRename, 'aria-readonly': !m.canRename ? 'true' : undefined },
  );
  const version = textInput('version', 'version', d.version, (v) => {
    d.version = v;
    a.edited();
  });
  const priority = h('input', {
    type: 'number',
    step: '1',
    id: 'priority',
    value: d.priority,
    'data-input-for': 'priority',
    'aria-describedby': slotId('priority'),
    onInput: (e: Event) => {
      d.priority = (e.target as HTMLInputElement).value;
      a.edited();
    },
  });
  const description = h('textarea', {
    id: 'description',
    rows: 3,
    'data-input-for': 'description',
    'aria-describedby': slotId('description'),
    onInput: (e: Event) => {
      d.description = (e.target as HTMLTextAreaElement).value;
      a.edited();
    },
  });
  description.value = d.description;
  return h(
    'form',
    {
      novalidate: true,
      onSubmit: (e: Event) => {
        e.preventDefault();
        a.save();
      },
    },
    ...header,
    scalarField(
      'Name',
      'name',
      name,
      m.canRename ? undefined : 'Renaming a layer is not supported: export it and import it under the new name.',
    ),
    scalarField('Version', 'version', version),
    scalarField('Priority', 'priority', priority, 'When two active layers map the same path, the higher priority wins.'),
    scalarField('Description', 'description', description),
    mappingsSection(m, a),
    listSection(m, a, 'excludes', 'Excludes', 'These view paths always pass through this layer to what lies below.', 'Exclude'),
    listSection(m, a, 'deletes', 'Delete entries', 'These view paths are hidden while the layer is active.', 'Delete entry'),
    errorSlot(''),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', id: 'save' }, 'Save'),
      h('button', { type: 'button', class: 'secondary', id: 'revert', onClick: () => a.revert() }, 'Revert'),
      h('span', { id: 'save-state', role: 'status' }),
    ),
  );
}

/** Put each problem under its field (or the nearest enclosing one); mark the inputs invalid. */
export function showProblems(form: HTMLElement, problems: readonly FieldProblem[]): void {
  const slots = new Map<string, HTMLElement>();
  form.querySelectorAll<HTMLElement>('.error[data-field]').forEach((el) => {
    el.replaceChildren();
    slots.set(el.dataset.field ?? '', el);
  });
  form.querySelectorAll<HTMLElement>('[data-input-for]').forEach((el) => el.removeAttribute('aria-invalid'));
  for (const p of problems) {
    const slot = slots.get(slotFor(p.field, (f) => slots.has(f)));
    // In words; the agent's code (for a search or a bug report) in the tooltip.
    slot?.append(
      h(
        'div',
        { title: p.code, 'data-code': p.code },
        p.field && slotFor(p.field, (f) => slots.has(f)) !== p.field ? `${p.field}: ${p.message}` : p.message,
      ),
    );
    form.querySelector(`[data-input-for="${CSS.escape(p.field)}"]`)?.setAttribute('aria-invalid', 'true');
  }
}
