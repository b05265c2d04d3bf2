import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import { Ticker } from '../src/countdown';
import { errorLine } from '../src/errors';
import { $, fakeBackend, settle, tid } from './backend';
import { client, conn } from './fixtures';

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
const RUNNING = { base_url: 'http://127.0.0.1:40123', clients: ['sandbox-fedex'], skipped: [] };

describe('the sandbox in the window', () => {
  it('badges sandbox rows only', async () => {
    await start(
      fakeBackend({
        connections: [
          conn({ id: 'demo', label: 'Demo', sandbox: true }),
          conn({ id: 'real', label: 'Real', sandbox: false }),
        ],
      }),
    );
    expect($(tid('sandbox-badge'), row('demo')).hidden).toBe(false);
    expect($(tid('sandbox-badge'), row('demo')).textContent).toBe('Sandbox');
    expect($(tid('sandbox-badge'), row('real')).hidden).toBe(true);
  });

  it('has no sandbox bar without a sandbox', async () => {
    await start(fakeBackend({ connections: [conn({ id: 'real', sandbox: false })] }));
    expect($(tid('sandbox-bar')).hidden).toBe(true);
  });

  it('shows the running sandbox and its address, and stops it', async () => {
    const b = fakeBackend({
      appInfo: { sandbox: RUNNING },
      handlers: { stop_sandbox: () => null },
    });
    await start(b);
    const bar = $(tid('sandbox-bar'));
    expect(bar.hidden).toBe(false);
    expect(bar.dataset.state).toBe('running');
    expect($(tid('sandbox-state')).textContent).toContain('running at 127.0.0.1:40123');
    expect($(tid('sandbox-bar-start')).hidden).toBe(true);

    $(tid('sandbox-stop')).click();
    await settle();
    expect(b.callsTo('stop_sandbox')).toHaveLength(1);
    // Nothing of the sandbox left in the list: the bar goes away with it.
    expect(bar.hidden).toBe(true);
  });

  it('says a stopped sandbox is not running while its connections are listed, and starts it', async () => {
    const b = fakeBackend({
      connections: [conn({ id: 'demo', sandbox: true })],
      handlers: { start_sandbox: () => RUNNING },
    });
    await start(b);
    const bar = $(tid('sandbox-bar'));
    expect(bar.hidden).toBe(false);
    expect(bar.dataset.state).toBe('stopped');
    expect($(tid('sandbox-state')).textContent).toMatch(/^The sandbox is not running/);
    expect($(tid('sandbox-stop')).hidden).toBe(true);

    $(tid('sandbox-bar-start')).click();
    await settle();
    expect(b.callsTo('start_sandbox')).toHaveLength(1);
    expect(bar.dataset.state).toBe('running');
    expect($(tid('sandbox-dialog')).textContent).toContain('127.0.0.1:40123');
  });

  it('leaves the sandbox after a confirmation, and not without one', async () => {
    const b = fakeBackend({
      appInfo: { sandbox: RUNNING },
      connections: [conn({ id: 'demo', label: 'Demo', sandbox: true }), conn({ id: 'real', sandbox: false })],
      handlers: { leave_sandbox: () => ({ connections: ['Demo'], clients: ['sandbox-fedex', 'sandbox-iot'] }) },
    });
    await start(b);
    $(tid('sandbox-leave')).click();
    await settle();
    $(tid('confirm-cancel')).click();
    await settle();
    expect(b.callsTo('leave_sandbox')).toHaveLength(0);

    $(tid('sandbox-leave')).click();
    await settle();
    expect($(tid('confirm-dialog')).textContent).toContain('not touched');
    $(tid('confirm-ok')).click();
    await settle();
    expect(b.callsTo('leave_sandbox')).toHaveLength(1);
    expect(document.body.textContent).toContain('Left the sandbox: 1 demo connection and 2 demo clients removed');
    // The shell removes the rows through the change feed.
    await b.changed({ kind: 'connection_removed', id: 'demo' });
    expect($(tid('sandbox-bar')).hidden).toBe(true);
    expect(row('real')).toBeTruthy();
  });

  it('marks sandbox clients and offers to leave from Clients & settings', async () => {
    const b = fakeBackend({
      clients: [
        client({ id: 'x', name: 'sandbox-fedex', sandbox: true }),
        client({ id: 'y', name: 'mine', sandbox: false }),
      ],
    });
    await start(b);
    $(tid('nav-clients')).click();
    await settle();
    const item = (id: string) => $(`${tid('client-item')}[data-client-id="${id}"]`);
    expect(item('x').querySelector(tid('sandbox-badge'))).not.toBeNull();
    expect(item('y').querySelector(tid('sandbox-badge'))).toBeNull();
    expect($(tid('clients-sandbox-leave')).hidden).toBe(false);
  });

  it('shows a failed refresh of a stopped sandbox row as such, not as a crash', async () => {
    const message =
      'The sandbox is not running — start it from the window (Try the sandbox) or with `authdeckctl sandbox`, then try again.';
    await start(
      fakeBackend({
        connections: [conn({ id: 'demo', sandbox: true })],
        handlers: { refresh: () => Promise.reject({ code: 'sandbox_not_running', message }) },
      }),
    );
    $(tid('row-refresh'), row('demo')).click();
    await settle();
    const line = $(tid('row-error'), row('demo')).textContent ?? '';
    expect(line).toMatch(/^The sandbox is not running/);
    expect(line).toContain('Next: Start the sandbox');
  });

  it('words a sandbox client whose sandbox is not running', () => {
    const line = errorLine({
      code: 'sandbox_not_running',
      message:
        'The sandbox is not running — start it from the window (Try the sandbox) or with `authdeckctl sandbox`, then try again.',
    });
    expect(line).toMatch(/^The sandbox is not running/);
    expect(line).toContain('Next: Start the sandbox');
    expect(line).not.toMatch(/network/i);
  });
});
