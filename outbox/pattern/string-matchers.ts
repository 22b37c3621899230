/** StringPredicate tests one string event value; built once at compile time, called per match. */
export type StringPredicate = (value: string) => boolean;

/** WildcardParse is the result of parsing a wildcard: literal segments between unescaped `*`s, or why it is invalid. */
export type WildcardParse = { ok: true; segments: string[] } | { ok: false; reason: string };

const STAR = 42; // "*"
const BACKSLASH = 92; // "\\"

/**
 * parseWildcard splits an EventBridge wildcard into the literal runs between `*`s. As in AWS, `\*` is a
 * literal star, `\\` a literal backslash, any other escape is rejected, and `**` is rejected because AWS
 * refuses consecutive wildcards.
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
 * compileWildcard turns parsed segments into a predicate. It does not use a RegExp: a glob of only `*`
 * is matched exactly by anchoring the first and last segments and taking the leftmost occurrence of each
 * middle one, which is linear-ish and cannot backtrack catastrophically on hostile event values.
 */
export function compileWildcard(segments: readonly string[]): StringPredicate {
  const first = segments[0] ?? "";
  if (segments.length === 1) return (value) => value === first;
  const last = segments[segments.length - 1] ?? "";
  const middle = segments.slice(1, -1).filter((s) => s.length > 0);
  const minLength = first.length + last.length + middle.reduce((n, s) => n + s.length, 0);
  if (middle.length === 0) {
    return (value) => value.length >= minLength && value.startsWith(first) && value.endsWith(last);
  }
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    const end = value.length - last.length;
    let pos = first.length;
    for (let i = 0; i < middle.length; i++) {
      const segment = middle[i] as string;
      const at = value.indexOf(segment, pos);
      if (at < 0 || at + segment.length > end) return false;
      pos = at + segment.length;
    }
    return true;
  };
}

// Only syntax characters may be escaped in a `u`-mode RegExp; escaping "-" there is a SyntaxError.
const REGEXP_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

function escapeRegExp(text: string): string {
  return text.replace(REGEXP_SYNTAX, "\\$&");
}

/** IgnoreCaseMode says which part of the event string a case-insensitive comparison anchors to. */
export type IgnoreCaseMode = "equals" | "prefix" | "suffix";

/**
 * compileIgnoreCase builds one case-insensitive predicate for any of `values`. A RegExp with the `iu`
 * flags is used because it folds case per code point without allocating a lowercased copy of every event
 * value; it is built here, at compile time, never per match.
 */
export function compileIgnoreCase(values: readonly string[], mode: IgnoreCaseMode): StringPredicate {
  const alternatives = values.map(escapeRegExp).join("|");
  const body = `(?:${alternatives})`;
  const source = mode === "equals" ? `^${body}$` : mode === "prefix" ? `^${body}` : `${body}$`;
  const regexp = new RegExp(source, "iu");
  return (value) => regexp.test(value);
}
