import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import type { ActivityEntry } from '../src/bindings/ActivityEntry';
import { Ticker } from '../src/countdown';
import { setLanguageChoice } from '../src/i18n/index';
import { $, $$, fakeBackend, settle, tid } from './backend';
import { conn } from './fixtures';

let app: App | null = null;
let backend: ReturnType<typeof fakeBackend> | null = null;

afterEach(async () => {
  await app?.dispose();
  app = null;
  backend?.reset();
  backend = null;
  document.body.innerHTML = '';
  delete document.documentElement.dataset.listReady;
  setLanguageChoice('en');
});

async function start(b: ReturnType<typeof fakeBackend>): Promise<App> {
  backend = b;
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  return app;
}

function entry(over: Partial<ActivityEntry>): ActivityEntry {
  return {
    at: '2026-12-01T10:00:00Z',
    event: 'connect',
    outcome: 'ok',
    detail: null,
    count: 1,
    connection_id: 'c1',
    connection_label: 'Chiang Mai Crafts',
    provider: 'flowaccount',
    removed: false,
    ...over,
  };
}

const ENTRIES: ActivityEntry[] = [
  entry({ event: 'logout', connection_id: 'gone', connection_label: 'operator', provider: 'iot', removed: true }),
  entry({
    event: 'callback_rejected',
    outcome: 'invalid_callback',
    connection_id: null,
    connection_label: null,
    provider: null,
    count: 3,
  }),
  entry({ event: 'refresh', outcome: 'provider_unavailable', detail: 'The provider did not answer.' }),
  entry({ event: 'connect', connection_id: 'gone', connection_label: 'operator', provider: 'iot', removed: true }),
  entry({ event: 'connect' }),
];

const texts = () => $$(tid('activity-entry')).map((e) => e.textContent ?? '');

function pick(select: string, value: string): void {
  const s = $<HTMLSelectElement>(tid(select));
  s.value = value;
  s.dispatchEvent(new Event('change'));
}

describe('the activity view', () => {
  it('shows every event in plain words, a removed connection by its name, and filters', async () => {
    await start(
      fakeBackend({
        connections: [conn({ id: 'c1', label: 'Chiang Mai Crafts' })],
        handlers: { activity: () => ENTRIES },
      }),
    );
    expect($(tid('activity-view')).hidden).toBe(true);
    $(tid('nav-activity')).click();
    await settle();
    expect($(tid('activity-view')).hidden).toBe(false);
    expect($(tid('nav-activity')).getAttribute('aria-current')).toBe('page');
    expect($(tid('nav-connections')).hasAttribute('aria-current')).toBe(false);
    const all = texts();
    expect(all).toHaveLength(5);
    expect(all[0]).toContain('operator was logged out and removed.');
    expect(all[0]).toContain('Removed');
    expect(all[1]).toContain('A FlowAccount redirect was rejected');
    expect(all[1]).toContain('×3');
    expect(all[2]).toContain('Refreshing Chiang Mai Crafts failed.');
    expect(all[2]).toContain('The provider did not answer.');
    expect(all[4]).toContain('Chiang Mai Crafts was connected.');

    pick('activity-filter-kind', 'rejected');
    expect(texts()).toHaveLength(1);
    pick('activity-filter-kind', 'failure');
    expect(texts()).toHaveLength(2);
    pick('activity-filter-kind', 'removal');
    expect(texts()).toEqual([expect.stringContaining('operator was logged out')]);
    pick('activity-filter-kind', 'all');
    const options = $$<HTMLOptionElement>(`${tid('activity-filter-connection')} option`).map((o) => o.textContent);
    expect(options).toEqual(['All connections', 'Chiang Mai Crafts', 'operator (removed)', 'No connection']);
    pick('activity-filter-connection', 'gone');
    expect(texts()).toHaveLength(2);
    pick('activity-filter-kind', 'refresh');
    expect(texts()).toHaveLength(0);
    expect($(tid('activity-view')).textContent).toContain('No events match these filters.');
  });

  it('reads the events again when history is added while it shows', async () => {
    let entries = ENTRIES.slice(4);
    await start(fakeBackend({ handlers: { activity: () => entries } }));
    $(tid('nav-activity')).click();
    await settle();
    expect(texts()).toHaveLength(1);
    entries = ENTRIES;
    await backend?.changed({ kind: 'history_added', connection_id: null });
    await settle();
    expect(texts()).toHaveLength(5);
  });

  it('speaks Thai', async () => {
    setLanguageChoice('th');
    await start(fakeBackend({ handlers: { activity: () => ENTRIES } }));
    $(tid('nav-activity')).click();
    await settle();
    expect(texts()[0]).toContain('ออกจากระบบ operator และลบออกแล้ว');
    expect($(tid('nav-activity')).textContent).toBe('กิจกรรม');
  });
});

describe('export and keep fresh', () => {
  it('exports through the shell, which picks the file; says where it went', async () => {
    await start(
      fakeBackend({
        connections: [conn({ id: 'c1' })],
        handlers: { export_connections: (a) => (a.format === 'csv' ? '/home/u/authdeck-connections.csv' : null) },
      }),
    );
    $(tid('export-csv')).click();
    await settle();
    expect(backend?.callsTo('export_connections').map((c) => c.args.format)).toEqual(['csv']);
    expect($(tid('toast')).textContent).toContain('/home/u/authdeck-connections.csv');
    $(tid('export-json')).click();
    await settle();
    expect(backend?.callsTo('export_connections').map((c) => c.args.format)).toEqual(['csv', 'json']);
    expect($$(tid('toast'))).toHaveLength(1);
  });

  it('switches FedEx keep fresh from the details panel', async () => {
    const fedex = conn({ id: 'f1', provider: 'fedex', label: 'ship', keep_fresh: false });
    await start(
      fakeBackend({
        connections: [fedex],
        handlers: { set_keep_fresh: (a) => ({ ...fedex, keep_fresh: a.keepFresh as boolean }) },
      }),
    );
    app?.details.show(fedex);
    await settle();
    const box = $<HTMLInputElement>(tid('keep-fresh'));
    expect(box.checked).toBe(false);
    box.click();
    await settle();
    expect(backend?.callsTo('set_keep_fresh').map((c) => c.args)).toEqual([{ id: 'f1', keepFresh: true }]);
    expect($<HTMLInputElement>(tid('keep-fresh')).checked).toBe(true);
  });
});
