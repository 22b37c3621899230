import { describe, expect, it } from "bun:test";
import { z } from "zod";
import { ValidationError } from "../../src/errors.ts";
import { decodeCursor, encodeCursor, listOf, PageQuery, page } from "../../src/platform.ts";

const Key = z.tuple([z.string().regex(/^\d{1,19}$/), z.uuid()]);

describe("cursors", () => {
  it("round-trip a key through an opaque, URL-safe string", () => {
    const key = ["42", "0190f5a8-0000-7000-8000-000000000000"];
    const cursor = encodeCursor(key);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, Key)).toEqual(key as never);
    expect(decodeCursor(undefined, Key)).toBeUndefined();
  });

  it("turn a key schema that throws on unexpected input into a 400, never a 500", () => {
    const Strict = z.tuple([z.string().refine((v) => BigInt(v) > 0n)]);
    expect(() => decodeCursor(encodeCursor(["1e3"]), Strict)).toThrow(ValidationError);
  });

  it("reject anything this list did not hand out with a 400 PAGINATION.INVALID_CURSOR", () => {
    const bad = [
      "",
      "not base64!",
      "e30",
      encodeCursor({}),
      encodeCursor(["42"]),
      encodeCursor(["42", "not-a-uuid"]),
      encodeCursor(["1e3", crypto.randomUUID()]),
      "A".repeat(2000),
    ];
    for (const cursor of bad) {
      let thrown: unknown;
      try {
        decodeCursor(cursor, Key);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect(thrown).toMatchObject({ code: "PAGINATION.INVALID_CURSOR", kind: "validation", details: { errors: [{ path: "query.cursor" }] } });
    }
  });
});

describe("page", () => {
  const rows = [1, 2, 3, 4].map((n) => ({ n }));

  it("serves limit rows and a cursor to the last one when the extra row proves there is more", () => {
    const p = page(rows, 3, (r) => [r.n]);
    expect(p.items).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(decodeCursor(p.nextCursor!, z.tuple([z.number()]))).toEqual([3]);
  });

  it("ends with nextCursor null when no extra row came back", () => {
    expect(page(rows, 4, (r) => [r.n])).toEqual({ items: rows, nextCursor: null });
    expect(page([], 4, () => [])).toEqual({ items: [], nextCursor: null });
  });
});

describe("PageQuery and listOf", () => {
  it("default the limit to 20 and bound it to 1-100", () => {
    expect(PageQuery.parse({})).toEqual({ limit: 20 });
    expect(PageQuery.parse({ limit: "100", cursor: "abc" })).toEqual({ limit: 100, cursor: "abc" });
    for (const limit of ["0", "101", "2.5", "x", ""]) expect(PageQuery.safeParse({ limit }).success).toBe(false);
  });

  it("shape a list response as {items, nextCursor}", () => {
    const schema = listOf(z.object({ n: z.number() }));
    expect(schema.parse({ items: [{ n: 1 }], nextCursor: null })).toEqual({ items: [{ n: 1 }], nextCursor: null });
    expect(schema.safeParse({ items: [{ n: 1 }] }).success).toBe(false);
  });
});
