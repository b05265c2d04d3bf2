import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import type { Snapshot } from '../src/bindings/Snapshot';
import { Ticker } from '../src/countdown';
import { $, $$, APP_INFO, fakeBackend, settle, tid } from './backend';
import { NOW, conn, iso } from './fixtures';

let app: App | null = null;
let backend: ReturnType<typeof fakeBackend> | null = null;

afterEach(async () => {
  await app?.dispose();
  app = null;
  backend?.reset();
  backend = null;
  document.body.innerHTML = '';
  delete document.documentElement.dataset.listReady;
});

async function start(b: ReturnType<typeof fakeBackend>): Promise<App> {
  backend = b;
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  return app;
}

const row = (id: string) => $(`${tid('connection-row')}[data-connection-id="${id}"]`);
const rowIds = (provider: string) =>
  $$(`${tid('connection-row')}[data-provider="${provider}"]`).map((r) => r.dataset.connectionId);

describe('the connections list', () => {
  it('renders rows grouped by provider and marks the first render', async () => {
    await start(
      fakeBackend({
        connections: [
          conn({ id: 'b', label: 'Beta Co', support_code: 'B-1' }),
          conn({ id: 'a', label: 'Alpha Co' }),
          conn({
            id: 'f',
            provider: 'fedex',
            label: 'Shipping',
            grant: 'csp_credentials',
            child_key: 'ck-1',
            refresh_expires: null,
          } as never),
          conn({ id: 'i', provider: 'iot', label: 'operator', username: 'operator' } as never),
        ],
      }),
    );
    expect(document.documentElement.dataset.listReady).toBe('true');
    expect(performance.getEntriesByName('authdeck:list-rendered').length).toBeGreaterThan(0);
    expect(rowIds('flowaccount')).toEqual(['a', 'b']); // sorted by label
    expect(rowIds('fedex')).toEqual(['f']);
    expect(rowIds('iot')).toEqual(['i']);
    expect($(`.row-sub`, row('b')).textContent).toBe('Customer code B-1');
    expect($(`.row-sub`, row('f')).textContent).toBe('csp_credentials · child ck-1');
    expect($(tid('row-logout'), row('i')).textContent).toBe('Log out');
    expect($(tid('row-logout'), row('f')).textContent).toBe('Disconnect');
    // FedEx has no refresh token: no refresh countdown on its row.
    expect(row('f').querySelector(tid('refresh-countdown'))).toBeNull();
    expect($(tid('empty-state')).hidden).toBe(true);
  });

  it('shows the empty state with the sandbox when there is nothing', async () => {
    await start(fakeBackend());
    expect($(tid('empty-state')).hidden).toBe(false);
    expect($(tid('sandbox-start'), $(tid('empty-state')))).toBeTruthy();
  });

  it('inserts, updates in place (same node) and removes on changes', async () => {
    const b = fakeBackend({ connections: [conn({ id: 'a', label: 'Alpha' }), conn({ id: 'c', label: 'Gamma' })] });
    await start(b);
    const before = row('a');

    await b.changed({ kind: 'connection_changed', connection: conn({ id: 'b', label: 'Beta', updated_at: iso(NOW) }) });
    expect(rowIds('flowaccount')).toEqual(['a', 'b', 'c']);

    await b.changed({
      kind: 'connection_changed',
      connection: conn({ id: 'a', label: 'Alpha', state: 'reauthorization_required', updated_at: iso(NOW) }),
    });
    expect(row('a')).toBe(before); // the same DOM node, updated
    expect($(tid('status-chip'), before).textContent).toBe('Re-authorization needed');
    expect($(tid('row-reconnect'), before).hidden).toBe(false);

    await b.changed({ kind: 'connection_removed', id: 'a' });
    expect(rowIds('flowaccount')).toEqual(['b', 'c']);
    expect(before.isConnected).toBe(false);
  });

  it('ignores an event older than the row it would replace', async () => {
    const b = fakeBackend({ connections: [conn({ id: 'a', label: 'New name', updated_at: iso(NOW) })] });
    await start(b);
    await b.changed({
      kind: 'connection_changed',
      connection: conn({ id: 'a', label: 'Old name', updated_at: iso(NOW - 5000) }),
    });
    expect($('.row-label', row('a')).textContent).toBe('New name');
  });

  it('applies events that arrive while the first list loads', async () => {
    let release: (v: unknown) => void = () => {};
    const b = fakeBackend({
      handlers: { snapshot: () => new Promise((r) => (release = r)) },
    });
    backend = b;
    app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
    await settle();
    await b.changed({
      kind: 'connection_changed',
      connection: conn({ id: 'late', label: 'Late', updated_at: iso(NOW) }),
    });
    // The list was read before the change (version 0): the change follows from the feed.
    release({ version: 0, app_info: APP_INFO, connections: [conn({ id: 'x', label: 'Early' })] });
    await app.ready;
    await settle();
    expect(rowIds('flowaccount')).toEqual(['x', 'late']);
  });

  it('a successful callback highlights the row; a forged one explains itself', async () => {
    const b = fakeBackend();
    await start(b);
    const c = conn({ id: 'n', label: 'New Biz', updated_at: iso(NOW) });
    await b.callback({ ok: true, connection: c, error: null });
    expect(row('n').getAttribute('aria-selected')).toBe('true');
    expect(row('n').classList.contains('flash')).toBe(true);

    await b.callback({
      ok: false,
      connection: null,
      error: {
        code: 'invalid_callback',
        message: 'This redirect does not match a sign-in started here.',
        detail: null,
      },
    });
    const banner = $$(tid('error-banner')).pop()!;
    expect(banner.textContent).toContain('This redirect does not match a sign-in started here.');
    expect(banner.textContent).toContain('Next: Start the connection again from Authdeck.');
  });

  it('warns when redirects cannot reach the window', async () => {
    await start(fakeBackend({ appInfo: { deep_link_problem: 'No D-Bus session bus' } }));
    expect($(tid('error-banner')).textContent).toContain(
      "No D-Bus session bus: FlowAccount's browser redirects can't reach Authdeck",
    );
    expect($(tid('error-banner')).textContent).toContain('paste the redirect URL');
  });

  it('shows no banner when single instance and deep links work', async () => {
    await start(fakeBackend());
    expect(document.querySelector(tid('error-banner'))).toBeNull();
  });
});

describe('row actions', () => {
  it('refresh: busy while running, errors on the row with the next step', async () => {
    let fail: (e: unknown) => void = () => {};
    const b = fakeBackend({
      connections: [conn({ id: 'a' })],
      handlers: { refresh: () => new Promise((_, rej) => (fail = rej)) },
    });
    await start(b);
    const btn = $<HTMLButtonElement>(tid('row-refresh'), row('a'));
    btn.click();
    await settle();
    expect(btn.disabled).toBe(true);
    expect(btn.getAttribute('aria-busy')).toBe('true');
    expect(b.callsTo('refresh')).toEqual([{ cmd: 'refresh', args: { id: 'a' } }]);
    fail({ code: 'reauthorization_required', message: 'FlowAccount no longer accepts this refresh token.' });
    await settle();
    expect(btn.disabled).toBe(false);
    const err = $(tid('row-error'), row('a'));
    expect(err.hidden).toBe(false);
    expect(err.textContent).toBe('FlowAccount no longer accepts this refresh token. Next: Reconnect.');
  });

  it('refresh success updates the row in place and clears the row error', async () => {
    const b = fakeBackend({
      connections: [
        conn({ id: 'a', last_error: { code: 'provider_unavailable', message: 'Timed out.', at: iso(NOW) } } as never),
      ],
      handlers: {
        refresh: () =>
          conn({
            id: 'a',
            updated_at: iso(NOW),
            access_expires: { at: iso(Date.now() + 7200_000), source: 'relative_seconds' },
          } as never),
      },
    });
    await start(b);
    const el = row('a');
    expect($(tid('row-error'), el).textContent).toBe('Timed out. Next: Try again later.');
    $<HTMLButtonElement>(tid('row-refresh'), el).click();
    await settle();
    expect(row('a')).toBe(el);
    expect($(tid('row-error'), el).hidden).toBe(true);
    expect($(tid('access-countdown'), el).textContent).toMatch(/^(2h 0m|1h 59m)$/);
  });

  it('logout asks first; cancel does nothing, OK revokes and removes the row', async () => {
    const b = fakeBackend({
      connections: [conn({ id: 'i', provider: 'iot', label: 'operator', username: 'operator' } as never)],
      handlers: { logout: () => 'revoked' },
    });
    await start(b);
    $<HTMLButtonElement>(tid('row-logout'), row('i')).click();
    await settle();
    $<HTMLButtonElement>(tid('confirm-cancel')).click();
    await settle();
    expect(b.callsTo('logout')).toHaveLength(0);

    $<HTMLButtonElement>(tid('row-logout'), row('i')).click();
    await settle();
    expect($('[role="dialog"] h2').textContent).toBe('Log out operator?');
    $<HTMLButtonElement>(tid('confirm-ok')).click();
    await settle();
    expect(b.callsTo('logout')).toEqual([{ cmd: 'logout', args: { id: 'i' } }]);
    expect(document.querySelector(`[data-connection-id="i"]`)).toBeNull();
    expect($$(tid('toast')).map((t) => t.textContent)).toContain('Logged out: the IoT platform revoked the session.');
  });

  it('Escape closes the confirmation without logging out', async () => {
    const b = fakeBackend({ connections: [conn({ id: 'a' })], handlers: { logout: () => 'disconnected' } });
    await start(b);
    $<HTMLButtonElement>(tid('row-logout'), row('a')).click();
    await settle();
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await settle();
    expect(document.querySelector('[role="dialog"]')).toBeNull();
    expect(b.callsTo('logout')).toHaveLength(0);
  });

  it('copy asks Rust to write the clipboard; the token never comes back', async () => {
    const b = fakeBackend({
      connections: [conn({ id: 'a', label: 'Alpha' })],
      handlers: { copy_access_token: () => 45 },
    });
    await start(b);
    $<HTMLButtonElement>(tid('row-copy'), row('a')).click();
    await settle();
    expect(b.callsTo('copy_access_token')).toEqual([{ cmd: 'copy_access_token', args: { id: 'a' } }]);
    // The toast says when Rust takes the token off the clipboard again (the seconds it answered).
    expect($(tid('toast')).textContent).toBe(
      'Access token of Alpha copied to the clipboard. It is cleared from the clipboard in 45 s.',
    );
  });

  it('arrow keys move the selection and the details panel follows', async () => {
    const b = fakeBackend({
      connections: [
        conn({ id: 'a', label: 'A' }),
        conn({ id: 'b', label: 'B' }),
        conn({ id: 'i', provider: 'iot', label: 'C', username: 'u' } as never),
      ],
    });
    await start(b);
    row('a').click();
    await settle();
    expect($(tid('details-panel')).textContent).toContain('Customer code');
    row('a').dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true }));
    expect(row('b').getAttribute('aria-selected')).toBe('true');
    expect(document.activeElement).toBe(row('b'));
    row('b').dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true }));
    expect(row('i').getAttribute('aria-selected')).toBe('true'); // crosses into the next group
    expect(row('a').getAttribute('aria-selected')).toBe('false');
    expect(row('i').tabIndex).toBe(0);
    expect(row('a').tabIndex).toBe(-1);
    await settle();
    expect(b.callsTo('connection_details').map((c) => c.args)).toContainEqual({ id: 'i' });
  });
});

describe('details and filter', () => {
  it('the details panel shows tokens, expiry sources, decoded JWT and history', async () => {
    const c = conn({
      id: 'i',
      provider: 'iot',
      label: 'operator',
      username: 'operator',
      user_id: 'U974814773204',
      scope: 'user',
      token_type: 'Bearer',
      access_expires: { at: iso(NOW + 86_400_000), source: 'jwt_exp' },
      refresh_expires: null,
      jwt: { header: { alg: 'HS256', typ: 'JWT' }, claims: { ctx: { owner: 'U974814773204' }, iss: 'cer:usertoken' } },
      userinfo: { email: 'op@example.com' },
    } as never);
    const b = fakeBackend({
      connections: [c],
      handlers: {
        connection_details: () => ({ connection: c, history: [{ at: iso(NOW), event: 'connect', outcome: 'ok' }] }),
      },
    });
    await start(b);
    row('i').click();
    await settle();
    const panel = $(tid('details-panel'));
    const text = panel.textContent ?? '';
    expect(text).toContain('U974814773204');
    expect(text).toContain('Bearer');
    expect(text).toContain("the JWT's exp claim");
    expect(text).toContain('Refresh token expires');
    expect(text).toMatch(/Refresh token expires\s*unknown/);
    expect(text).toContain('op@example.com');
    expect($$('pre.json', panel).map((p) => p.textContent)).toContain(
      JSON.stringify({ alg: 'HS256', typ: 'JWT' }, null, 2),
    );
    expect($('.history', panel).textContent).toContain('connect');
    expect(b.callsTo('connection_details')).toEqual([{ cmd: 'connection_details', args: { id: 'i' } }]);

    // history_added for the shown connection fetches the details again.
    await b.changed({ kind: 'history_added', connection_id: 'i' });
    await settle();
    expect(b.callsTo('connection_details')).toHaveLength(2);
  });

  it('the filter hides non-matching rows and updates the group counts', async () => {
    await start(
      fakeBackend({
        connections: [
          conn({ id: 'a', label: 'Alpha', support_code: 'SC-1' }),
          conn({ id: 'b', label: 'Beta', support_code: 'SC-2' }),
          conn({ id: 'i', provider: 'iot', label: 'operator', username: 'operator' } as never),
        ],
      }),
    );
    const f = $<HTMLInputElement>(tid('list-filter'));
    f.value = 'sc-2';
    f.dispatchEvent(new Event('input'));
    // Filtered-out rows and empty groups are not in the DOM at all.
    expect(document.querySelector(`[data-connection-id="a"]`)).toBeNull();
    expect(row('b').isConnected).toBe(true);
    expect($('[data-group="flowaccount"] .group-count').textContent).toBe('1 of 2');
    expect(document.querySelector('[data-group="iot"]')).toBeNull();
    f.value = '';
    f.dispatchEvent(new Event('input'));
    expect(row('a').isConnected).toBe(true);
    expect($('[data-group="iot"] .group-count').textContent).toBe('1');
  });
});

describe('the first snapshot (in the page before its scripts) and the change feed', () => {
  const snap = (over: Partial<Snapshot> = {}): Snapshot => ({
    version: 7,
    app_info: APP_INFO,
    connections: [],
    ...over,
  });

  it('renders the list at mount, before any IPC, then follows the changes after its version', async () => {
    const b = fakeBackend();
    backend = b;
    app = mountApp(document.body, {
      ticker: new Ticker({ doc: null }),
      firstSnapshot: snap({
        version: 0,
        connections: [conn({ id: 'a', label: 'Alpha' }), conn({ id: 'b', label: 'Beta' })],
      }),
    });
    // Synchronously: rows and the ready mark, no command called yet.
    expect(rowIds('flowaccount')).toEqual(['a', 'b']);
    expect(document.documentElement.dataset.listReady).toBe('true');
    expect(b.calls).toHaveLength(0);
    const before = row('a');
    await app.ready;
    await settle();
    // The shell hears of the painted list before the window asks for anything.
    const order = b.calls.map((c) => c.cmd);
    expect(order.indexOf('mark_ready')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('mark_ready')).toBeLessThan(order.indexOf('changes'));
    expect(b.callsTo('changes')[0]!.args).toEqual({ after: 0 });
    expect(b.callsTo('snapshot')).toHaveLength(0);
    await b.changed({
      kind: 'connection_changed',
      connection: conn({ id: 'a', label: 'Alpha', state: 'reauthorization_required', updated_at: iso(NOW) }),
    });
    expect(row('a')).toBe(before);
    expect($(tid('status-chip'), before).textContent).toBe('Re-authorization needed');
    expect(b.callsTo('changes').map((c) => c.args)).toEqual([{ after: 0 }, { after: 1 }]);
  });

  it('resync loads the snapshot again and reconciles it in place', async () => {
    const b = fakeBackend({
      connections: [
        conn({ id: 'a', label: 'Alpha', state: 'reauthorization_required', updated_at: iso(NOW) }),
        conn({ id: 'c', label: 'Gamma' }),
      ],
    });
    backend = b;
    app = mountApp(document.body, {
      ticker: new Ticker({ doc: null }),
      firstSnapshot: snap({
        version: 0,
        connections: [conn({ id: 'a', label: 'Alpha' }), conn({ id: 'b', label: 'Beta' })],
      }),
    });
    const before = row('a');
    await app.ready;
    await b.changed({ kind: 'resync' });
    expect(b.callsTo('snapshot')).toHaveLength(1);
    expect(rowIds('flowaccount')).toEqual(['a', 'c']);
    expect(row('a')).toBe(before);
    expect($(tid('status-chip'), before).textContent).toBe('Re-authorization needed');
  });

  it('a redirect that finished before the window followed the feed is in it', async () => {
    const b = fakeBackend();
    backend = b;
    const c = conn({ id: 'n', label: 'Early Biz', updated_at: iso(NOW) });
    await b.callback({ ok: true, connection: c, error: null }); // version 1, e.g. the redirect that started the app
    app = mountApp(document.body, { ticker: new Ticker({ doc: null }), firstSnapshot: snap({ version: 0 }) });
    await app.ready;
    await settle();
    expect(row('n').getAttribute('aria-selected')).toBe('true');
    expect($$(tid('toast')).map((t) => t.textContent)).toContain('Connected Early Biz.');
  });

  it('app_info_changed fetches app_info again and shows a new deep-link problem once', async () => {
    let info = APP_INFO;
    const b = fakeBackend({ handlers: { app_info: () => info } });
    await start(b);
    expect(document.querySelector(tid('error-banner'))).toBeNull();
    info = { ...APP_INFO, deep_link_problem: 'Authdeck could not register itself for com.authdeck.desktop: links' };
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    expect($$(tid('error-banner'))).toHaveLength(1);
    expect($(tid('error-banner')).textContent).toContain('could not register itself');
  });

  it('asks to unlock the keyring while refreshed tokens wait for it, and clears once saved', async () => {
    let info = APP_INFO;
    const b = fakeBackend({ handlers: { app_info: () => info } });
    await start(b);
    info = { ...APP_INFO, unsaved_tokens: ['FA-100001', 'FA-100002', 'FA-100003'] };
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    expect($$(tid('error-banner'))).toHaveLength(1);
    expect($(tid('error-banner')).textContent).toContain(
      'Unlock your keyring to keep the refreshed tokens of 3 connections (FA-100001, FA-100002, FA-100003)',
    );
    info = APP_INFO;
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    expect(document.querySelector(tid('error-banner'))).toBeNull();
  });
});
