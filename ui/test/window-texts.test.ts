// §5 of issue 14, the window's texts: no browser → the sign-in address with a Copy
// button; a status that agrees with itself; jargon explained; focus after a disconnect.
import { afterEach, describe, expect, it, vi } from 'vitest';

import { type App, mountApp } from '../src/app';
import { Ticker } from '../src/countdown';
import { $, fakeBackend, settle, tid } from './backend';
import { client, conn, iso } from './fixtures';

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

async function start(opts: Parameters<typeof fakeBackend>[0]) {
  backend = fakeBackend(opts);
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  return backend;
}

const PENDING = {
  id: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  authorize_url: 'https://sandbox-auth.flowaccount.com/connect/authorize?client_id=fa-app-id&state=st4te',
  redirect_uri: 'io.authdeck.app://callback',
  expires_at: iso(Date.now() + 600_000),
};
const row = (id: string) => $(`${tid('connection-row')}[data-connection-id="${id}"]`);
const soon = (ms: number) => iso(Date.now() + ms);

describe('no browser', () => {
  it('says at once when the shell could not open the browser', async () => {
    await start({
      clients: [client()],
      handlers: { connect_flowaccount: () => ({ ...PENDING, browser_opened: false }) },
    });
    $<HTMLButtonElement>(tid('add-connection')).click();
    await settle();
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();
    expect($(tid('fa-no-browser')).hidden).toBe(false);
    expect($<HTMLInputElement>(tid('fa-authorize-url')).value).toBe(PENDING.authorize_url);
  });

  it('says the browser could not be opened and shows the sign-in address with Copy beside the paste box', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    await start({
      clients: [client()],
      handlers: {
        connect_flowaccount: () => ({ ...PENDING, browser_opened: true }),
        open_authorize_url: () =>
          Promise.reject({ code: 'internal', message: 'No browser could be opened (xdg-open failed).' }),
      },
    });
    $<HTMLButtonElement>(tid('add-connection')).click();
    await settle();
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();
    // The address is there from the start, also when the browser took the page.
    const url = $<HTMLInputElement>(tid('fa-authorize-url'));
    expect(url.value).toBe(PENDING.authorize_url);
    expect($(tid('fa-no-browser')).hidden).toBe(true);
    $<HTMLButtonElement>(tid('fa-reopen')).click();
    await settle();
    const notice = $(tid('fa-no-browser'));
    expect(notice.hidden).toBe(false);
    expect(notice.textContent).toBe(
      'The browser could not be opened. Open this sign-in address in a browser yourself:',
    );
    // Beside the paste-the-redirect box, in the same waiting panel.
    const waiting = $(tid('fa-waiting'));
    expect(waiting.contains(url)).toBe(true);
    expect(waiting.contains($(tid('fa-paste-url')))).toBe(true);
    $<HTMLButtonElement>(tid('fa-copy-url')).click();
    await settle();
    expect(writeText).toHaveBeenCalledWith(PENDING.authorize_url);
  });

  it('the same for Reconnect', async () => {
    const dead = conn({ id: 'd', state: 'reauthorization_required', client_id: 'client-fa' });
    await start({
      clients: [client()],
      connections: [dead],
      handlers: {
        connect_flowaccount: () => ({ ...PENDING, browser_opened: true }),
        open_authorize_url: () => Promise.reject({ code: 'internal', message: 'No browser.' }),
      },
    });
    $<HTMLButtonElement>(`[data-connection-id="d"] ${tid('row-reconnect')}`).click();
    await settle(10);
    expect($<HTMLInputElement>(tid('fa-authorize-url')).value).toBe(PENDING.authorize_url);
    $<HTMLButtonElement>(tid('fa-reopen')).click();
    await settle();
    expect($(tid('fa-no-browser')).hidden).toBe(false);
  });
});

describe('a status that agrees with itself', () => {
  it('a failed refresh with a valid access token reads "Active · last refresh failed", its error in plain sight', async () => {
    const failed = conn({
      id: 'a',
      access_expires: { at: soon(3_600_000), source: 'relative_seconds' },
      refresh_expires: { at: soon(86_400_000), source: 'estimated' },
      last_error: { code: 'provider_unavailable', message: 'FlowAccount did not answer.', at: soon(-1000) },
    });
    const dead = conn({
      id: 'b',
      access_expires: { at: soon(-1000), source: 'relative_seconds' },
      refresh_expires: { at: soon(86_400_000), source: 'estimated' },
      last_error: { code: 'provider_unavailable', message: 'FlowAccount did not answer.', at: soon(-1000) },
    });
    await start({ connections: [failed, dead] });
    expect($(tid('status-chip'), row('a')).textContent).toBe('Active · last refresh failed');
    expect($(tid('status-chip'), row('b')).textContent).toBe('Error');
    const err = $(tid('row-error'), row('a'));
    expect(err.hidden).toBe(false);
    expect(err.textContent).toBe('FlowAccount did not answer. Next: Try again later.');
  });

  it('shows no refresh countdown when re-authorization is needed', async () => {
    const dead = conn({
      id: 'd',
      state: 'reauthorization_required',
      refresh_expires: { at: soon(86_400_000), source: 'estimated' },
    });
    const live = conn({ id: 'l', refresh_expires: { at: soon(86_400_000), source: 'estimated' } });
    await start({ connections: [dead, live] });
    expect($(tid('refresh-countdown'), row('d')).textContent).toBe('—');
    expect($(tid('refresh-countdown'), row('l')).textContent).toMatch(/^(1d 0h|23h 59m)$/);
  });
});

describe('an error’s own button', () => {
  it('offers where to fix it: Clients & settings, or starting the sandbox', async () => {
    const later = { at: soon(86_400_000), source: 'estimated' as const };
    const bad = conn({
      id: 'x',
      refresh_expires: later,
      last_error: { code: 'invalid_client', message: 'FlowAccount rejected the app.', at: soon(-1000) },
    });
    const off = conn({
      id: 'y',
      refresh_expires: later,
      last_error: { code: 'sandbox_not_running', message: 'The sandbox is not running.', at: soon(-1000) },
    });
    const plain = conn({
      id: 'z',
      refresh_expires: later,
      last_error: { code: 'provider_unavailable', message: 'No answer.', at: soon(-1000) },
    });
    const b = await start({
      connections: [bad, off, plain],
      handlers: { start_sandbox: () => ({ base_url: 'http://127.0.0.1:1', clients: [], skipped: [] }) },
    });
    expect($(tid('row-advice'), row('z')).hidden).toBe(true);
    const open = $<HTMLButtonElement>(tid('row-advice'), row('x'));
    expect(open.hidden).toBe(false);
    expect(open.textContent).toBe('Open Clients & settings');
    open.click();
    await settle();
    expect($(tid('clients-view')).hidden).toBe(false);
    const sandbox = $<HTMLButtonElement>(tid('row-advice'), row('y'));
    expect(sandbox.textContent).toBe('Start the sandbox');
    sandbox.click();
    await settle();
    expect(b.callsTo('start_sandbox')).toHaveLength(1);
  });
});

describe('jargon', () => {
  it('explains the CUSTOM badge and calls supportCode the customer code', async () => {
    const c = conn({ id: 'c', environment: 'custom', support_code: 'FA-100002' });
    await start({ connections: [c], handlers: { connection_details: () => ({ connection: c, history: [] }) } });
    const badge = $('.badge.env', row('c'));
    expect(badge.textContent).toBe('Custom');
    expect(badge.title).toMatch(/^Custom endpoints: /);
    expect($('.row-sub', row('c')).textContent).toBe('Customer code FA-100002');
    app!.list.select('c');
    await settle();
    const panel = $(tid('details-panel'));
    // In words, not only in a tooltip.
    expect($(tid('env-explain'), panel).textContent).toMatch(/^Custom endpoints: this client uses addresses entered/);
    expect(panel.textContent).toContain('Customer code (FlowAccount)FA-100002');
    expect(panel.textContent).not.toContain('supportCode');
    // Protocol details folded away.
    const tech = $<HTMLDetailsElement>(tid('technical-details'), panel);
    expect(tech.open).toBe(false);
    expect($('summary', tech).textContent).toBe('Technical details');
    expect(tech.textContent).toContain('Scopes');
  });
});

describe('keyboard', () => {
  it('after a disconnect, the focus moves to the next row', async () => {
    await start({
      connections: [conn({ id: 'a', label: 'A' }), conn({ id: 'b', label: 'B' }), conn({ id: 'c', label: 'C' })],
      handlers: { logout: () => 'disconnected' },
    });
    app!.list.select('b', true);
    const btn = $<HTMLButtonElement>(tid('row-logout'), row('b'));
    btn.focus();
    btn.click();
    await settle();
    $<HTMLButtonElement>(tid('confirm-ok')).click();
    await settle();
    expect(document.querySelector('[data-connection-id="b"]')).toBeNull();
    expect(document.activeElement).toBe(row('c'));
    expect(row('c').getAttribute('aria-selected')).toBe('true');
  });
});
