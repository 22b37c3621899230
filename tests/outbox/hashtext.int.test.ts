import { afterAll, describe, expect, it } from "bun:test";
import fc from "fast-check";
import postgres from "postgres";
import { hashtext, partitionOf } from "../../outbox/hashtext.ts";

const sql = postgres(process.env.TEST_PG_BASE!, { max: 1, onnotice: () => {} });
afterAll(() => sql.end());

describe("hashtext", () => {
  it("agrees with Postgres on every length around the 12-byte blocks, and on unicode", async () => {
    const samples = [
      "",
      ...Array.from({ length: 40 }, (_, n) => "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".slice(0, n)),
      "order-01a200f1-8a6d-739b-b49e-68252f1a2532",
      "ünïcødé ✓ 日本語 🎉",
      "\u0000ish",
    ].filter((s) => !s.includes("\u0000"));
    const rows = await sql<{ s: string; h: number }[]>`select s, hashtext(s) as h from unnest(${samples}::text[]) s`;
    for (const r of rows) expect([r.s, hashtext(r.s)]).toEqual([r.s, r.h]);
  });

  it("agrees with Postgres on random strings, and so does the partition expression", async () => {
    const strings = fc.sample(fc.string({ unit: "grapheme", maxLength: 60 }), 500);
    const rows = await sql<{ s: string; h: number; p: string }[]>`
      select s, hashtext(s) as h, ((hashtext(s)::bigint % 7) + 7) % 7 as p from unnest(${strings}::text[]) s`;
    for (const r of rows) {
      expect(hashtext(r.s)).toBe(r.h);
      expect(partitionOf(r.s, 7)).toBe(Number(r.p));
    }
  });
});
