import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import type { AppInfo } from '../src/bindings/AppInfo';
import type { TeamState } from '../src/bindings/TeamState';
import { Ticker } from '../src/countdown';
import { setLanguageChoice } from '../src/i18n/index';
import { $, $$, APP_INFO, NOT_IN_TEAM, fakeBackend, settle, tid } from './backend';
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
});

async function start(b: ReturnType<typeof fakeBackend>): Promise<App> {
  backend = b;
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  await settle();
  return app;
}

const SEEN = new Date(Date.now() - 90_000).toISOString();
const FIRM: TeamState = {
  in_team: true,
  team_id: '0b7f2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b',
  team_name: 'Firm',
  database: '127.0.0.1:5432 database team',
  machine: 'desk-app',
  reachable: true,
  unreachable: null,
  last_known: false,
  checked_at: new Date().toISOString(),
  members: [
    {
      member: 'alice',
      machine: 'desk-app',
      kind: 'desktop',
      app_version: '0.1.0',
      last_seen: SEEN,
      this_machine: true,
    },
    { member: 'bob', machine: 'office-pc', kind: 'agent', app_version: '0.1.0', last_seen: SEEN, this_machine: false },
  ],
  leader: { member: 'bob', machine: 'office-pc' },
  last_refresh: null,
  refresh_lag_seconds: null,
  connections: 0,
};

const openClients = async () => {
  $<HTMLButtonElement>(tid('nav-clients')).click();
  await settle();
};

describe('the Team section and the header', () => {
  it('shows no team mark and the join form when not in a team', async () => {
    await start(fakeBackend());
    expect($(tid('header-team')).hidden).toBe(true);
    await openClients();
    expect($(tid('team-none')).textContent).toContain('not in a team');
    const note = $(tid('team-local-note')).textContent ?? '';
    expect(note).toContain("this window shows and refreshes the team's connections");
    expect(note).toContain('authdeckctl');
    expect(note).toContain('restart Authdeck');
    expect(note).not.toContain('kept on this desktop');
    expect($<HTMLInputElement>(tid('team-join-key')).type).toBe('password');
  });

  it('joins with the form: the key and password go once and the fields are cleared; the header follows', async () => {
    const b = fakeBackend({ handlers: { team_status: () => NOT_IN_TEAM, team_join: () => FIRM } });
    await start(b);
    await openClients();
    $<HTMLInputElement>(tid('team-address')).value = 'host=127.0.0.1 dbname=team';
    const key = $<HTMLInputElement>(tid('team-join-key'));
    const pw = $<HTMLInputElement>(tid('team-password'));
    key.value = 'adtk1_secret-key';
    pw.value = 'pw-1';
    $<HTMLButtonElement>(tid('team-join')).click();
    await settle();
    expect(key.value).toBe('');
    expect(pw.value).toBe('');
    expect(b.callsTo('team_join')).toEqual([
      {
        cmd: 'team_join',
        args: {
          input: {
            address: 'host=127.0.0.1 dbname=team',
            join_key: 'adtk1_secret-key',
            password: 'pw-1',
            machine: null,
          },
        },
      },
    ]);
    expect($(tid('header-team')).hidden).toBe(false);
    expect($(tid('header-team-name')).textContent).toBe('Team Firm');
    expect($(tid('header-team-reach')).textContent).toContain('reachable');
    expect($(tid('header-team-reach')).textContent).not.toContain('unreachable');
    const members = $$(tid('team-member'));
    expect(members.map((m) => m.dataset.machine)).toEqual(['desk-app', 'office-pc']);
    expect(members[0]!.textContent).toContain('(this machine)');
    expect(members[1]!.textContent).toContain('agent');
    expect(members[1]!.textContent).toMatch(/1m \d+s ago/);
    expect($(tid('team-status')).textContent).toContain('bob on office-pc');
    expect($$(tid('toast')).map((t) => t.textContent)).toContain(
      "Joined team Firm. Restart Authdeck to show the team's connections here.",
    );
    // Nothing shown holds the key.
    expect(document.body.innerHTML).not.toContain('adtk1_secret-key');
  });

  it('refuses an empty key without calling the shell', async () => {
    const b = fakeBackend();
    await start(b);
    await openClients();
    $<HTMLInputElement>(tid('team-address')).value = 'host=127.0.0.1 dbname=team';
    $<HTMLButtonElement>(tid('team-join')).click();
    await settle();
    expect($(tid('team-join-error')).textContent).toContain('join key');
    expect(b.callsTo('team_join')).toEqual([]);
  });

  it('says unreachable in words, with the last known status and its time', async () => {
    const down: TeamState = {
      ...FIRM,
      reachable: false,
      last_known: true,
      unreachable: 'The team database cannot be reached.',
    };
    await start(fakeBackend({ handlers: { team_status: () => down } }));
    expect($(tid('header-team-reach')).textContent).toContain('unreachable');
    expect($(tid('header-team')).dataset.reachable).toBe('false');
    expect($(tid('header-team')).title).toContain('last known status');
    await openClients();
    expect($(tid('team-last-known')).textContent).toContain('Last known status');
    expect($(tid('team-reachable')).textContent).toContain('unreachable');
    expect($$(tid('team-member'))).toHaveLength(2);
  });

  it('leaves after a confirmation that says what stays in the team, and not without one', async () => {
    const b = fakeBackend({ handlers: { team_status: () => FIRM, team_leave: () => NOT_IN_TEAM } });
    await start(b);
    await openClients();
    $<HTMLButtonElement>(tid('team-leave')).click();
    await settle();
    const dialog = $(tid('confirm-dialog'));
    expect(dialog.textContent).toContain('What stays in the team');
    expect(dialog.textContent).toContain('desk-app');
    $<HTMLButtonElement>(tid('confirm-cancel')).click();
    await settle();
    expect(b.callsTo('team_leave')).toEqual([]);
    $<HTMLButtonElement>(tid('team-leave')).click();
    await settle();
    $<HTMLButtonElement>(tid('confirm-ok')).click();
    await settle();
    expect(b.callsTo('team_leave')).toHaveLength(1);
    expect($(tid('header-team')).hidden).toBe(true);
    expect($(tid('team-none'))).toBeTruthy();
  });
});

describe('the list in team mode', () => {
  const TEAM_UP: AppInfo = {
    ...APP_INFO,
    store: { team: 'Firm', machine: 'desk-app', reachable: true, last_known_at: null },
  };
  const connectedBy = { member: 'alice', machine: 'desk-a', at: new Date().toISOString() };

  it('shows on each row who connected it and who last refreshed it, member and machine', async () => {
    const refreshedAt = new Date();
    refreshedAt.setHours(14, 5, 0, 0);
    const refreshed = conn({
      id: 'r',
      connected_by: connectedBy,
      refreshed_by: { member: 'bob', machine: 'office-pc', at: refreshedAt.toISOString() },
    });
    const fresh = conn({ id: 'f', connected_by: connectedBy });
    const local = conn({ id: 'l' });
    await start(fakeBackend({ connections: [refreshed, fresh, local], appInfo: TEAM_UP }));
    const line = (id: string) => $(`[data-testid="connection-row"][data-connection-id="${id}"] ${tid('row-team')}`);
    expect(line('r').textContent).toMatch(
      /^Refreshed by bob on office-pc at (14:05|2:05\sPM) · connected by alice on desk-a$/,
    );
    expect(line('r').hidden).toBe(false);
    expect(line('f').textContent).toBe('Connected by alice on desk-a');
    expect(line('l').hidden).toBe(true);
  });

  it('a change from another machine updates the row', async () => {
    const c = conn({ id: 'x', connected_by: connectedBy });
    const b = fakeBackend({ connections: [c], appInfo: TEAM_UP });
    await start(b);
    await b.changed({
      kind: 'connection_changed',
      connection: {
        ...c,
        updated_at: new Date(Date.parse(c.updated_at) + 1000).toISOString(),
        refreshed_by: { member: 'bob', machine: 'office-pc', at: new Date().toISOString() },
      },
    });
    const line = $(`[data-connection-id="x"] ${tid('row-team')}`);
    expect(line.textContent).toMatch(/^Refreshed by bob on office-pc at .* · connected by alice on desk-a$/);
  });

  it('says the store is unreachable and of when the list is, and clears by itself', async () => {
    let info: AppInfo = TEAM_UP;
    const asOf = new Date();
    asOf.setHours(14, 5, 0, 0);
    const b = fakeBackend({ handlers: { app_info: () => info } });
    await start(b);
    expect(document.querySelector(tid('team-down-banner'))).toBeNull();
    info = { ...TEAM_UP, store: { ...TEAM_UP.store, reachable: false, last_known_at: asOf.toISOString() } };
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    expect($(tid('team-down-banner')).textContent).toMatch(
      /^Team store unreachable — showing the list as of (14:05|2:05\sPM)\. Actions wait until it is back/,
    );
    expect($(tid('team-down-banner')).getAttribute('role')).toBe('alert');
    info = TEAM_UP;
    await b.changed({ kind: 'app_info_changed' });
    await settle();
    expect(document.querySelector(tid('team-down-banner'))).toBeNull();
  });

  it('says it in Thai too, also with no list known yet', async () => {
    setLanguageChoice('th');
    try {
      const none: AppInfo = { ...TEAM_UP, store: { ...TEAM_UP.store, reachable: false } };
      await start(fakeBackend({ connections: [conn({ id: 'y', connected_by: connectedBy })], appInfo: none }));
      expect($(tid('team-down-banner')).textContent).toContain('เชื่อมต่อที่เก็บข้อมูลของทีมไม่ได้');
      expect($(tid('team-down-banner')).textContent).toContain('ยังไม่มีรายการของทีม');
      expect($(`[data-connection-id="y"] ${tid('row-team')}`).textContent).toBe('เชื่อมต่อโดย alice บน desk-a');
    } finally {
      setLanguageChoice('system');
    }
  });
});
