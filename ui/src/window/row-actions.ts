// What the row buttons do: refresh, log out or disconnect (after a confirmation),
// copy the access token, reconnect. A rejection is shown on the row by the list.

import { api } from '../api';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { LogoutOutcome } from '../bindings/LogoutOutcome';
import { confirmDialog, toast } from '../views/dialogs';
import type { RowActions } from '../views/list';
import type { AddConnectionLauncher } from './add-launcher';

/** The changes a row command makes to the list. */
export interface ListEdits {
  upsert: (conn: ConnectionSummary) => void;
  remove: (id: string) => void;
}

const LOGOUT_DONE: Record<LogoutOutcome, string> = {
  revoked: 'Logged out: the IoT platform revoked the session.',
  already_revoked: 'Logged out: the IoT platform had already ended the session.',
  tokens_missing:
    'Logged out on this computer only: the tokens were missing from the keyring, so the IoT platform could not be asked to end the session and it may still be active. Log in again, then log out, to end it.',
  disconnected: 'Disconnected: the tokens were deleted from this computer.',
};

export function rowActions(list: ListEdits, addConnection: AddConnectionLauncher): RowActions {
  return {
    refresh: async (c) => list.upsert(await api.refresh(c.id)),
    logout: (c) => logout(list, c),
    copy: async (c) => {
      const clearsIn = await api.copyAccessToken(c.id);
      toast(`Access token of ${c.label} copied to the clipboard. It is cleared from the clipboard in ${clearsIn} s.`);
    },
    reconnect: (c) => reconnect(list, addConnection, c),
  };
}

async function logout(list: ListEdits, c: ConnectionSummary): Promise<void> {
  const iot = c.provider === 'iot';
  const ok = await confirmDialog({
    title: iot ? `Log out ${c.label}?` : `Disconnect ${c.label}?`,
    message: iot
      ? 'The IoT platform is asked to revoke the session; the tokens are deleted here once it confirms.'
      : 'Its tokens are deleted from this computer. The provider offers no revocation: connect again to use it.',
    okLabel: iot ? 'Log out' : 'Disconnect',
    danger: true,
  });
  if (!ok) return;
  const outcome = await api.logout(c.id);
  list.remove(c.id);
  toast(LOGOUT_DONE[outcome]);
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
