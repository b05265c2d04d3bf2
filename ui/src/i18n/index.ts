// The window's languages: typed catalogs (en.ts is the source of the keys, th.ts must
// have exactly the same keys), `t(key, params)`, and the language and calendar the
// window uses. The language follows the OS locale (`th*` → Thai, anything else →
// English) unless the person picked one in Clients & settings; the choice is kept in
// localStorage. Changing it tells the listeners (main.ts re-mounts the window: no
// restart).

import { en } from './en';
import { th } from './th';

export type MessageKey = keyof typeof en;
/** A translation: every key of `en`, no other (a missing or extra key is a type error). */
export type Catalog = { readonly [K in MessageKey]: string };

/** `"{name}"` placeholders of a message, as a union of their names. */
type Placeholders<S extends string> = S extends `${string}{${infer P}}${infer Rest}` ? P | Placeholders<Rest> : never;
export type MessageParams<K extends MessageKey> = Record<Placeholders<(typeof en)[K]>, string | number>;
/** The keys whose message has no placeholder (usable where only the key is known, e.g. maps). */
export type PlainKey = { [K in MessageKey]: [Placeholders<(typeof en)[K]>] extends [never] ? K : never }[MessageKey];
type ParamArgs<K extends MessageKey> = [Placeholders<(typeof en)[K]>] extends [never] ? [] : [MessageParams<K>];

export type Language = 'en' | 'th';
/** What the person picked: a language, or the OS's. */
export type LanguageChoice = Language | 'system';
/** Thai dates: Buddhist era (the Thai default) or Gregorian years. */
export type ThaiCalendar = 'buddhist' | 'gregory';

export const CATALOGS: Record<Language, Catalog> = { en, th };
export const LANGUAGES: readonly Language[] = ['th', 'en'];

const LANGUAGE_KEY = 'authdeck.language';
const CALENDAR_KEY = 'authdeck.calendar';

let systemLocale: string = typeof navigator !== 'undefined' ? navigator.language || 'en' : 'en';
let current: Language = resolve();
const listeners = new Set<(lang: Language) => void>();

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

/** `th_TH.UTF-8`, `th-TH`, `th` → Thai; everything else → English. */
export function languageOfLocale(locale: string | null | undefined): Language {
  return locale != null && /^th([-_.@]|$)/i.test(locale.trim()) ? 'th' : 'en';
}

export function languageChoice(): LanguageChoice {
  const v = storage()?.getItem(LANGUAGE_KEY);
  return v === 'en' || v === 'th' ? v : 'system';
}

export function thaiCalendar(): ThaiCalendar {
  return storage()?.getItem(CALENDAR_KEY) === 'gregory' ? 'gregory' : 'buddhist';
}

function resolve(): Language {
  const choice = languageChoice();
  return choice === 'system' ? languageOfLocale(systemLocale) : choice;
}

/** The language the window shows. */
export function language(): Language {
  return current;
}

/** The BCP 47 tag for `Intl`: `th-TH` (Buddhist era), `th-TH-u-ca-gregory`, or `en`. */
export function intlLocale(): string {
  if (current === 'th') return thaiCalendar() === 'gregory' ? 'th-TH-u-ca-gregory' : 'th-TH';
  return systemLocale.toLowerCase().startsWith('en') ? systemLocale.replace('_', '-').split('.')[0]! : 'en';
}

function changed(): void {
  current = resolve();
  if (typeof document !== 'undefined') document.documentElement.lang = current;
  for (const l of listeners) l(current);
}

/** The OS locale the window goes by (`navigator.language`, or what the shell reported). */
export function systemLanguageTag(): string {
  return systemLocale;
}

/** The OS locale as the shell reports it (overrides `navigator.language`). */
export function setSystemLocale(locale: string | null | undefined): void {
  if (!locale || locale === systemLocale) return;
  systemLocale = locale;
  if (resolve() !== current) changed();
}

/** Pick a language (or the OS's) and keep the choice across restarts. */
export function setLanguageChoice(choice: LanguageChoice): void {
  const s = storage();
  if (choice === 'system') s?.removeItem(LANGUAGE_KEY);
  else s?.setItem(LANGUAGE_KEY, choice);
  changed();
}

export function setThaiCalendar(cal: ThaiCalendar): void {
  storage()?.setItem(CALENDAR_KEY, cal);
  changed();
}

/** Called after the language or calendar changed; returns the unsubscribe. */
export function onLanguageChange(listener: (lang: Language) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Read the stored choice again (tests; another window changed it). */
export function reloadLanguage(): void {
  changed();
}

/** The message `key` in the window's language, `{name}` placeholders filled. */
export function t<K extends MessageKey>(key: K, ...params: ParamArgs<K>): string {
  return format(CATALOGS[current][key] ?? en[key], params[0]);
}

/** The message in a given language (tests, the language picker's own names). */
export function tIn<K extends MessageKey>(lang: Language, key: K, ...params: ParamArgs<K>): string {
  return format(CATALOGS[lang][key], params[0]);
}

/**
 * The message with some placeholders filled by nodes (a `<code>` address inside a
 * sentence): text and nodes in the order the language puts them.
 */
export function tParts<K extends MessageKey>(
  key: K,
  params: Record<Placeholders<(typeof en)[K]>, string | number | Node>,
): (string | Node)[] {
  const template: string = CATALOGS[current][key] ?? en[key];
  const out: (string | Node)[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    const value = (params as Record<string, string | number | Node>)[m[1]!];
    if (value === undefined) continue;
    if (m.index! > last) out.push(template.slice(last, m.index));
    out.push(typeof value === 'object' ? value : String(value));
    last = m.index! + m[0].length;
  }
  if (last < template.length) out.push(template.slice(last));
  return out;
}

function format(template: string, params: Record<string, string | number> | undefined): string {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

if (typeof document !== 'undefined') document.documentElement.lang = current;
