// Errors in plain words: the core's message says what happened; the next step, keyed
// by the stable ErrorCode, says what the person can do about it, in the window's
// language, with the button that does it where there is one.

import type { CommandError } from './bindings/CommandError';
import type { ErrorCode } from './bindings/ErrorCode';
import type { LastError } from './bindings/LastError';
import { type PlainKey, t } from './i18n/index';

/** A button an error offers: reconnect the connection, open Clients & settings, start the sandbox. */
export type ErrorAction = 'reconnect' | 'clients' | 'sandbox';

export interface ErrorAdvice {
  /** The next step, one sentence per language. */
  next: PlainKey;
  action: ErrorAction | null;
}

/** Every ErrorCode (a Record: the type checker keeps it complete when a code is added). */
export const ERROR_ADVICE: Record<ErrorCode, ErrorAdvice> = {
  reauthorization_required: { next: 'error.reauthorization_required', action: 'reconnect' },
  invalid_client: { next: 'error.invalid_client', action: 'clients' },
  invalid_credentials: { next: 'error.invalid_credentials', action: null },
  access_denied: { next: 'error.access_denied', action: null },
  invalid_callback: { next: 'error.invalid_callback', action: null },
  provider_unavailable: { next: 'error.provider_unavailable', action: null },
  rate_limited: { next: 'error.rate_limited', action: null },
  invalid_response: { next: 'error.invalid_response', action: null },
  provider_error: { next: 'error.provider_error', action: 'clients' },
  keyring_unavailable: { next: 'error.keyring_unavailable', action: null },
  storage: { next: 'error.storage', action: null },
  not_found: { next: 'error.not_found', action: null },
  invalid_input: { next: 'error.invalid_input', action: null },
  already_exists: { next: 'error.already_exists', action: null },
  busy: { next: 'error.busy', action: null },
  internal: { next: 'error.internal', action: null },
  sandbox_not_running: { next: 'error.sandbox_not_running', action: 'sandbox' },
};

export const ACTION_LABEL: Record<ErrorAction, PlainKey> = {
  reconnect: 'error.action.reconnect',
  clients: 'error.action.clients',
  sandbox: 'error.action.sandbox',
};

/** The next step for `code`, in the window's language. */
export function nextStep(code: ErrorCode): string {
  return t((ERROR_ADVICE[code] ?? ERROR_ADVICE.internal).next);
}

export interface PlainError {
  message: string;
  nextStep: string;
  code: ErrorCode;
  action: ErrorAction | null;
}

export function describeError(e: Pick<CommandError | LastError, 'code' | 'message'>): PlainError {
  const message = e.message.trim() || t('error.fallback');
  const advice = ERROR_ADVICE[e.code] ?? ERROR_ADVICE.internal;
  return { code: e.code, message, nextStep: t(advice.next), action: advice.action };
}

/** One line for a row or a banner: "The refresh token has expired. Next: Reconnect." */
export function errorLine(e: Pick<CommandError | LastError, 'code' | 'message'>): string {
  const d = describeError(e);
  const sentence = /[.!?]$/.test(d.message) ? d.message : `${d.message}.`;
  return t('error.line', { message: sentence, next: d.nextStep });
}
