// The scanner behind test/i18n.test.ts: finds user-visible string literals outside the
// catalogs (src/i18n/). It parses each source with the TypeScript compiler and looks at
// the places text reaches the window: children of h() and of append/replaceChildren,
// setText, toast, showError, field labels and hints, the text of <select> options,
// confirm/dialog titles and messages, visible attributes (aria-label, title,
// placeholder, alt …) in h()'s attributes or setAttribute, and assignments to
// textContent / innerText / title / placeholder / ariaLabel / data / innerHTML (and
// the same attributes and properties in any object literal). A
// literal is "visible" when it contains a letter (punctuation such as ' / ' or '×' is
// not language). Conditionals, ??, ||, && and + are looked through; calls (t('key'))
// are not.

import ts from 'typescript';

export interface Finding {
  file: string;
  line: number;
  text: string;
  where: string;
}

const VISIBLE_ATTRS = new Set([
  'aria-label',
  'aria-description',
  'aria-roledescription',
  'aria-valuetext',
  'aria-placeholder',
  'title',
  'placeholder',
  'alt',
  'label',
]);
const VISIBLE_PROPS = new Set([
  'textContent',
  'innerText',
  'innerHTML',
  'outerHTML',
  'title',
  'placeholder',
  'ariaLabel',
  'ariaDescription',
  'data',
  'label',
  'alt',
]);
/** Object-literal properties whose value is shown (dialog titles, confirm texts, error messages). */
const VISIBLE_KEYS = new Set(['title', 'message', 'okLabel', 'cancelLabel', 'label', 'text', 'placeholder']);
/** Calls and which of their arguments are shown (-1: from that index on, all). */
const CALLS: Record<string, { from?: number; at?: number[] }> = {
  h: { from: 2 },
  append: { from: 0 },
  prepend: { from: 0 },
  after: { from: 0 },
  before: { from: 0 },
  replaceChildren: { from: 0 },
  replaceWith: { from: 0 },
  createTextNode: { at: [0] },
  setText: { at: [1] },
  toast: { at: [0] },
  showError: { at: [1] },
  field: { at: [0, 2] },
  alert: { at: [0] },
  confirm: { at: [0] },
  prompt: { at: [0] },
  show: { at: [0] },
  set: { at: [0] },
};
const HAS_LETTER = /\p{L}/u;

function calleeName(e: ts.LeftHandSideExpression): string | null {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return null;
}

function propName(n: ts.PropertyName): string | null {
  if (ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text;
  return null;
}

/** The literal parts of `e` that would be shown as they are. */
function visibleLiterals(e: ts.Expression | undefined, out: ts.Node[] = []): ts.Node[] {
  if (!e) return out;
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) {
    if (HAS_LETTER.test(e.text)) out.push(e);
  } else if (ts.isTemplateExpression(e)) {
    const parts = [e.head.text, ...e.templateSpans.map((s) => s.literal.text)];
    if (parts.some((p) => HAS_LETTER.test(p))) out.push(e);
  } else if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e)) {
    visibleLiterals(e.expression, out);
  } else if (ts.isConditionalExpression(e)) {
    visibleLiterals(e.whenTrue, out);
    visibleLiterals(e.whenFalse, out);
  } else if (ts.isBinaryExpression(e)) {
    const op = e.operatorToken.kind;
    if (
      op === ts.SyntaxKind.PlusToken ||
      op === ts.SyntaxKind.QuestionQuestionToken ||
      op === ts.SyntaxKind.BarBarToken ||
      op === ts.SyntaxKind.AmpersandAmpersandToken
    ) {
      visibleLiterals(e.left, out);
      visibleLiterals(e.right, out);
    }
  } else if (ts.isArrayLiteralExpression(e)) {
    for (const el of e.elements) visibleLiterals(ts.isSpreadElement(el) ? el.expression : el, out);
  } else if (ts.isSpreadElement(e)) {
    visibleLiterals(e.expression, out);
  }
  return out;
}

/** Scan one source text. */
export function scanSource(file: string, text: string): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const findings: Finding[] = [];
  const report = (nodes: ts.Node[], where: string) => {
    for (const n of nodes) {
      const { line } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
      findings.push({ file, line: line + 1, text: n.getText(sf), where });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const name = calleeName(node.expression);
      const args = node.arguments;
      const rule = name !== null ? CALLS[name] : undefined;
      if (rule) {
        args.forEach((a, i) => {
          if ((rule.from !== undefined && i >= rule.from) || rule.at?.includes(i)) {
            report(visibleLiterals(a), `${name}()`);
          }
        });
      }
      // h(tag, { 'aria-label': 'x', title: 'y' })
      if (name === 'h' && args[1] && ts.isObjectLiteralExpression(args[1])) {
        for (const p of args[1].properties) {
          if (ts.isPropertyAssignment(p)) {
            const k = propName(p.name);
            if (k !== null && VISIBLE_ATTRS.has(k)) report(visibleLiterals(p.initializer), `h() ${k}`);
          }
        }
      }
      // el.setAttribute('aria-label', 'x')
      if (name === 'setAttribute' && args[0] && ts.isStringLiteral(args[0]) && VISIBLE_ATTRS.has(args[0].text)) {
        report(visibleLiterals(args[1]), `setAttribute(${args[0].text})`);
      }
      // select(attrs, [[value, 'Text'], …]) / setOptions(el, […])
      if ((name === 'select' || name === 'setOptions') && args[1] && ts.isArrayLiteralExpression(args[1])) {
        for (const opt of args[1].elements) {
          if (ts.isArrayLiteralExpression(opt)) report(visibleLiterals(opt.elements[1]), `${name}() option`);
        }
      }
    } else if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
      // el.textContent = 'x'
      if (ts.isPropertyAccessExpression(node.left) && VISIBLE_PROPS.has(node.left.name.text)) {
        report(visibleLiterals(node.right), `.${node.left.name.text} =`);
      }
    } else if (ts.isPropertyAssignment(node) && ts.isObjectLiteralExpression(node.parent)) {
      // { title: 'x', message: 'y' } (dialogs, confirmations, errors)
      const k = propName(node.name);
      const inH = ts.isCallExpression(node.parent.parent) && calleeName(node.parent.parent.expression) === 'h';
      if (k !== null && (VISIBLE_KEYS.has(k) || VISIBLE_ATTRS.has(k)) && !inH) {
        report(visibleLiterals(node.initializer), `{ ${k}: }`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return findings;
}

/** Scan sources (path → text), except the catalogs (i18n/) and the generated bindings. */
export function scanFiles(files: Record<string, string>): Finding[] {
  return Object.entries(files)
    .filter(([f]) => !/\/(i18n|bindings)\//.test(f))
    .flatMap(([f, text]) => scanSource(f, text));
}
