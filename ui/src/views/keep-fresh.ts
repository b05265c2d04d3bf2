// FedEx "keep fresh" in the details panel: a switch; on, the background scheduler
// requests a new token before the current one expires (each request counts against the
// project's FedEx quota, hence off by default).

import { api, toCommandError } from '../api';
import type { Connection } from '../bindings/Connection';
import { h, uid } from '../dom';
import { errorLine } from '../errors';
import { t } from '../i18n/index';
import { toast } from './dialogs';

export function keepFreshSwitch(conn: Connection, onChanged: (c: Connection) => void): HTMLElement {
  const id = uid('keep-fresh');
  const hint = uid('keep-fresh-hint');
  const box = h('input', {
    type: 'checkbox',
    role: 'switch',
    id,
    'aria-describedby': hint,
    'data-testid': 'keep-fresh',
    checked: conn.keep_fresh,
  });
  box.addEventListener('change', async () => {
    const wanted = box.checked;
    box.disabled = true;
    try {
      onChanged(await api.setKeepFresh(conn.id, wanted));
      toast(t(wanted ? 'keepFresh.on' : 'keepFresh.off', { label: conn.label }));
    } catch (e) {
      box.checked = !wanted;
      toast(errorLine(toCommandError(e)), 'error');
    } finally {
      box.disabled = false;
    }
  });
  return h(
    'span',
    { class: 'keep-fresh' },
    box,
    h('label', { for: id }, t('keepFresh.label')),
    h('span', { id: hint, class: 'muted keep-fresh-hint' }, t('keepFresh.hint')),
  );
}
