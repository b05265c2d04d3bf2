// Small render helpers: plain DOM, no framework. Attributes only, never style
// attributes (the app's CSP is `default-src 'self'`; only the virtual list positions
// its rows, through the CSSOM, which the CSP allows).

type Child = Node | string | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined;

/** `h('button', { class: 'x', 'data-testid': 'row-refresh' }, 'Refresh')`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, AttrValue> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** Write an element's text only when it differs (keeps DOM writes to what changed). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Replace all children. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.textContent = '';
  append(parent, ...children);
}

let nextId = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** Local, readable date-time of an RFC 3339 instant, in the window's language (see i18n/format.ts). */
export { formatInstant } from './i18n/format';
