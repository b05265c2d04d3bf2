// What the row buttons do: refresh, log out or disconnect (after a confirmation),
// copy the access token, reconnect. A rejection is shown on the row by the list.

import { api } from '../api';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { LogoutOutcome } from '../bindings/LogoutOutcome';
import { type PlainKey, t } from '../i18n/index';
import { confirmDialog, toast } from '../views/dialogs';
import type { RowActions } from '../views/list';
import type { AddConnectionLauncher } from './add-launcher';

/** The changes a row command makes to the list. */
export interface ListEdits {
  upsert: (conn: ConnectionSummary) => void;
  /** `focusNext`: move the focus to the next row (after a disconnect). */
  remove: (id: string, focusNext?: boolean) => void;
}

const LOGOUT_DONE: Record<LogoutOutcome, PlainKey> = {
  revoked: 'logout.done.revoked',
  already_revoked: 'logout.done.already_revoked',
  tokens_missing: 'logout.done.tokens_missing',
  disconnected: 'logout.done.disconnected',
};

export function rowActions(list: ListEdits, addConnection: AddConnectionLauncher): RowActions {
  return {
    refresh: async (c) => list.upsert(await api.refresh(c.id)),
    logout: (c) => logout(list, c),
    copy: async (c) => {
      const clearsIn = await api.copyAccessToken(c.id);
      toast(t('copy.done', { label: c.label, seconds: clearsIn }));
    },
    reconnect: (c) => reconnect(list, addConnection, c),
  };
}

async function logout(list: ListEdits, c: ConnectionSummary): Promise<void> {
  const iot = c.provider === 'iot';
  const ok = await confirmDialog({
    title: iot
      ? t('logout.confirm.iot.title', { label: c.label })
      : t('logout.confirm.other.title', { label: c.label }),
    message: iot ? t('logout.confirm.iot') : t('logout.confirm.other'),
    okLabel: iot ? t('row.logout') : t('row.disconnect'),
    danger: true,
  });
  if (!ok) return;
  const outcome = await api.logout(c.id);
  list.remove(c.id, true);
  toast(t(LOGOUT_DONE[outcome]));
}

async function reconnect(list: ListEdits, addConnection: AddConnectionLauncher, c: ConnectionSummary): Promise<void> {
  switch (c.provider) {
    case 'fedex':
      // No refresh token: a new token from the stored credentials is the reconnect.
      list.upsert(await api.refresh(c.id));
      return;
    case 'flowaccount': {
      const d = addConnection.open({ tab: 'flowaccount', client: c.client_id });
      await d.loadClients();
      await d.startFlowAccount(c.client_id);
      return;
    }
    case 'iot': {
      const d = addConnection.open({ tab: 'iot', client: c.client_id, username: c.username ?? '' });
      await d.loadClients();
      d.dialog.el.querySelector<HTMLInputElement>('[data-testid="iot-password"]')?.focus();
      return;
    }
  }
}
