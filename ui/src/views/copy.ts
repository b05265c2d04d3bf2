// Copy non-secret text (a redirect URI, a sign-in address) to the clipboard; if the
// clipboard is refused, select the text in its field so Ctrl+C copies it.

import { t } from '../i18n/index';
import { toast } from './dialogs';

export async function copyText(text: string, fallback: HTMLInputElement, done: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast(done);
  } catch {
    fallback.focus();
    fallback.select();
    toast(t('common.copyFallback'));
  }
}
