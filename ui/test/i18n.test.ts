import { afterEach, describe, expect, it } from 'vitest';

import { mountWindow } from '../src/app';
import type { ErrorCode } from '../src/bindings/ErrorCode';
import { Ticker, formatCountdown } from '../src/countdown';
import { ACTION_LABEL, ERROR_ADVICE, describeError, errorLine } from '../src/errors';
import { en } from '../src/i18n/en';
import { formatInstant } from '../src/i18n/format';
import {
  CATALOGS,
  type MessageKey,
  language,
  languageOfLocale,
  reloadLanguage,
  setLanguageChoice,
  setThaiCalendar,
  t,
  tIn,
  tParts,
} from '../src/i18n/index';
import { th } from '../src/i18n/th';
import { $, fakeBackend, settle, tid } from './backend';
import { conn } from './fixtures';
import { scanFiles, scanSource } from './i18n-scan';

const SOURCES = import.meta.glob('../src/**/*.ts', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

afterEach(() => {
  localStorage.clear();
  reloadLanguage();
  document.body.innerHTML = '';
  delete document.documentElement.dataset.listReady;
});

describe('no user-visible text outside the catalogs', () => {
  it('finds no visible literal in the window’s sources', () => {
    expect(Object.keys(SOURCES).length).toBeGreaterThan(20);
    expect(scanFiles(SOURCES)).toEqual([]);
  });

  it('the scanner finds planted literals wherever text reaches the window', () => {
    const planted = [
      "h('p', {}, 'Hello');",
      "h('button', { 'aria-label': 'Close it' }, '×');",
      "h('input', { placeholder: 'Search…' });",
      "h('span', { title: `Demo $" + '{x}` });',
      "h('p', {}, ok ? t('a.b') : 'Nope');",
      "h('p', {}, `Connected $" + '{label}.`);',
      "el.textContent = 'Done';",
      "el.title = 'More';",
      "el.setAttribute('aria-label', 'Rows');",
      "setText(chip, 'Active');",
      "toast('Copied.');",
      "showError(slot, 'Pick one.');",
      "field('Name', input);",
      "select({}, [['raw', 'Raw id']]);",
      "confirmDialog({ title: 'Remove?', message: 'Gone for good', okLabel: 'Remove' });",
      "parent.append('text', node);",
      "banners.show('Problem: ' + e.message, 'error');",
      "document.createTextNode('ไทย');",
    ];
    for (const src of planted) {
      expect(scanSource('planted.ts', src), src).not.toEqual([]);
    }
    // Three literals in the confirm, all found, with their line.
    expect(scanSource('p.ts', "\n\nconfirmDialog({ title: 'A?', message: 'B', okLabel: 'C' });")).toEqual([
      { file: 'p.ts', line: 3, text: "'A?'", where: '{ title: }' },
      { file: 'p.ts', line: 3, text: "'B'", where: '{ message: }' },
      { file: 'p.ts', line: 3, text: "'C'", where: '{ okLabel: }' },
    ]);
    // And the whole tree with one planted file fails.
    expect(scanFiles({ ...SOURCES, '../src/views/planted.ts': "h('p', {}, 'Hello');" })).toHaveLength(1);
  });

  it('lets keys, punctuation, identifiers and the catalogs through', () => {
    const fine = [
      "h('p', { class: 'hint', 'data-testid': 'x' }, t('details.hint'), ' / ', '×', code(DEMO.user));",
      "el.textContent = '';",
      "setText(el, t('row.refresh'));",
      "toast(t('copy.done', { label, seconds: 3 }));",
      "el.setAttribute('aria-busy', 'true');",
      "const x = { code: 'internal', detail: null };",
    ];
    for (const src of fine) expect(scanSource('fine.ts', src), src).toEqual([]);
    expect(scanFiles({ '../src/i18n/en.ts': "h('p', {}, 'Hello');", '../src/bindings/X.ts': "toast('x');" })).toEqual(
      [],
    );
  });
});

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('the catalogs', () => {
  it('have the same keys and the same placeholders in both languages', () => {
    expect(Object.keys(th).sort()).toEqual(Object.keys(en).sort());
    for (const k of Object.keys(en) as MessageKey[]) {
      expect(placeholders(th[k]), k).toEqual(placeholders(en[k]));
      expect(th[k].trim(), k).not.toBe('');
    }
  });

  it('translate every sentence: the Thai text equals the English only for names and identifiers', () => {
    const same = (Object.keys(en) as MessageKey[]).filter((k) => th[k] === en[k]).sort();
    expect(same).toEqual(
      [
        'add.clientOption',
        'add.tab.fedex',
        'add.tab.flowaccount',
        'app.name',
        'clients.form.authUrl',
        'clients.form.authUrl.placeholder',
        'clients.form.authorizeUrl',
        'clients.form.basicAuth',
        'clients.form.body.form',
        'clients.form.body.multipart',
        'clients.form.clientId',
        'clients.form.secret',
        'clients.form.tokenUrl',
        'clients.provider.fedex',
        'clients.provider.flowaccount',
        'clients.redirect.label',
        'details.clientValue',
        'details.expiry',
        'details.expirySource',
        'details.history.count',
        'details.lastErrorValue',
        'details.userinfo',
        'devices.field.deviceId',
        'devices.field.token',
        'fa.paste.placeholder',
        'fedex.childKey',
        'fedex.childSecret',
        'header.version',
        'row.buttonLabel',
        'row.fedexChild',
        'sandbox.dialog.fedexChild',
        'sandbox.dialog.fedexChildValue',
        'team.address.placeholder',
        'time.absent',
      ].sort(),
    );
  });

  it('fills placeholders, and nodes in the language’s order', () => {
    expect(t('toast.connected', { label: 'Chiang Mai Crafts' })).toBe('Connected Chiang Mai Crafts.');
    expect(tIn('th', 'toast.connected', { label: 'Chiang Mai Crafts' })).toBe('เชื่อมต่อ Chiang Mai Crafts แล้ว');
    const code = document.createElement('code');
    const parts = tParts('sandbox.dialog.at', { url: code, clients: 'a, b' });
    expect(parts[1]).toBe(code);
    expect(parts.join('')).toContain('Sandbox clients pointing there: a, b.');
  });
});

describe('the language', () => {
  it('follows the OS locale: th_* is Thai, everything else English', () => {
    for (const l of ['th_TH.UTF-8', 'th-TH', 'th', 'TH_th', 'th_TH@buddhist'])
      expect(languageOfLocale(l), l).toBe('th');
    for (const l of ['en_US.UTF-8', 'C', 'C.UTF-8', 'POSIX', 'de-DE', 'thx', '', null]) {
      expect(languageOfLocale(l), String(l)).toBe('en');
    }
    expect(language()).toBe('en'); // jsdom's navigator.language is en-US
  });

  it('is kept across restarts (localStorage) and read again at start', () => {
    setLanguageChoice('th');
    expect(localStorage.getItem('authdeck.language')).toBe('th');
    expect(t('header.add')).toBe('เพิ่มการเชื่อมต่อ');
    expect(document.documentElement.lang).toBe('th');
    setLanguageChoice('system');
    expect(localStorage.getItem('authdeck.language')).toBeNull();
    expect(t('header.add')).toBe('Add connection');
    localStorage.setItem('authdeck.language', 'th');
    reloadLanguage(); // what a new start does
    expect(language()).toBe('th');
  });

  it('re-renders the window in the new language without a restart, keeping the view', async () => {
    const b = fakeBackend({ connections: [conn({ id: 'a', label: 'Chiang Mai Crafts', support_code: 'FA-100002' })] });
    const w = mountWindow(document.body, { ticker: new Ticker({ doc: null }) });
    await w.app.ready;
    expect($(tid('add-connection')).textContent).toBe('Add connection');
    $(tid('nav-clients')).click();
    await settle();
    const lang = $(tid('settings-language')) as HTMLSelectElement;
    lang.value = 'th';
    lang.dispatchEvent(new Event('change'));
    await w.app.ready;
    await settle();
    expect($(tid('add-connection')).textContent).toBe('เพิ่มการเชื่อมต่อ');
    expect(w.app.view).toBe('clients');
    expect($(tid('clients-view')).hidden).toBe(false);
    expect(document.querySelectorAll(tid('add-connection'))).toHaveLength(1); // the old window is gone
    expect($(`${tid('connection-row')} .row-sub`).textContent).toBe('รหัสลูกค้า FA-100002');
    await w.dispose();
    b.reset();
  });
});

describe('dates for display only', () => {
  const ISO = '2026-12-01T08:15:30Z';

  it('Thai shows Buddhist-era years by default, Gregorian on request; English Gregorian', () => {
    expect(formatInstant(ISO)).toContain('2026');
    setLanguageChoice('th');
    const be = formatInstant(ISO);
    expect(be).toContain('2569');
    expect(be).not.toContain('2026');
    expect(be).toMatch(/ธ\.ค\./);
    setThaiCalendar('gregory');
    const ce = formatInstant(ISO);
    expect(ce).toContain('2026');
    expect(ce).not.toContain('2569');
  });

  it('converts only RFC 3339 instants: a shown date is never converted twice', () => {
    setLanguageChoice('th');
    const once = formatInstant(ISO);
    expect(formatInstant(once)).toBe(once);
    expect(formatInstant(once)).not.toContain('3112'); // 2569 + 543
    // A bare Buddhist-era date string is not taken for a Gregorian one either.
    expect(formatInstant('1/12/2569')).toBe('1/12/2569');
    expect(formatInstant(null)).toBe('—');
  });

  it('keeps the ISO instant in the DOM’s datetime attribute and in what is sent', async () => {
    setLanguageChoice('th');
    const c = conn({ id: 'a', label: 'A' });
    const b = fakeBackend({
      connections: [c],
      handlers: {
        connection_details: () => ({
          connection: c,
          history: [{ at: ISO, event: 'connect', outcome: 'ok', count: 1 }],
        }),
      },
    });
    const w = mountWindow(document.body, { ticker: new Ticker({ doc: null }) });
    await w.app.ready;
    w.app.list.select('a');
    await settle();
    const time = $(`${tid('details-panel')} time`);
    expect(time.getAttribute('datetime')).toBe(ISO);
    expect(time.textContent).toContain('2569');
    // What went to the shell carries no displayed date.
    expect(JSON.stringify(b.calls)).not.toContain('2569');
    await w.dispose();
    b.reset();
  });

  it('counts down in Thai units', () => {
    setLanguageChoice('th');
    const now = 1_000_000_000_000;
    expect(formatCountdown(now + (59 * 60 + 12) * 1000, now)).toBe('59 นาที 12 วินาที');
    expect(formatCountdown(now + (2 * 86400 + 3 * 3600) * 1000, now)).toBe('2 วัน 3 ชม.');
    expect(formatCountdown(now - 4 * 60 * 1000, now)).toBe('หมดอายุ 4 นาทีที่แล้ว');
    expect(formatCountdown(null, now)).toBe('ไม่ทราบ');
    setLanguageChoice('en');
    expect(formatCountdown(now + (59 * 60 + 12) * 1000, now)).toBe('59m 12s');
  });
});

describe('error codes in both languages', () => {
  const codes = Object.keys(ERROR_ADVICE) as ErrorCode[];

  it('say what to do next, each code its own sentence, in each language', () => {
    for (const lang of ['en', 'th'] as const) {
      const sentences = codes.map((c) => CATALOGS[lang][ERROR_ADVICE[c].next]);
      expect(new Set(sentences).size, lang).toBe(codes.length);
    }
    expect(tIn('th', ERROR_ADVICE.reauthorization_required.next)).toBe('ต้องเชื่อมต่อธุรกิจนี้ใหม่');
    expect(ERROR_ADVICE.reauthorization_required.action).toBe('reconnect');
    expect(ERROR_ADVICE.sandbox_not_running.action).toBe('sandbox');
    expect(tIn('th', ACTION_LABEL.reconnect)).toBe('เชื่อมต่อใหม่');
  });

  it('a wrong FedEx child secret gets advice about the child credentials, said once', () => {
    const core = {
      code: 'invalid_client' as const,
      message:
        "FedEx rejected the credentials: connect again with the right child key and child secret, or check the project's API key and secret key in the client settings.",
    };
    const ctx = { provider: 'fedex' as const, child: true };
    // English: the core's sentence already says what to do; nothing said twice.
    expect(errorLine(core, ctx)).toBe(core.message);
    expect(errorLine(core, ctx)).not.toMatch(/Next:|client's ID/);
    expect(describeError(core, ctx).nextStep).toMatch(/^Check the child key and secret/);
    setLanguageChoice('th');
    expect(errorLine(core, ctx)).toMatch(/^ตรวจสอบ child key และ child secret/);
    // Without child credentials: the client's keys.
    setLanguageChoice('en');
    expect(describeError(core, { provider: 'fedex', child: false }).nextStep).toMatch(/client's ID and secret/);
    // A core sentence without a step of its own gets the window's.
    expect(errorLine({ code: 'keyring_unavailable', message: 'The system keyring is locked.' })).toBe(
      'The system keyring is locked. Next: Unlock your system keyring.',
    );
  });

  it('in Thai, the advice comes first and the core’s words follow', () => {
    setLanguageChoice('th');
    const e = { code: 'reauthorization_required' as const, message: 'The refresh token has expired' };
    expect(errorLine(e)).toBe('ต้องเชื่อมต่อธุรกิจนี้ใหม่ (The refresh token has expired.)');
    expect(describeError(e).action).toBe('reconnect');
  });
});
