// Language and dates (in Clients & settings): the window's language (the system's, Thai
// or English) and, for Thai, Buddhist-era or Gregorian years. Kept across restarts; the
// window re-renders at once (main.ts).

import { h } from '../dom';
import {
  type LanguageChoice,
  type ThaiCalendar,
  languageChoice,
  languageOfLocale,
  setLanguageChoice,
  setThaiCalendar,
  systemLanguageTag,
  t,
  thaiCalendar,
} from '../i18n/index';
import { field, select } from './form';

export function settingsCard(): HTMLElement {
  const system = languageOfLocale(systemLanguageTag()) === 'th' ? t('settings.language.th') : t('settings.language.en');
  const lang = select({ 'data-testid': 'settings-language' }, [
    ['system', t('settings.language.system', { language: system })],
    ['th', t('settings.language.th')],
    ['en', t('settings.language.en')],
  ]);
  lang.value = languageChoice();
  lang.addEventListener('change', () => setLanguageChoice(lang.value as LanguageChoice));
  const cal = select({ 'data-testid': 'settings-calendar' }, [
    ['buddhist', t('settings.calendar.buddhist')],
    ['gregory', t('settings.calendar.gregory')],
  ]);
  cal.value = thaiCalendar();
  cal.addEventListener('change', () => setThaiCalendar(cal.value as ThaiCalendar));
  return h(
    'div',
    { class: 'card', 'data-testid': 'settings-card' },
    h('h3', {}, t('settings.title')),
    field(t('settings.language'), lang),
    field(t('settings.calendar'), cal, t('settings.calendar.hint')),
  );
}
