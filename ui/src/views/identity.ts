// "Who is this connection": the row's title (the person's own name, else the company
// FlowAccount named, else the label), and the details' identity block — company, tax id
// and branch, the last check with a Check button, and renaming in place.

import { api, toCommandError } from '../api';
import type { CheckMethod } from '../bindings/CheckMethod';
import type { CheckRecord } from '../bindings/CheckRecord';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Provider } from '../bindings/Provider';
import { formatInstant, h, replaceChildren } from '../dom';
import { errorLine } from '../errors';
import { type PlainKey, t } from '../i18n/index';

/** The most a name may be (the core refuses longer: `limits::NAME`). */
export const NAME_MAX = 64;

/** What a person calls the connection: their own name, the company's, or the label. */
export function titleOf(c: Pick<ConnectionSummary, 'user_label' | 'company' | 'label'>): string {
  for (const name of [c.user_label, c.company?.name]) {
    if (name != null && name.trim() !== '') return name;
  }
  return c.label;
}

/** Lower-case text the filter matches for the connection's names. */
export function identitySearchText(c: ConnectionSummary): string {
  return [c.user_label, c.company?.name, c.company?.tax_id, c.company?.branch]
    .filter((v): v is string => v != null)
    .join(' ')
    .toLowerCase();
}

const METHOD_TEXT: Record<CheckMethod, PlainKey> = {
  company_info: 'check.method.company_info',
  token_request: 'check.method.token_request',
  refresh: 'check.method.refresh',
};

/** What Check does, per provider, said before it is pressed (FedEx: it costs quota). */
const CHECK_NOTE: Record<Provider, PlainKey> = {
  flowaccount: 'check.note.flowaccount',
  fedex: 'check.note.fedex',
  iot: 'check.note.iot',
};

export function checkText(check: CheckRecord): string {
  const how = t(METHOD_TEXT[check.method]);
  const at = formatInstant(check.at);
  return check.error == null
    ? t('check.result.ok', { at, how })
    : t('check.result.failed', { at, error: errorLine(check.error) });
}

/**
 * The identity rows and controls for the details panel. `reload` fetches the details
 * again (after a check or a rename; the change feed updates the row).
 */
export function identityBlock(c: ConnectionSummary, reload: () => void): HTMLElement {
  const rows = h('dl', { class: 'kv', 'data-testid': 'identity' });
  const add = (k: string, v: string) => rows.append(h('dt', {}, k), h('dd', {}, v));
  const company = c.company;
  if (company != null) {
    add(t('identity.company'), company.name ?? t('common.unknown'));
    add(t('identity.taxId'), company.tax_id ?? t('common.unknown'));
    add(t('identity.branch'), company.branch ?? t('common.unknown'));
  } else if (c.provider === 'flowaccount') {
    add(t('identity.company'), t('identity.company.unknown'));
  }

  const result = h(
    'p',
    {
      class: c.last_check?.error != null ? 'error-text' : 'muted',
      'data-testid': 'check-result',
      role: 'status',
    },
    c.last_check != null ? checkText(c.last_check) : t('check.never'),
  );
  const check = h('button', { type: 'button', class: 'btn', 'data-testid': 'check' }, t('check.button'));
  check.addEventListener('click', async () => {
    check.disabled = true;
    replaceChildren(result, t('check.running'));
    result.className = 'muted';
    try {
      await api.check(c.id);
    } catch (e) {
      // Also kept on the connection (last_check): the reload shows it with its time.
      replaceChildren(result, errorLine(toCommandError(e)));
      result.className = 'error-text';
    } finally {
      check.disabled = false;
    }
    reload();
  });
  const note = h('p', { class: 'hint', 'data-testid': 'check-note' }, t(CHECK_NOTE[c.provider]));

  return h(
    'section',
    { class: 'identity' },
    rows,
    h('div', { class: 'inline-actions' }, check, renameForm(c, reload)),
    note,
    result,
  );
}

/** Rename in place: the field holds the person's own name (blank: none). */
function renameForm(c: ConnectionSummary, reload: () => void): HTMLElement {
  const input = h('input', {
    type: 'text',
    class: 'rename-input',
    maxlength: NAME_MAX,
    value: c.user_label ?? '',
    placeholder: titleOf({ ...c, user_label: null }),
    'aria-label': t('rename.label'),
    'data-testid': 'rename-input',
    autocomplete: 'off',
  });
  const save = h('button', { type: 'submit', class: 'btn', 'data-testid': 'rename-save' }, t('rename.save'));
  const error = h('p', { class: 'error-text', 'data-testid': 'rename-error', role: 'alert' });
  error.hidden = true;
  const form = h('form', { class: 'rename' }, input, save, error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      const name = input.value.trim();
      await api.setLabel(c.id, name === '' ? null : name);
      error.hidden = true;
      reload();
    } catch (err) {
      replaceChildren(error, errorLine(toCommandError(err)));
      error.hidden = false;
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
