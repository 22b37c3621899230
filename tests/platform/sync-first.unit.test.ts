import { describe, expect, it } from "bun:test";
import { z } from "zod";
import { PageQuery } from "../../src/http/pagination.ts";
import { syncFirst } from "../../src/http/validation.ts";

// Route validators call `safeParseAsync`; syncFirst answers it with the synchronous parse, which
// must give the same results and issues, and still handle schemas that need the async one.

describe("syncFirst", () => {
  const plain = PageQuery.extend({ status: z.enum(["dead", "redriven"]).optional() });
  const reference = plain.clone();
  syncFirst(plain);

  for (const input of [{}, { limit: "5" }, { limit: "0" }, { limit: "x", cursor: "" }, { status: "alive" }, { cursor: "abc", limit: "100" }]) {
    it(`answers ${JSON.stringify(input)} as zod's asynchronous parse does`, async () => {
      expect(await plain.safeParseAsync(input)).toEqual(await reference.safeParseAsync(input));
    });
  }

  it("parses without zod's asynchronous machinery", async () => {
    let syncCalls = 0;
    const schema = z.object({ a: z.string() });
    const safeParse = schema.safeParse.bind(schema);
    schema.safeParse = ((data: unknown) => {
      syncCalls++;
      return safeParse(data);
    }) as typeof schema.safeParse;
    syncFirst(schema);
    expect((await schema.safeParseAsync({ a: "x" })).success).toBe(true);
    expect(syncCalls).toBe(1);
  });

  it("falls back to the asynchronous parse for a schema with an async refinement", async () => {
    const schema = syncFirst(z.object({ name: z.string().refine(async (v) => v !== "taken", "taken") }));
    expect((await schema.safeParseAsync({ name: "free" })).success).toBe(true);
    const refused = await schema.safeParseAsync({ name: "taken" });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toBe("taken");
  });

  it("is applied once, and leaves anything that is not a zod schema alone", () => {
    const schema = z.string();
    expect(syncFirst(schema)).toBe(schema);
    const once = schema.safeParseAsync;
    syncFirst(schema);
    expect(schema.safeParseAsync).toBe(once);
    expect(syncFirst(undefined)).toBeUndefined();
    expect(syncFirst({ safeParseAsync: 1 })).toEqual({ safeParseAsync: 1 });
  });
});
