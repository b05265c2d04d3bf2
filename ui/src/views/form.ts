// Labelled form fields and a busy-aware submit, shared by the add-connection dialog
// and the clients view.

import { h, uid } from '../dom';

export function field(labelText: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || uid('f');
  control.id = id;
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h('small', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl);
}

export function input(attrs: Record<string, string | boolean | number>): HTMLInputElement {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
}

/** A write-only secret field: never pre-filled, cleared by the caller after use. */
export function secretInput(testid?: string): HTMLInputElement {
  return h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false', 'data-testid': testid });
}

export function select(
  attrs: Record<string, string>,
  options: readonly (readonly [value: string, text: string])[],
): HTMLSelectElement {
  const s = h('select', attrs);
  setOptions(s, options);
  return s;
}

export function setOptions(s: HTMLSelectElement, options: readonly (readonly [value: string, text: string])[]): void {
  const keep = s.value;
  s.textContent = '';
  for (const [value, text] of options) s.append(h('option', { value }, text));
  if (options.some(([v]) => v === keep)) s.value = keep;
}

/** A `role=alert` line under a form for its error, hidden when empty. */
export function errorSlot(testid?: string): HTMLElement {
  const el = h('p', { class: 'form-error', role: 'alert', 'data-testid': testid });
  el.hidden = true;
  return el;
}

export function showError(slot: HTMLElement, text: string | null): void {
  slot.textContent = text ?? '';
  slot.hidden = text === null;
}

/** Disable a button and mark it busy while `work` runs. */
export async function busy<T>(button: HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
