// Modal dialogs (focus trapped, Escape closes, focus restored), the confirmation
// dialog, and toasts. Plain elements rather than <dialog>: the same code runs in
// WebKitGTK and in jsdom tests.

import { h, uid } from '../dom';
import { t } from '../i18n/index';

export interface DialogOptions {
  title: string;
  testid?: string;
  /** Called once, however the dialog closes (Escape, backdrop, close()). */
  onClose?: () => void;
  className?: string;
}

export interface DialogHandle {
  el: HTMLElement;
  body: HTMLElement;
  close(): void;
  readonly open: boolean;
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(root.querySelectorAll<HTMLElement>(FOCUSABLE)).filter((el) => !el.closest('[hidden]'));
}

export function openDialog(opts: DialogOptions): DialogHandle {
  const titleId = uid('dialog-title');
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const body = h('div', { class: 'dialog-body' });
  const closeBtn = h(
    'button',
    { type: 'button', class: 'btn btn-ghost dialog-close', 'aria-label': t('dialog.close') },
    '×',
  );
  const el = h(
    'div',
    {
      class: `dialog ${opts.className ?? ''}`.trim(),
      role: 'dialog',
      'aria-modal': 'true',
      'aria-labelledby': titleId,
      'data-testid': opts.testid,
    },
    h('header', { class: 'dialog-header' }, h('h2', { id: titleId }, opts.title), closeBtn),
    body,
  );
  const overlay = h('div', { class: 'overlay' }, el);
  let isOpen = true;

  const close = (): void => {
    if (!isOpen) return;
    isOpen = false;
    overlay.remove();
    document.removeEventListener('keydown', onKey, true);
    opts.onClose?.();
    previous?.focus?.();
  };
  const onKey = (e: KeyboardEvent): void => {
    // Only the topmost dialog reacts.
    const overlays = document.querySelectorAll('.overlay');
    if (overlays[overlays.length - 1] !== overlay) return;
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === 'Tab') {
      const f = focusables(el);
      if (f.length === 0) return;
      const first = f[0]!;
      const last = f[f.length - 1]!;
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  closeBtn.addEventListener('click', close);
  overlay.addEventListener('mousedown', (e) => {
    if (e.target === overlay) close();
  });
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(overlay);
  // Focus the first field after the caller filled the body.
  queueMicrotask(() => {
    if (!isOpen || el.contains(document.activeElement)) return;
    const f = focusables(body);
    (f[0] ?? closeBtn).focus();
  });
  return {
    el,
    body,
    close,
    get open() {
      return isOpen;
    },
  };
}

export interface ConfirmOptions {
  title: string;
  message: string;
  okLabel: string;
  danger?: boolean;
}

/** Resolves true on OK; false on Cancel, Escape or the backdrop. */
export function confirmDialog(opts: ConfirmOptions): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = false;
    const d = openDialog({ title: opts.title, testid: 'confirm-dialog', onClose: () => resolve(answer) });
    const ok = h(
      'button',
      { type: 'button', class: `btn ${opts.danger ? 'btn-danger' : 'btn-primary'}`, 'data-testid': 'confirm-ok' },
      opts.okLabel,
    );
    const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel' }, t('dialog.cancel'));
    ok.addEventListener('click', () => {
      answer = true;
      d.close();
    });
    cancel.addEventListener('click', () => d.close());
    d.body.append(h('p', {}, opts.message), h('div', { class: 'dialog-actions' }, cancel, ok));
    queueMicrotask(() => cancel.focus());
  });
}

let toastHost: HTMLElement | null = null;

/** A short notice in a polite live region; disappears by itself. */
export function toast(message: string, kind: 'info' | 'error' = 'info', ms = 5000): HTMLElement {
  if (!toastHost?.isConnected) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastHost);
  }
  const t = h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast' }, message);
  toastHost.appendChild(t);
  setTimeout(() => t.remove(), ms);
  return t;
}
