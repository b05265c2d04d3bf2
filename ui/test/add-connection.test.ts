import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import { Ticker } from '../src/countdown';
import { $, $$, fakeBackend, settle, tid } from './backend';
import { NOW, client, conn, iso } from './fixtures';

let app: App | null = null;
let backend: ReturnType<typeof fakeBackend> | null = null;

afterEach(async () => {
  await app?.dispose();
  app = null;
  backend?.reset();
  backend = null;
  document.body.innerHTML = '';
});

const CLIENTS = [
  client(),
  client({ id: 'client-fx', name: 'Shipping', provider: 'fedex', client_id: 'fx-key' }),
  client({ id: 'client-iot', name: 'Plant IoT', provider: 'iot', client_id: 'iot-app' }),
];
const PENDING = {
  id: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  authorize_url: 'https://sandbox-auth.flowaccount.com/connect/authorize?client_id=fa-app-id&state=s3cr3t',
  redirect_uri: 'io.authdeck.app://callback',
  expires_at: iso(Date.now() + 600_000),
};

async function start(
  handlers: Record<string, (a: Record<string, unknown>) => unknown> = {},
  connections = [] as ReturnType<typeof conn>[],
) {
  backend = fakeBackend({ clients: CLIENTS, connections, handlers });
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  return backend;
}

async function openTab(tab: 'flowaccount' | 'fedex' | 'iot') {
  $<HTMLButtonElement>(tid('add-connection')).click();
  await settle();
  $<HTMLButtonElement>(tid(`tab-${tab}`)).click();
}

function set(testid: string, value: string) {
  const el = $<HTMLInputElement | HTMLSelectElement>(tid(testid));
  el.value = value;
  el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? 'change' : 'input', { bubbles: true }));
}

describe('FlowAccount', () => {
  it('starts in the browser, waits, reopens the page, and finishes with a pasted URL', async () => {
    const made = conn({ id: 'n1', label: 'SC-77', support_code: 'SC-77', updated_at: iso(NOW) });
    const b = await start({
      connect_flowaccount: () => PENDING,
      open_authorize_url: () => null,
      complete_callback: () => made,
    });
    await openTab('flowaccount');
    expect($$<HTMLOptionElement>(`${tid('fa-client')} option`).map((o) => o.value)).toEqual(['client-fa']);
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();
    expect(b.callsTo('connect_flowaccount')).toEqual([{ cmd: 'connect_flowaccount', args: { client: 'client-fa' } }]);
    const waiting = $(tid('fa-waiting'));
    expect(waiting.hidden).toBe(false);
    expect(waiting.textContent).toMatch(/expires in (10m 0s|9m \d+s)/);
    expect($(tid('fa-cancel'))).toBeTruthy();

    $<HTMLButtonElement>(tid('fa-reopen')).click();
    await settle();
    expect(b.callsTo('open_authorize_url')).toEqual([{ cmd: 'open_authorize_url', args: { id: PENDING.id } }]);

    set('fa-paste-url', ' io.authdeck.app://callback?code=abc&state=s3cr3t ');
    $<HTMLButtonElement>(tid('fa-paste-submit')).click();
    await settle();
    expect(b.callsTo('complete_callback')).toEqual([
      { cmd: 'complete_callback', args: { url: 'io.authdeck.app://callback?code=abc&state=s3cr3t' } },
    ]);
    expect(document.querySelector(tid('add-connection-dialog'))).toBeNull();
    const row = $(`[data-connection-id="n1"]`);
    expect(row.getAttribute('aria-selected')).toBe('true');
  });

  it('the deep-link callback closes the waiting dialog; a forged one shows why and keeps waiting', async () => {
    await start({ connect_flowaccount: () => PENDING });
    await openTab('flowaccount');
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();

    await backend!.callback({
      ok: false,
      connection: null,
      error: { code: 'invalid_callback', message: 'This sign-in request has expired.', detail: null },
    });
    expect($(tid('fa-waiting')).hidden).toBe(false);
    expect($(tid('fa-waiting-error')).textContent).toBe(
      'This sign-in request has expired. Next: Start the connection again from Authdeck.',
    );
    expect(document.querySelector(tid('error-banner'))).toBeNull(); // shown in the dialog instead

    const made = conn({ id: 'n2', label: 'SC-9', updated_at: iso(NOW) });
    await backend!.callback({ ok: true, connection: made, error: null });
    expect(document.querySelector(tid('add-connection-dialog'))).toBeNull();
    expect($(`[data-connection-id="n2"]`).classList.contains('flash')).toBe(true);
  });

  it('cancel leaves the waiting state and cancels the authorization in the core', async () => {
    const b = await start({ connect_flowaccount: () => PENDING, cancel_flowaccount: () => true });
    await openTab('flowaccount');
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();
    $<HTMLButtonElement>(tid('fa-cancel')).click();
    expect($(tid('fa-waiting')).hidden).toBe(true);
    expect($(tid('fa-start')).hidden).toBe(false);
    await settle();
    expect(b.callsTo('cancel_flowaccount')).toEqual([{ cmd: 'cancel_flowaccount', args: { id: PENDING.id } }]);
  });

  it('start failures are shown with the next step', async () => {
    await start({
      connect_flowaccount: () =>
        Promise.reject({ code: 'keyring_unavailable', message: 'The system keyring is locked.' }),
    });
    await openTab('flowaccount');
    $<HTMLButtonElement>(tid('fa-start')).click();
    await settle();
    expect($(tid('fa-error')).textContent).toBe('The system keyring is locked. Next: Unlock your system keyring.');
  });

  it('row Reconnect starts the authorization again for the same client', async () => {
    const dead = conn({ id: 'd', state: 'reauthorization_required', client_id: 'client-fa' });
    const b = await start({ connect_flowaccount: () => PENDING }, [dead]);
    const btn = $<HTMLButtonElement>(`[data-connection-id="d"] ${tid('row-reconnect')}`);
    expect(btn.hidden).toBe(false);
    btn.click();
    await settle(10);
    expect(b.callsTo('connect_flowaccount')).toEqual([{ cmd: 'connect_flowaccount', args: { client: 'client-fa' } }]);
    expect($(tid('fa-waiting')).hidden).toBe(false);
  });
});

describe('FedEx', () => {
  it('sends the child credentials for csp/pc grants and clears the secret', async () => {
    const b = await start({
      connect_fedex: () => conn({ id: 'fx', provider: 'fedex', label: 'Shipping / ck', updated_at: iso(NOW) }),
    });
    await openTab('fedex');
    const child = $(tid('fedex-child-key')).closest('.field-group') as HTMLElement;
    expect(child.hidden).toBe(true);
    set('fedex-grant', 'csp_credentials');
    expect(child.hidden).toBe(false);
    set('fedex-child-key', 'ck-1');
    set('fedex-child-secret', 'child-s3cret');
    const secret = $<HTMLInputElement>(tid('fedex-child-secret'));
    $<HTMLButtonElement>(tid('fedex-submit')).click();
    expect(secret.value).toBe(''); // cleared as soon as it was read
    await settle();
    expect(b.callsTo('connect_fedex')).toEqual([
      {
        cmd: 'connect_fedex',
        args: {
          input: { client: 'client-fx', grant: 'csp_credentials', child_key: 'ck-1', child_secret: 'child-s3cret' },
        },
      },
    ]);
    expect(secret.isConnected).toBe(false); // the dialog closed on success
    expect($(`[data-connection-id="fx"]`)).toBeTruthy();
  });

  it('client_credentials sends no child credentials; missing ones are caught before the call', async () => {
    const b = await start({
      connect_fedex: () => Promise.reject({ code: 'invalid_client', message: 'FedEx rejected the API key.' }),
    });
    await openTab('fedex');
    set('fedex-grant', 'client_pc_credentials');
    $<HTMLButtonElement>(tid('fedex-submit')).click();
    await settle();
    expect(b.callsTo('connect_fedex')).toHaveLength(0);
    expect($(tid('fedex-error')).textContent).toContain('child key');

    set('fedex-grant', 'client_credentials');
    $<HTMLButtonElement>(tid('fedex-submit')).click();
    await settle();
    expect(b.callsTo('connect_fedex')[0]!.args).toEqual({
      input: { client: 'client-fx', grant: 'client_credentials', child_key: null, child_secret: null },
    });
    expect($(tid('fedex-error')).textContent).toBe(
      "FedEx rejected the API key. Next: Check the client's ID and secret in Clients & settings.",
    );
  });
});

describe('IoT', () => {
  it('logs in once and clears the password field, even when the login fails', async () => {
    let answer: () => unknown = () =>
      Promise.reject({ code: 'invalid_credentials', message: 'Wrong username or password.' });
    const b = await start({ connect_iot: () => answer() });
    await openTab('iot');
    set('iot-username', 'operator');
    set('iot-password', 'wrong-pass');
    $<HTMLButtonElement>(tid('iot-submit')).click();
    expect($<HTMLInputElement>(tid('iot-password')).value).toBe(''); // cleared at submit
    await settle();
    expect(b.callsTo('connect_iot')).toEqual([
      { cmd: 'connect_iot', args: { input: { client: 'client-iot', username: 'operator', password: 'wrong-pass' } } },
    ]);
    expect($(tid('iot-error')).textContent).toBe(
      'Wrong username or password. Next: Check the username and password (or the child key and secret), then try again.',
    );

    answer = () =>
      conn({ id: 'io', provider: 'iot', label: 'operator', username: 'operator', updated_at: iso(NOW) } as never);
    set('iot-password', 'operator-pass');
    $<HTMLButtonElement>(tid('iot-submit')).click();
    await settle();
    expect(b.callsTo('connect_iot')[1]!.args).toEqual({
      input: { client: 'client-iot', username: 'operator', password: 'operator-pass' },
    });
    expect(document.querySelector(tid('iot-password'))).toBeNull(); // dialog closed
    expect($(`[data-connection-id="io"]`)).toBeTruthy();
  });

  it('row Reconnect opens the login form prefilled with the username', async () => {
    const dead = conn({
      id: 'io',
      provider: 'iot',
      label: 'operator',
      username: 'operator',
      client_id: 'client-iot',
      state: 'reauthorization_required',
    } as never);
    await start({}, [dead]);
    $<HTMLButtonElement>(`[data-connection-id="io"] ${tid('row-reconnect')}`).click();
    await settle(10);
    expect($(tid('tab-iot')).getAttribute('aria-selected')).toBe('true');
    expect($<HTMLInputElement>(tid('iot-username')).value).toBe('operator');
    expect($<HTMLSelectElement>(tid('iot-client')).value).toBe('client-iot');
    expect($<HTMLInputElement>(tid('iot-password')).value).toBe('');
  });
});

describe('clients and sandbox', () => {
  it('adds a FlowAccount client; the secret is write-only and cleared', async () => {
    const b = await start({ add_client: (a) => ({ ...client(), name: (a.input as { name: string }).name }) });
    $<HTMLButtonElement>(tid('nav-clients')).click();
    await settle();
    expect($<HTMLInputElement>(tid('redirect-uri')).value).toBe('io.authdeck.app://callback');
    expect($$(tid('client-item'))).toHaveLength(3);
    set('client-name', 'Office FA 2');
    set('client-id', 'fa-id-2');
    set('client-secret', 'fa-s3cret');
    $<HTMLButtonElement>(tid('client-submit')).click();
    expect($<HTMLInputElement>(tid('client-secret')).value).toBe('');
    await settle();
    expect($<HTMLInputElement>(tid('client-pkce')).checked).toBe(true);
    expect(b.callsTo('add_client')[0]!.args).toEqual({
      input: {
        name: 'Office FA 2',
        provider: 'flowaccount',
        environment: 'sandbox',
        client_id: 'fa-id-2',
        client_secret: 'fa-s3cret',
        authorize_url: null,
        token_url: null,
        auth_url: null,
        redirect_uri: null,
        pkce: true,
        iot_basic_auth: 'raw',
        iot_body: 'form',
      },
    });
  });

  it('PKCE is on by default; unticking the box is the opt-out', async () => {
    const b = await start({ add_client: (a) => ({ ...client(), name: (a.input as { name: string }).name }) });
    $<HTMLButtonElement>(tid('nav-clients')).click();
    await settle();
    set('client-name', 'No PKCE');
    set('client-id', 'fa-id-3');
    set('client-secret', 'fa-s3cret');
    $<HTMLInputElement>(tid('client-pkce')).click();
    $<HTMLButtonElement>(tid('client-submit')).click();
    await settle();
    expect((b.callsTo('add_client')[0]!.args.input as { pkce: boolean }).pkce).toBe(false);
  });

  it('removes a client by name after confirmation', async () => {
    const b = await start({ remove_client: () => null });
    $<HTMLButtonElement>(tid('nav-clients')).click();
    await settle();
    $<HTMLButtonElement>(`[data-client-id="client-fx"] ${tid('client-remove')}`).click();
    await settle();
    $<HTMLButtonElement>(tid('confirm-ok')).click();
    await settle();
    expect(b.callsTo('remove_client')).toEqual([{ cmd: 'remove_client', args: { name: 'Shipping' } }]);
  });

  it('starts the sandbox and shows the demo credentials', async () => {
    const b = await start({
      start_sandbox: () => ({
        base_url: 'http://127.0.0.1:40123',
        clients: ['demo-flowaccount', 'demo-fedex', 'demo-iot'],
        skipped: [],
      }),
    });
    $<HTMLButtonElement>(`${tid('empty-state')} ${tid('sandbox-start')}`).click();
    await settle();
    expect(b.callsTo('start_sandbox')).toHaveLength(1);
    const text = $(tid('sandbox-dialog')).textContent ?? '';
    for (const s of [
      'demo@example.com',
      'demo-child-key',
      'demo-child-secret',
      'operator',
      'operator-pass',
      'http://127.0.0.1:40123',
    ]) {
      expect(text).toContain(s);
    }
  });
});
