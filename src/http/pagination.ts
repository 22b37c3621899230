/**
 * One list envelope for the whole API: every list that can grow answers `{items, nextCursor}`
 * and pages with an opaque `cursor` and `?limit=` (1-100, default 20).
 *
 * Paging is keyset, never offset: the cursor holds the sort key of the last item served, and
 * the next page reads the rows strictly after it. With a unique sort key that new rows only
 * extend (a position, a UUID v7, `(created_at, id)`), a walk sees every row that existed when
 * it started exactly once, however many rows arrive meanwhile; an offset would repeat rows on
 * every insert ahead of it. The cursor is base64url JSON of that key, validated on the way back
 * in, so a garbled or forged cursor is a 400 problem, never a 500 from a failed cast.
 */
import { z } from "@hono/zod-openapi";
import { ValidationError } from "../errors.ts";

/** DEFAULT_PAGE_LIMIT is the page size when `?limit=` is absent. */
export const DEFAULT_PAGE_LIMIT = 20;
/** MAX_PAGE_LIMIT is the largest `?limit=` a list accepts. */
export const MAX_PAGE_LIMIT = 100;
// Every key we page on fits many times over; a longer cursor is not one of ours.
const MAX_CURSOR_LENGTH = 1024;

/**
 * PageQuery is the query schema of a paged list. Extend it with the list's filters.
 *
 * @example request: { query: PageQuery.extend({ status: z.enum(["dead", "redriven"]).optional() }) }
 */
export const PageQuery = z.object({
  cursor: z
    .string()
    .min(1)
    .max(MAX_CURSOR_LENGTH)
    .optional()
    .openapi({ description: "Opaque: the `nextCursor` of the previous page. Omit it for the first page." }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_LIMIT)
    .default(DEFAULT_PAGE_LIMIT)
    .openapi({ description: `Items per page, 1-${MAX_PAGE_LIMIT}.`, example: DEFAULT_PAGE_LIMIT }),
});

/** PageParams is what a handler gets from `PageQuery`. */
export type PageParams = z.output<typeof PageQuery>;

/** Page is one page of a list: its items and the cursor of the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * listOf builds the response schema of a paged list of `item`, named for OpenAPI when `name`
 * is given.
 *
 * @example responses: { 200: json(listOf(DeadLetterSchema, "DeadLetterPage")) }
 */
export function listOf<T extends z.ZodType>(item: T, name?: string) {
  const schema = z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  });
  return name ? schema.openapi(name) : schema;
}

/** encodeCursor turns a sort key into an opaque cursor (base64url JSON). */
export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/**
 * decodeCursor reads a cursor back into the sort key `schema` describes, or undefined when
 * there is none (the first page). Anything that is not a cursor this list made throws a 400
 * `PAGINATION.INVALID_CURSOR`; `schema` must bound every value so the query can never fail on it.
 *
 * @example const after = decodeCursor(q.cursor, z.tuple([z.string().regex(/^\d{1,19}$/)]));
 */
export function decodeCursor<S extends z.ZodType>(cursor: string | undefined, schema: S): z.output<S> | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  const key = schema.safeParse(parsed);
  if (!key.success) throw invalidCursor();
  return key.data;
}

function invalidCursor(): ValidationError {
  return new ValidationError(
    "The cursor is not one this list handed out; start again without `cursor`, or pass a `nextCursor` unchanged.",
    [{ path: "query.cursor", message: "invalid cursor" }],
    "PAGINATION.INVALID_CURSOR",
  );
}

/**
 * page shapes rows read with `limit + 1` into a page: the extra row, if present, only proves
 * that a next page exists; the cursor is the key of the last row served.
 *
 * @example return c.json(page(await readRows({ after, limit: q.limit + 1 }), q.limit, (r) => [r.position]), 200);
 */
export function page<T>(rows: readonly T[], limit: number, keyOf: (row: T) => unknown): Page<T> {
  if (rows.length <= limit) return { items: [...rows], nextCursor: null };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor(keyOf(items[items.length - 1]!)) };
}
