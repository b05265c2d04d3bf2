import { describe, expect, it } from 'vitest';

import { EXPIRING_SOON_MS, statusAt, statusFrom } from '../src/status';
import { NOW, conn, iso } from './fixtures';

const at = (ms: number, source = 'relative_seconds') => ({ at: iso(ms), source }) as never;

describe('status mapping (mirrors Connection::status_at)', () => {
  it('active with time to spare', () => {
    expect(statusAt(conn({ access_expires: at(NOW + 3600_000) }), NOW)).toBe('active');
  });

  it('expiring soon at exactly 5 minutes, active one millisecond before that window', () => {
    expect(statusAt(conn({ access_expires: at(NOW + EXPIRING_SOON_MS) }), NOW)).toBe('expiring_soon');
    expect(statusAt(conn({ access_expires: at(NOW + EXPIRING_SOON_MS + 1) }), NOW)).toBe('active');
    expect(statusAt(conn({ access_expires: at(NOW + 1) }), NOW)).toBe('expiring_soon');
  });

  it('expired at the exact instant and after', () => {
    expect(statusAt(conn({ access_expires: at(NOW) }), NOW)).toBe('expired');
    expect(statusAt(conn({ access_expires: at(NOW - 60_000) }), NOW)).toBe('expired');
  });

  it('a dead refresh token means re-authorization, even with a valid access token', () => {
    const c = conn({ access_expires: at(NOW + 3600_000), refresh_expires: at(NOW, 'estimated') });
    expect(statusAt(c, NOW)).toBe('reauthorization_required');
    expect(statusAt(c, NOW - 1)).toBe('active');
  });

  it('a recorded error shows as error, but a dead refresh token wins over it', () => {
    const lastError = { code: 'provider_unavailable', message: 'Down.', at: iso(NOW) } as never;
    expect(statusAt(conn({ last_error: lastError }), NOW)).toBe('error');
    expect(statusAt(conn({ last_error: lastError, access_expires: at(NOW - 1) }), NOW)).toBe('error');
    expect(statusAt(conn({ last_error: lastError, refresh_expires: at(NOW - 1) }), NOW)).toBe(
      'reauthorization_required',
    );
  });

  it('stored state wins over time and errors', () => {
    const lastError = { code: 'busy', message: 'x', at: iso(NOW) } as never;
    expect(statusAt(conn({ state: 'logout_pending', access_expires: at(NOW - 1), last_error: lastError }), NOW)).toBe(
      'logout_pending',
    );
    expect(statusAt(conn({ state: 'reauthorization_required', access_expires: at(NOW + 3600_000) }), NOW)).toBe(
      'reauthorization_required',
    );
    expect(statusAt(conn({ state: 'logout_pending', refresh_expires: at(NOW - 1) }), NOW)).toBe('logout_pending');
  });

  it('unknown expiries (absent or null) are not expired', () => {
    const c = conn({ provider: 'fedex' });
    delete (c as Partial<typeof c>).access_expires;
    delete (c as Partial<typeof c>).refresh_expires;
    expect(statusAt(c, NOW)).toBe('active');
    expect(statusAt(conn({ access_expires: null, refresh_expires: null }), NOW)).toBe('active');
  });

  it('statusFrom works on pre-parsed instants', () => {
    const i = { state: 'active', hasError: false, accessAt: NOW + 1000, refreshAt: null } as const;
    expect(statusFrom(i, NOW)).toBe('expiring_soon');
    expect(statusFrom(i, NOW + 1000)).toBe('expired');
  });
});
