// "Who is this connection" in the window: rows titled by the person's name or the
// company's, search by those names with "no matches", the identity details with Check
// (and its FedEx quota note), and renaming in place.
import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import type { Connection } from '../src/bindings/Connection';
import { Ticker } from '../src/countdown';
import { titleOf } from '../src/views/identity';
import { $, $$, fakeBackend, settle, tid } from './backend';
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
const company = (name: string, extra: Partial<NonNullable<Connection['company']>> = {}) => ({
  name,
  tax_id: '0505561001234',
  branch: 'สาขา 00001',
  at: iso(NOW),
  ...extra,
});
const crafts = () =>
  conn({ id: 'a', label: 'FA-100002', support_code: 'FA-100002', company: company('Chiang Mai Crafts') } as never);

function type(value: string): void {
  const f = $<HTMLInputElement>(tid('list-filter'));
  f.value = value;
  f.dispatchEvent(new Event('input'));
}

describe('who is this connection', () => {
  it('titles a row by the user label, else the company name, else the label', () => {
    const base = { label: 'FA-1', user_label: null, company: null };
    expect(titleOf(base)).toBe('FA-1');
    expect(titleOf({ ...base, company: company('Siam') })).toBe('Siam');
    expect(titleOf({ ...base, company: company('Siam'), user_label: 'Payroll' })).toBe('Payroll');
    expect(titleOf({ ...base, user_label: '  ' })).toBe('FA-1');
  });

  it('shows the company name on the row with the customer code beside it, and search finds it', async () => {
    await start(
      fakeBackend({
        connections: [
          crafts(),
          conn({ id: 'b', label: 'FA-100001', support_code: 'FA-100001', user_label: 'Head office' } as never),
        ],
      }),
    );
    expect($('.row-label', row('a')).textContent).toBe('Chiang Mai Crafts');
    expect(row('a').textContent).toContain('FA-100002');
    expect($('.row-label', row('b')).textContent).toBe('Head office');
    type('chiang mai');
    expect(row('a').isConnected).toBe(true);
    expect(document.querySelector('[data-connection-id="b"]')).toBeNull();
    expect($(tid('no-matches')).hidden).toBe(true);
    type('head off');
    expect(row('b').isConnected).toBe(true);
    type('0505561001234');
    expect(row('a').isConnected).toBe(true);
    type('nothing like it');
    const none = $(tid('no-matches'));
    expect(none.hidden).toBe(false);
    expect(none.textContent).toBe('No matches for "nothing like it".');
    expect($$(tid('connection-row'))).toHaveLength(0);
    type('');
    expect($(tid('no-matches')).hidden).toBe(true);
    expect($$(tid('connection-row'))).toHaveLength(2);
  });

  it('shows company, tax id and branch in the details; Check reports its result', async () => {
    const c = crafts();
    const failed = {
      ...c,
      last_check: {
        at: iso(NOW),
        method: 'company_info',
        error: { code: 'provider_unavailable', message: 'FlowAccount is not available right now.', at: iso(NOW) },
      },
    };
    let current: Connection = c;
    const b = fakeBackend({
      connections: [c],
      handlers: {
        connection_details: () => ({ connection: current, history: [] }),
        check: () => {
          current = failed as never;
          return Promise.reject(failed.last_check.error);
        },
      },
    });
    await start(b);
    row('a').click();
    await settle();
    const panel = $(tid('details-panel'));
    expect($('.details-title', panel).textContent).toBe('Chiang Mai Crafts');
    const identity = $(tid('identity'), panel).textContent ?? '';
    expect(identity).toContain('0505561001234');
    expect(identity).toContain('สาขา 00001');
    expect($(tid('check-result'), panel).textContent).toBe('Not checked yet.');
    $<HTMLButtonElement>(tid('check'), panel).click();
    await settle();
    expect(b.callsTo('check').map((x) => x.args)).toEqual([{ id: 'a' }]);
    const result = $(tid('check-result'), panel);
    expect(result.textContent).toContain('Check failed');
    expect(result.textContent).toContain('FlowAccount is not available right now.');
    expect(result.className).toBe('error-text');
  });

  it('says before a FedEx check that it is a token request counted against the quota', async () => {
    await start(
      fakeBackend({
        connections: [conn({ id: 'f', provider: 'fedex', label: 'Shipping', refresh_expires: null } as never)],
      }),
    );
    row('f').click();
    await settle();
    expect($(tid('check-note')).textContent).toContain("counts against the project's quota");
  });

  it('renames in place and clears the name with an empty field', async () => {
    const c = crafts();
    let current: Connection = c;
    const b = fakeBackend({
      connections: [c],
      handlers: {
        connection_details: () => ({ connection: current, history: [] }),
        set_label: (a) => {
          const name = a.name as string | null;
          if (name != null && name.length > 64) return Promise.reject({ code: 'invalid_input', message: 'Too long.' });
          current = { ...current, user_label: name } as Connection;
          return current;
        },
      },
    });
    await start(b);
    row('a').click();
    await settle();
    const input = $<HTMLInputElement>(tid('rename-input'));
    expect(input.placeholder).toBe('Chiang Mai Crafts');
    input.value = '  Crafts payroll ';
    input.form!.requestSubmit();
    await settle();
    expect(b.callsTo('set_label').map((x) => x.args)).toEqual([{ id: 'a', name: 'Crafts payroll' }]);
    expect($('.details-title').textContent).toBe('Crafts payroll');
    const again = $<HTMLInputElement>(tid('rename-input'));
    expect(again.value).toBe('Crafts payroll');
    again.value = '';
    again.form!.requestSubmit();
    await settle();
    expect(b.callsTo('set_label')[1]!.args).toEqual({ id: 'a', name: null });
    expect($('.details-title').textContent).toBe('Chiang Mai Crafts');
  });
});

describe('the add-client form', () => {
  it('sends the API URL of a custom FlowAccount client, and none for other providers', async () => {
    const b = fakeBackend({
      handlers: {
        add_client: (a) => {
          const input = a.input as { name: string; provider: string };
          return { id: 'x', name: input.name, provider: input.provider, endpoints: { token_url: 'https://t' } };
        },
      },
    });
    await start(b);
    $<HTMLButtonElement>(tid('nav-clients')).click();
    await settle();
    const set = (id: string, value: string) => {
      const el = $<HTMLInputElement | HTMLSelectElement>(tid(id));
      el.value = value;
      el.dispatchEvent(new Event('change', { bubbles: true }));
      el.dispatchEvent(new Event('input', { bubbles: true }));
    };
    set('client-provider', 'flowaccount');
    set('client-environment', 'custom');
    set('client-name', 'acme');
    set('client-id', 'cid');
    set('client-secret', 'sec');
    set('client-authorize-url', 'https://fa.example/connect/authorize');
    set('client-token-url', 'https://fa.example/api/token');
    set('client-api-url', ' https://fa.example/api ');
    $<HTMLButtonElement>(tid('client-submit')).click();
    await settle();
    const sent = b.callsTo('add_client')[0]!.args.input as Record<string, unknown>;
    expect(sent.api_url).toBe('https://fa.example/api');
    expect(sent.token_url).toBe('https://fa.example/api/token');

    set('client-provider', 'fedex');
    set('client-name', 'ship');
    set('client-id', 'key');
    set('client-secret', 'sec');
    set('client-token-url', 'https://fx.example/oauth/token');
    set('client-api-url', 'https://fa.example/api');
    $<HTMLButtonElement>(tid('client-submit')).click();
    await settle();
    const fedex = b.callsTo('add_client')[1]!.args.input as Record<string, unknown>;
    expect(fedex.api_url).toBeUndefined();
  });
});
