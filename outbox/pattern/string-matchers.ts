/** StringPredicate tests one string event value; built once at compile time, called per match. */
export type StringPredicate = (value: string) => boolean;

/** WildcardParse is the result of parsing a wildcard: literal segments between unescaped `*`s, or why it is invalid. */
export type WildcardParse = { ok: true; segments: string[] } | { ok: false; reason: string };

const STAR = 42; // "*"
const BACKSLASH = 92; // "\\"

/**
 * parseWildcard splits an EventBridge wildcard into the literal runs between `*`s. As in event-ruler's
 * WildcardParser, `\*` is a literal star, `\\` a literal backslash, any other escape is rejected, and `**` is
 * rejected because consecutive wildcards are not allowed.
 */
export function parseWildcard(pattern: string): WildcardParse {
  const segments: string[] = [];
  let current = "";
  for (let i = 0; i < pattern.length; i++) {
    const code = pattern.charCodeAt(i);
    if (code === STAR) {
      if (pattern.charCodeAt(i + 1) === STAR) {
        return { ok: false, reason: `consecutive wildcard characters "**" at position ${i} are not allowed` };
      }
      segments.push(current);
      current = "";
    } else if (code === BACKSLASH) {
      const next = pattern.charCodeAt(i + 1);
      if (next !== STAR && next !== BACKSLASH) {
        return { ok: false, reason: `invalid escape at position ${i}: only \\* and \\\\ may be escaped` };
      }
      current += pattern[i + 1];
      i++;
    } else {
      current += pattern[i];
    }
  }
  segments.push(current);
  return { ok: true, segments };
}

/**
 * compileWildcard turns parsed segments into a predicate without a RegExp: the first and last segments are
 * anchored and each middle one takes its leftmost occurrence (which is exact for a glob of only `*`). Middle
 * segments are found with a precomputed Knuth-Morris-Pratt table, so one test is linear in the value's length
 * whatever the pattern, where `indexOf` or a backtracking RegExp can go quadratic on hostile input.
 */
export function compileWildcard(segments: readonly string[]): StringPredicate {
  const first = segments[0] ?? "";
  if (segments.length === 1) return (value) => value === first;
  const last = segments[segments.length - 1] ?? "";
  const middle = segments
    .slice(1, -1)
    .filter((s) => s.length > 0)
    .map((s) => ({ text: s, table: kmpTable(s) }));
  const minLength = first.length + last.length + middle.reduce((n, s) => n + s.text.length, 0);
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    const end = value.length - last.length;
    let pos = first.length;
    for (let i = 0; i < middle.length; i++) {
      const segment = middle[i]!;
      const at = kmpFind(value, segment.text, segment.table, pos, end);
      if (at < 0) return false;
      pos = at + segment.text.length;
    }
    return true;
  };
}

function kmpTable(needle: string): Int32Array {
  const table = new Int32Array(needle.length);
  let k = 0;
  for (let i = 1; i < needle.length; i++) {
    while (k > 0 && needle.charCodeAt(i) !== needle.charCodeAt(k)) k = table[k - 1]!;
    if (needle.charCodeAt(i) === needle.charCodeAt(k)) k++;
    table[i] = k;
  }
  return table;
}

/** kmpFind returns where `needle` first starts in `haystack[from, end)`, or -1; each character is read once. */
function kmpFind(haystack: string, needle: string, table: Int32Array, from: number, end: number): number {
  let k = 0;
  for (let i = from; i < end; i++) {
    const code = haystack.charCodeAt(i);
    while (k > 0 && code !== needle.charCodeAt(k)) k = table[k - 1]!;
    if (code === needle.charCodeAt(k)) k++;
    if (k === needle.length) return i - k + 1;
  }
  return -1;
}

/** IgnoreCaseMode says which part of the event string a case-insensitive comparison anchors to. */
export type IgnoreCaseMode = "equals" | "prefix" | "suffix";

/** One character of an ignore-case operand: the spellings the event may use for it (one, or lower and upper). */
type CaseForms = readonly string[];

/**
 * caseForms splits an operand into characters and gives each its lower- and upper-case spelling, as
 * event-ruler's EqualsIgnoreCaseParser does (Java `toLowerCase`/`toUpperCase` in the root locale, which JS
 * `toLowerCase`/`toUpperCase` match). A spelling may be longer than the character ("ß" upper-cases to "SS"),
 * and only those two spellings match: "ẞ" does not match "ß", as on AWS. Unlike Java's per-UTF-16-unit loop,
 * a surrogate pair stays one character here, so astral characters compare as themselves.
 */
function caseForms(text: string): CaseForms[] {
  const forms: CaseForms[] = [];
  for (const char of text) {
    const lower = char.toLowerCase();
    const upper = char.toUpperCase();
    forms.push(lower === upper ? [lower] : [lower, upper]);
  }
  return forms;
}

/**
 * compileIgnoreCase builds a case-insensitive predicate for one operand. When every character has one-unit
 * spellings (the common case) it is a direct comparison of `operand.length` units at the anchored end, so a
 * suffix test reads only the value's tail. Otherwise it tracks the set of value positions each prefix of the
 * operand can end at; that set stays small, and the work is bounded by the operand, not the value.
 */
export function compileIgnoreCase(text: string, mode: IgnoreCaseMode): StringPredicate {
  const forms = caseForms(text);
  if (forms.every((f) => f.every((s) => s.length === 1))) return fixedWidth(forms, mode);
  return mode === "suffix" ? variableSuffix(forms) : variableForward(forms, mode === "equals");
}

function fixedWidth(forms: readonly CaseForms[], mode: IgnoreCaseMode): StringPredicate {
  const lower = Uint16Array.from(forms, (f) => f[0]!.charCodeAt(0));
  const upper = Uint16Array.from(forms, (f) => (f[1] ?? f[0]!).charCodeAt(0));
  const n = forms.length;
  return (value) => {
    if (mode === "equals" ? value.length !== n : value.length < n) return false;
    const offset = mode === "suffix" ? value.length - n : 0;
    for (let i = 0; i < n; i++) {
      const code = value.charCodeAt(offset + i);
      if (code !== lower[i] && code !== upper[i]) return false;
    }
    return true;
  };
}

function variableForward(forms: readonly CaseForms[], whole: boolean): StringPredicate {
  return (value) => {
    let positions = new Set([0]);
    for (const spellings of forms) {
      const next = new Set<number>();
      for (const at of positions) {
        for (const s of spellings) if (value.startsWith(s, at)) next.add(at + s.length);
      }
      if (next.size === 0) return false;
      positions = next;
    }
    return !whole || positions.has(value.length);
  };
}

function variableSuffix(forms: readonly CaseForms[]): StringPredicate {
  return (value) => {
    let positions = new Set([value.length]);
    for (let i = forms.length - 1; i >= 0; i--) {
      const next = new Set<number>();
      for (const at of positions) {
        for (const s of forms[i]!) {
          const start = at - s.length;
          if (start >= 0 && value.startsWith(s, start)) next.add(start);
        }
      }
      if (next.size === 0) return false;
      positions = next;
    }
    return true;
  };
}
