// "Export CSV" / "Export JSON" beside the filter: the shell asks where to save (the
// system's save dialog; the web view never names a path) and writes the connection
// list — name, company, provider, status, both expiries, last refresh, last error; no
// secrets (see authdeck_core::export).

import { api, toCommandError } from '../api';
import type { ExportFormat } from '../bindings/ExportFormat';
import { h } from '../dom';
import { errorLine } from '../errors';
import { t } from '../i18n/index';
import { toast } from '../views/dialogs';

export function exportButtons(): HTMLElement {
  const button = (format: ExportFormat) => {
    const b = h(
      'button',
      { type: 'button', class: 'btn', 'data-testid': `export-${format}` },
      t(format === 'csv' ? 'export.csv' : 'export.json'),
    );
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const path = await api.exportConnections(format);
        if (path != null) toast(t('export.saved', { path }));
      } catch (e) {
        toast(t('export.failed', { error: errorLine(toCommandError(e)) }), 'error');
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };
  return h(
    'div',
    { class: 'export-buttons', role: 'group', 'aria-label': t('export.group') },
    button('csv'),
    button('json'),
  );
}
