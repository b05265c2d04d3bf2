// A fake Tauri backend for DOM tests: mockIPC, a call log, per-command overrides, and a
// change feed (`changes`, a long poll) that `changed` / `callback` add to.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';

import type { AppInfo } from '../src/bindings/AppInfo';
import type { CallbackResult } from '../src/bindings/CallbackResult';
import type { ChangeEvent } from '../src/bindings/ChangeEvent';
import type { Changes } from '../src/bindings/Changes';
import type { Client } from '../src/bindings/Client';
import type { Connection } from '../src/bindings/Connection';
import type { Snapshot } from '../src/bindings/Snapshot';
import type { TeamState } from '../src/bindings/TeamState';

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

export type Handler = (args: Record<string, unknown>) => unknown;

export const APP_INFO: AppInfo = {
  version: '0.1.0',
  redirect_uri: 'io.authdeck.app://callback',
  scheme: 'io.authdeck.app',
  data_dir: '/tmp/authdeck',
  single_instance: true,
  deep_link_problem: null,
  sandbox: null,
  unsaved_tokens: [],
  store: { team: null, machine: null, reachable: true, last_known_at: null },
};

export const NOT_IN_TEAM: TeamState = {
  in_team: false,
  team_id: null,
  team_name: null,
  database: null,
  machine: null,
  reachable: false,
  unreachable: null,
  last_known: false,
  checked_at: null,
  members: [],
  leader: null,
  last_refresh: null,
  refresh_lag_seconds: null,
  connections: null,
};

export function fakeBackend(
  opts: {
    connections?: Connection[];
    clients?: Client[];
    appInfo?: Partial<AppInfo>;
    handlers?: Record<string, Handler>;
  } = {},
) {
  const calls: Call[] = [];
  const appInfo = (): AppInfo => ({ ...APP_INFO, ...opts.appInfo });
  // The change feed: event i has version i + 1.
  const feed: ChangeEvent[] = [];
  let waiting: (() => void)[] = [];
  const changesAfter = (after: number): Changes => ({ version: feed.length, events: feed.slice(after), resync: false });
  const handlers: Record<string, Handler> = {
    app_info: appInfo,
    snapshot: (): Snapshot => ({ version: feed.length, app_info: appInfo(), connections: opts.connections ?? [] }),
    changes: (a) => {
      const after = a.after as number;
      if (after < feed.length) return changesAfter(after);
      return new Promise((resolve) => waiting.push(() => resolve(changesAfter(after))));
    },
    list_clients: () => opts.clients ?? [],
    team_status: () => NOT_IN_TEAM,
    connection_details: (a) => ({
      connection: (opts.connections ?? []).find((c) => c.id === a.id),
      history: [],
    }),
    ...opts.handlers,
  };
  mockIPC((cmd, payload) => {
    const args = (payload ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args });
    const h = handlers[cmd];
    if (!h) return Promise.reject({ code: 'internal', message: `no fake for ${cmd}` });
    return h(args);
  });
  /** Add a change to the feed; waits until the window has had it. */
  const changed = async (event: ChangeEvent): Promise<void> => {
    feed.push(event);
    const w = waiting;
    waiting = [];
    for (const wake of w) wake();
    await settle();
  };
  return {
    calls,
    handlers,
    callsTo: (cmd: string) => calls.filter((c) => c.cmd === cmd),
    changed,
    callback: (result: CallbackResult) => changed({ kind: 'redirect_finished', result }),
    reset: () => clearMocks(),
  };
}

/** Let pending promises (IPC round trips, microtasks) settle. */
export async function settle(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise((r) => setTimeout(r, 0));
}

export const $ = <T extends Element = HTMLElement>(sel: string, root: ParentNode = document): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`no element for ${sel}`);
  return el;
};
export const $$ = <T extends Element = HTMLElement>(sel: string, root: ParentNode = document): T[] =>
  Array.from(root.querySelectorAll<T>(sel));
export const tid = (id: string) => `[data-testid="${id}"]`;
