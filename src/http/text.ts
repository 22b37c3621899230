import { z } from "@hono/zod-openapi";

/**
 * User-visible text (display names, bios, post content, product names) is shown to other people,
 * so it must not be able to hide or reorder what they see. One rule for every module:
 *
 * - lone surrogates (text that is not valid UTF-16, hence not valid UTF-8 once stored) are refused;
 * - control characters (C0, DEL, C1: NUL, ESC, ...) are refused; a multi-line field keeps `\n`
 *   and `\t` (and `\r\n` becomes `\n`);
 * - bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069: the
 *   "Trojan Source" characters that make text read differently than it is stored) are refused;
 * - what is kept is normalised to NFC, so one word has one form (for search, uniqueness, length).
 *
 * A refused value is a 400 with a message naming the character.
 */

const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/;
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_NEWLINE_TAB = /(?![\n\t])\p{Cc}/u;

const codePoint = (ch: string) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * textProblem says why `text` is not acceptable user-visible text, or returns null when it is.
 *
 * @example textProblem("a\u202Eb") // "contains the bidirectional control U+202E"
 */
export function textProblem(text: string, opts: { multiline?: boolean } = {}): string | null {
  if (!text.isWellFormed()) return "contains a lone surrogate (not valid Unicode text)";
  const control = (opts.multiline ? CONTROL_BUT_NEWLINE_TAB : CONTROL).exec(opts.multiline ? text.replaceAll("\r\n", "\n") : text);
  if (control) return `contains the control character ${codePoint(control[0])}${opts.multiline ? " (only newlines and tabs are allowed)" : ""}`;
  const bidi = BIDI_CONTROL.exec(text);
  if (bidi) return `contains the bidirectional control ${codePoint(bidi[0])}`;
  return null;
}

/** normalizeText is what an accepted text is stored as: NFC, with `\r\n` as `\n` in multi-line fields. */
export const normalizeText = (text: string, opts: { multiline?: boolean } = {}) => (opts.multiline ? text.replaceAll("\r\n", "\n") : text).normalize("NFC");

/**
 * userText is the zod string for user-visible text: checked and normalised as above; chain the
 * field's own `.trim()`, `.min()`, `.max()` after it (they then see the normalised text).
 *
 * @example displayName: userText().trim().min(1).max(80)
 * @example content: userText({ multiline: true }).max(10_000)
 */
export function userText(opts: { multiline?: boolean } = {}) {
  return z
    .string()
    .check((ctx) => {
      const problem = textProblem(ctx.value, opts);
      if (problem !== null) ctx.issues.push({ code: "custom", message: problem, input: ctx.value, continue: false });
    })
    .overwrite((s) => normalizeText(s, opts));
}
