// THE adapter to the Rust shell: every `invoke` of the UI goes through here, typed with
// the ts-rs bindings. Views import `api`, never `@tauri-apps/api` itself, so tests can
// stand in for the backend with mockIPC. Changes arrive through a command too (`changes`,
// a long poll), not Tauri events: see src-tauri/src/changes.rs.

import { invoke } from '@tauri-apps/api/core';

import type { ActivityEntry } from './bindings/ActivityEntry';
import type { AppInfo } from './bindings/AppInfo';
import type { Changes } from './bindings/Changes';
import type { Client } from './bindings/Client';
import type { CommandError } from './bindings/CommandError';
import type { Connection } from './bindings/Connection';
import type { ConnectionDetails } from './bindings/ConnectionDetails';
import type { Device } from './bindings/Device';
import type { DeviceCheckReport } from './bindings/DeviceCheckReport';
import type { ErrorCode } from './bindings/ErrorCode';
import type { ExportFormat } from './bindings/ExportFormat';
import type { FedexConnectInput } from './bindings/FedexConnectInput';
import type { FlowAccountStart } from './bindings/FlowAccountStart';
import type { HistoryEntry } from './bindings/HistoryEntry';
import type { IotConnectInput } from './bindings/IotConnectInput';
import type { LeaveReport } from './bindings/LeaveReport';
import type { LogoutOutcome } from './bindings/LogoutOutcome';
import type { NewClientInput } from './bindings/NewClientInput';
import type { NewDeviceInput } from './bindings/NewDeviceInput';
import type { SandboxInfo } from './bindings/SandboxInfo';
import type { Snapshot } from './bindings/Snapshot';
import type { TeamJoinInput } from './bindings/TeamJoinInput';
import type { TeamState } from './bindings/TeamState';
import { ERROR_ADVICE } from './errors';
import { t } from './i18n/index';

// Every code the shell sends: `ERROR_ADVICE` is a Record<ErrorCode, …>, so the type checker
// keeps it complete when a code is added (a second hand-kept list fell behind once).
const KNOWN_CODES: ReadonlySet<string> = new Set<string>(Object.keys(ERROR_ADVICE));

/**
 * Commands reject with a `CommandError`. Anything else (a string from a missing
 * command, a JS exception) is turned into one so views handle a single shape.
 */
export function toCommandError(e: unknown): CommandError {
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const { code, message, detail } = e as { code: unknown; message: unknown; detail?: unknown };
    if (typeof code === 'string' && KNOWN_CODES.has(code) && typeof message === 'string') {
      return { code: code as ErrorCode, message, detail: typeof detail === 'string' ? detail : null };
    }
  }
  const message = typeof e === 'string' ? e : e instanceof Error ? e.message : t('error.internalFallback');
  return { code: 'internal', message, detail: null };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toCommandError(e);
  }
}

/** One typed wrapper per Tauri command; argument keys exactly as the shell expects. */
export const api = {
  appInfo: () => call<AppInfo>('app_info'),
  /** Everything the window shows (a resync, or no first snapshot in the page). */
  snapshot: () => call<Snapshot>('snapshot'),
  /** The changes after version `after`; answers as soon as there is one (or empty, later). */
  changes: (after: number) => call<Changes>('changes', { after }),
  connectionDetails: (id: string) => call<ConnectionDetails>('connection_details', { id }),
  listClients: () => call<Client[]>('list_clients'),
  addClient: (input: NewClientInput) => call<Client>('add_client', { input }),
  removeClient: (name: string) => call<null>('remove_client', { name }),
  /** `client`: the client's id or name. The shell has already opened the browser. */
  connectFlowaccount: (client: string) => call<FlowAccountStart>('connect_flowaccount', { client }),
  /** Give up a started authorization (its loopback listener stops); `false` if it had ended. */
  cancelFlowaccount: (id: string) => call<boolean>('cancel_flowaccount', { id }),
  /** Open the authorize page of pending authorization `id` (this window's) again. */
  openAuthorizeUrl: (id: string) => call<null>('open_authorize_url', { id }),
  completeCallback: (url: string) => call<Connection>('complete_callback', { url }),
  connectFedex: (input: FedexConnectInput) => call<Connection>('connect_fedex', { input }),
  connectIot: (input: IotConnectInput) => call<Connection>('connect_iot', { input }),
  refresh: (id: string) => call<Connection>('refresh', { id }),
  logout: (id: string) => call<LogoutOutcome>('logout', { id }),
  /** Ask the provider whether it accepts the connection now; the outcome is kept on it. */
  check: (id: string) => call<Connection>('check', { id }),
  /** The person's own name for a connection; null removes it. */
  setLabel: (id: string, name: string | null) => call<Connection>('set_label', { id, name }),
  /** Rust writes the clipboard: the token never reaches JS. */
  /** Rust writes the token to the clipboard; resolves to the seconds until it clears it. */
  copyAccessToken: (id: string) => call<number>('copy_access_token', { id }),
  history: (id: string | null) => call<HistoryEntry[]>('history', { id }),
  /** Every history event across connections, named by connection (also removed ones). */
  activity: () => call<ActivityEntry[]>('activity'),
  /** FedEx only: re-request the token in the background before it expires. */
  setKeepFresh: (id: string, keepFresh: boolean) => call<Connection>('set_keep_fresh', { id, keepFresh }),
  /** The shell asks where to save (save dialog) and writes the list; the path, or null if cancelled. */
  exportConnections: (format: ExportFormat) => call<string | null>('export_connections', { format }),
  startSandbox: () => call<SandboxInfo>('start_sandbox'),
  stopSandbox: () => call<null>('stop_sandbox'),
  /** Logs out and removes every sandbox connection and client, then stops the sandbox. */
  leaveSandbox: () => call<LeaveReport>('leave_sandbox'),
  listDevices: () => call<Device[]>('list_devices'),
  addDevice: (input: NewDeviceInput) => call<Device>('add_device', { input }),
  /** The read-only check (the device reads its own shadow); recorded on the device. */
  checkDevice: (id: string) => call<DeviceCheckReport>('check_device', { id }),
  removeDevice: (id: string) => call<Device>('remove_device', { id }),
  /** Rust writes `Authorization: Device <ClientID>:<Token>` to the clipboard; the seconds until it clears it. */
  copyDeviceRestHeader: (id: string) => call<number>('copy_device_rest_header', { id }),
  /** Rust writes the device's MQTT settings to the clipboard; the seconds until it clears it. */
  copyDeviceMqttSettings: (id: string) => call<number>('copy_device_mqtt_settings', { id }),
  /** The first list is on screen: the shell records the start-up time. */
  markReady: () => call<null>('mark_ready'),
  /** The team now, or its last known status when the database does not answer. */
  teamStatus: () => call<TeamState>('team_status'),
  /** The join key and password go in once and never come back. */
  teamJoin: (input: TeamJoinInput) => call<TeamState>('team_join', { input }),
  teamLeave: () => call<TeamState>('team_leave'),
};

export type Api = typeof api;

/** The global the shell fills with the first snapshot before the page's scripts run. */
export const SNAPSHOT_GLOBAL = '__AUTHDECK_SNAPSHOT__';

/**
 * The snapshot the shell put in the page (src-tauri/src/startup.rs), taken once: the
 * first list renders without waiting for IPC. Null when there is none (a dev server,
 * tests).
 */
export function takeFirstSnapshot(): Snapshot | null {
  const w = window as unknown as Record<string, Snapshot | undefined>;
  const s = w[SNAPSHOT_GLOBAL] ?? null;
  delete w[SNAPSHOT_GLOBAL];
  return s;
}
