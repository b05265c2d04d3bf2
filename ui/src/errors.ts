// Errors in plain words: the core's message says what happened; the next step, keyed
// by the stable ErrorCode, says what the person can do about it.

import type { CommandError } from './bindings/CommandError';
import type { ErrorCode } from './bindings/ErrorCode';
import type { LastError } from './bindings/LastError';

export const NEXT_STEP: Record<ErrorCode, string> = {
  reauthorization_required: 'Reconnect',
  invalid_client: "Check the client's ID and secret in Clients & settings",
  invalid_credentials: 'Check the username and password, then log in again',
  access_denied: 'Start the connection again and allow access in the browser',
  invalid_callback: 'Start the connection again from Authdeck',
  provider_unavailable: 'Try again later',
  rate_limited: 'Wait a minute, then try again',
  invalid_response: 'Try again later; if it keeps happening, tell support',
  provider_error: "Check the client's settings, then try again",
  keyring_unavailable: 'Unlock your system keyring',
  storage: "Check the disk space and permissions of Authdeck's data folder",
  not_found: 'It may have been removed elsewhere: the list is up to date',
  invalid_input: 'Check what you entered',
  already_exists: 'Pick another name',
  busy: 'Wait a moment, then try again',
  internal: 'Restart Authdeck; if it happens again, report it',
  sandbox_not_running: 'Start the sandbox (Clients & settings → Try the sandbox), then try again',
  team_unavailable: 'Check the connection to the team database, then try again',
};

export interface PlainError {
  message: string;
  nextStep: string;
  code: ErrorCode;
}

export function describeError(e: Pick<CommandError | LastError, 'code' | 'message'>): PlainError {
  const message = e.message.trim() || 'Something went wrong.';
  return { code: e.code, message, nextStep: NEXT_STEP[e.code] ?? NEXT_STEP.internal };
}

/** One line for a row or a banner: "The refresh token has expired. Next: Reconnect." */
export function errorLine(e: Pick<CommandError | LastError, 'code' | 'message'>): string {
  const d = describeError(e);
  const sentence = /[.!?]$/.test(d.message) ? d.message : `${d.message}.`;
  return `${sentence} Next: ${d.nextStep}.`;
}
