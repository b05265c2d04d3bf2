// What a row's status chip says. Mirrors `Connection::status_at` in
// crates/core/src/model.rs exactly: stored state first, then a dead refresh token,
// then a recorded error, then the access token's expiry.

import type { ConnectionState } from './bindings/ConnectionState';
import type { ConnectionStatus } from './bindings/ConnectionStatus';
import type { ConnectionSummary } from './bindings/ConnectionSummary';
import { type PlainKey, t } from './i18n/index';

/** `EXPIRING_SOON` in model.rs: access tokens expiring within 5 minutes. */
export const EXPIRING_SOON_MS = 5 * 60 * 1000;

/** The parts of a connection the status depends on, with instants already parsed. */
export interface StatusInputs {
  state: ConnectionState;
  hasError: boolean;
  /** Epoch ms of access-token expiry; null when unknown. */
  accessAt: number | null;
  /** Epoch ms of refresh-token expiry; null when unknown or not applicable. */
  refreshAt: number | null;
}

/** RFC 3339 → epoch ms (null when absent or unparsable). Parse once per update, not per tick. */
export function parseInstant(iso: string | null | undefined): number | null {
  if (iso == null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

export function statusInputs(conn: ConnectionSummary): StatusInputs {
  return {
    state: conn.state,
    hasError: conn.last_error != null,
    accessAt: parseInstant(conn.access_expires?.at),
    refreshAt: parseInstant(conn.refresh_expires?.at),
  };
}

export function statusFrom(i: StatusInputs, now: number): ConnectionStatus {
  switch (i.state) {
    case 'reauthorization_required':
      return 'reauthorization_required';
    case 'logout_pending':
      return 'logout_pending';
    case 'active':
      break;
  }
  if (i.refreshAt !== null && i.refreshAt <= now) return 'reauthorization_required';
  if (i.hasError) return 'error';
  if (i.accessAt !== null) {
    if (i.accessAt <= now) return 'expired';
    if (i.accessAt - now <= EXPIRING_SOON_MS) return 'expiring_soon';
  }
  return 'active';
}

export function statusAt(conn: ConnectionSummary, now: number): ConnectionStatus {
  return statusFrom(statusInputs(conn), now);
}

export const STATUS_LABEL: Record<ConnectionStatus, PlainKey> = {
  active: 'status.active',
  expiring_soon: 'status.expiring_soon',
  expired: 'status.expired',
  reauthorization_required: 'status.reauthorization_required',
  logout_pending: 'status.logout_pending',
  error: 'status.error',
};

/**
 * Whether an `error` status is only a failed refresh while the access token is still
 * valid: the connection works, so the chip reads "Active · last refresh failed".
 */
export function stillActive(status: ConnectionStatus, i: StatusInputs, now: number): boolean {
  return status === 'error' && i.state === 'active' && i.accessAt !== null && i.accessAt > now;
}

/** The chip's words for a status (see `stillActive`). */
export function statusLabel(status: ConnectionStatus, i?: StatusInputs, now?: number): string {
  if (i !== undefined && now !== undefined && stillActive(status, i, now)) return t('status.active.refreshFailed');
  return t(STATUS_LABEL[status]);
}
