import { parseWildcard } from "./string-matchers.ts";

const QUOTE = 34; // event-ruler matches a string value as its JSON text, quotes included
const STAR = -1;
const OTHER = -2; // stands for every character no wildcard names
// Reachable sets are few for real patterns; this only stops a pathological one from running long.
const MAX_STATES_EXPLORED = 20_000;

/**
 * wildcardComplexity is event-ruler's MachineComplexityEvaluator for the wildcards on one field: the largest
 * number of wildcard prefixes one value can match at once, which is how many partial matches the engine
 * must carry while reading it. `"a*bbb"` against "abbb" keeps "a*", "a*b", "a*bb" and "a*bbb" alive: 4. The
 * count stops at `cap + 1`, and an exploration that grows past MAX_STATES_EXPLORED counts as over the cap.
 */
export function wildcardComplexity(wildcards: readonly string[], cap: number): number {
  const globs: number[][] = [];
  for (const text of new Set(wildcards)) {
    const parsed = parseWildcard(text);
    if (!parsed.ok) continue; // compileLeaf has already refused it
    const tokens = [QUOTE];
    parsed.segments.forEach((segment, i) => {
      if (i > 0) tokens.push(STAR);
      for (let k = 0; k < segment.length; k++) tokens.push(segment.charCodeAt(k));
    });
    tokens.push(QUOTE);
    globs.push(tokens);
  }
  if (globs.length === 0) return 0;
  const alphabet = [...new Set(globs.flat().filter((t) => t >= 0)), OTHER];

  // A state is [glob, tokens consumed]; a star state loops on every character.
  const closure = (states: [number, number][]): [number, number][] => {
    const out: [number, number][] = [];
    const seen = new Set<string>();
    for (const [g, k] of states) {
      let at = k;
      for (;;) {
        const id = `${g}:${at}`;
        if (seen.has(id)) break;
        seen.add(id);
        out.push([g, at]);
        if (globs[g]![at] !== STAR) break;
        at++; // a star may match nothing, so the state after it is live too
      }
    }
    return out.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  };
  const step = (states: [number, number][], char: number): [number, number][] => {
    const next: [number, number][] = [];
    for (const [g, k] of states) {
      const tokens = globs[g]!;
      if (k > 0 && tokens[k - 1] === STAR) next.push([g, k]);
      if (k < tokens.length && tokens[k] === char) next.push([g, k + 1]);
    }
    return closure(next);
  };

  let worst = 0;
  const visited = new Set<string>();
  const queue = [closure(globs.map((_, g) => [g, 0] as [number, number]))];
  while (queue.length > 0) {
    const states = queue.shift()!;
    for (const char of alphabet) {
      const next = step(states, char);
      if (next.length === 0) continue;
      if (next.length > worst) worst = next.length;
      if (worst > cap) return cap + 1;
      const id = next.map(([g, k]) => `${g}:${k}`).join(",");
      if (visited.has(id)) continue;
      visited.add(id);
      if (visited.size > MAX_STATES_EXPLORED) return cap + 1;
      queue.push(next);
    }
  }
  return worst;
}
