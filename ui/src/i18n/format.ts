// Dates, times and countdowns for display, in the window's language. Instants are
// stored and sent as RFC 3339 / ISO 8601 (Gregorian, UTC); they are converted here, for
// display only, and only from RFC 3339: a displayed date (a Buddhist-era year) is never
// parsed and converted a second time.

import { intlLocale, t } from './index';

/** RFC 3339 date-time, as the core writes instants (`2026-12-01T08:15:00Z`, offsets, fractions). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

let cached: { locale: string; fmt: Intl.DateTimeFormat } | null = null;
function dateTimeFormat(): Intl.DateTimeFormat {
  const locale = intlLocale();
  if (cached?.locale !== locale) {
    cached = { locale, fmt: new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' }) };
  }
  return cached.fmt;
}

/**
 * A readable local date-time of an RFC 3339 instant ("—" when absent). Anything that is
 * not RFC 3339 (already formatted text) is returned as it is: never converted twice.
 */
export function formatInstant(iso: string | null | undefined): string {
  if (iso == null) return t('time.absent');
  if (!RFC3339.test(iso.trim())) return iso;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return dateTimeFormat().format(new Date(ms));
}

let cachedShort: { locale: string; time: Intl.DateTimeFormat; dateTime: Intl.DateTimeFormat } | null = null;

/**
 * A short local time of an RFC 3339 instant: "14:05" today, with the date on other days
 * ("—" when absent; other text as it is, like [`formatInstant`]).
 */
export function formatShortInstant(iso: string | null | undefined, now: Date = new Date()): string {
  if (iso == null) return t('time.absent');
  if (!RFC3339.test(iso.trim())) return iso;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const locale = intlLocale();
  if (cachedShort?.locale !== locale) {
    cachedShort = {
      locale,
      time: new Intl.DateTimeFormat(locale, { timeStyle: 'short' }),
      dateTime: new Intl.DateTimeFormat(locale, { dateStyle: 'short', timeStyle: 'short' }),
    };
  }
  const at = new Date(ms);
  return (at.toDateString() === now.toDateString() ? cachedShort.time : cachedShort.dateTime).format(at);
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "2d 3h", "23h 59m", "59m 12s", "42s" (Thai: "2 วัน 3 ชม." …): the text changes only when the value shown does. */
export function formatSpan(s: number): string {
  if (s >= DAY) return t('time.d', { d: Math.floor(s / DAY), h: Math.floor((s % DAY) / HOUR) });
  if (s >= HOUR) return t('time.h', { h: Math.floor(s / HOUR), m: Math.floor((s % HOUR) / MINUTE) });
  if (s >= MINUTE) return t('time.m', { m: Math.floor(s / MINUTE), s: s % MINUTE });
  return t('time.s', { s });
}

/** "expired 12s ago", "expired 4m ago", "expired 3h ago", "expired 2d ago". */
export function formatAgo(s: number): string {
  if (s < 1) return t('time.ago.now');
  if (s < MINUTE) return t('time.ago.s', { n: s });
  if (s < HOUR) return t('time.ago.m', { n: Math.floor(s / MINUTE) });
  if (s < DAY) return t('time.ago.h', { n: Math.floor(s / HOUR) });
  return t('time.ago.d', { n: Math.floor(s / DAY) });
}
