import type { SubRule } from "./rules.ts";

const TYPE_KEY = "type";

/**
 * extractTypes lists the exact strings the top-level `type` field must equal for a pattern with these
 * sub-rules to match, or returns null when the pattern leaves `type` open: no sub-rules (the empty pattern),
 * or a sub-rule whose `type` is unconstrained, filtered, an IP literal (it also matches other spellings of
 * the address) or allowed to be absent. Sub-rules are `$or` alternatives, so their sets are united.
 */
export function extractTypes(rules: readonly SubRule[]): string[] | null {
  if (rules.length === 0) return null;
  const types = new Set<string>();
  for (const rule of rules) {
    const step = rule.find((s) => s.path === TYPE_KEY);
    const exact = step?.leaf.onlyStrings;
    if (exact === undefined || exact === null) return null;
    for (const type of exact) types.add(type);
  }
  return [...types];
}
