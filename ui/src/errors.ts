// Errors in plain words: the core's message says what happened; the next step, keyed
// by the stable ErrorCode, says what the person can do about it, in the window's
// language, with the button that does it where there is one.

import type { CommandError } from './bindings/CommandError';
import type { ErrorCode } from './bindings/ErrorCode';
import type { LastError } from './bindings/LastError';
import type { Provider } from './bindings/Provider';
import { type PlainKey, language, t } from './i18n/index';

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
  team_unavailable: { next: 'error.team_unavailable', action: null },
};

export const ACTION_LABEL: Record<ErrorAction, PlainKey> = {
  reconnect: 'error.action.reconnect',
  clients: 'error.action.clients',
  sandbox: 'error.action.sandbox',
};

/** What the failed call was about, where the advice depends on it. */
export interface ErrorContext {
  provider?: Provider;
  /** FedEx: the request carried the connection's child key and secret. */
  child?: boolean;
}

/** The advice for `code`, by cause where the code alone is too coarse. */
export function adviceFor(code: ErrorCode, ctx: ErrorContext = {}): ErrorAdvice {
  // FedEx answers a wrong child secret like a wrong project secret: the child
  // credentials are the connection's (typed when connecting), so they come first.
  if (code === 'invalid_client' && ctx.provider === 'fedex' && ctx.child) {
    return { next: 'error.invalid_client.fedexChild', action: 'clients' };
  }
  if (code === 'reauthorization_required' && ctx.provider === 'iot') {
    return { next: 'error.reauthorization_required.iot', action: 'reconnect' };
  }
  return ERROR_ADVICE[code] ?? ERROR_ADVICE.internal;
}

/** The next step for `code`, in the window's language. */
export function nextStep(code: ErrorCode, ctx?: ErrorContext): string {
  return t(adviceFor(code, ctx).next);
}

/**
 * Whether the core's sentence already ends in a next step ("…: check them in the client
 * settings."), as crates/core/src/providers/error/messages.rs writes provider errors:
 * then the English line does not say it a second time.
 */
export function hasOwnAdvice(message: string): boolean {
  return /:\s+(check|connect|log in|try|wait|approve|add|start|unlock|pick|enter|open|paste|restart|use|reconnect)\b[^:]*$/i.test(
    message.trim(),
  );
}

export interface PlainError {
  message: string;
  nextStep: string;
  code: ErrorCode;
  action: ErrorAction | null;
}

export function describeError(e: Pick<CommandError | LastError, 'code' | 'message'>, ctx?: ErrorContext): PlainError {
  const message = e.message.trim() || t('error.fallback');
  const advice = adviceFor(e.code, ctx);
  return { code: e.code, message, nextStep: t(advice.next), action: advice.action };
}

/**
 * One line for a row or a banner. English: the core's sentence, then "Next: …" unless
 * it already says what to do ("The refresh token has expired. Next: Reconnect.").
 * Thai: the next step in Thai first, the core's (English) words after it.
 */
export function errorLine(e: Pick<CommandError | LastError, 'code' | 'message'>, ctx?: ErrorContext): string {
  const d = describeError(e, ctx);
  const sentence = /[.!?]$/.test(d.message) ? d.message : `${d.message}.`;
  // The core writes English: its own advice replaces the step only in the English line.
  if (language() === 'en' && hasOwnAdvice(sentence)) return sentence;
  return t('error.line', { message: sentence, next: d.nextStep });
}
