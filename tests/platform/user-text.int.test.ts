import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { normalizeText, textProblem } from "../../src/http/text.ts";
import { expectProblem, signUp } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Issue 11: user-visible text is NFC, and refuses control characters, bidi overrides and lone
// surrogates with a clear 400; multi-line fields keep newlines and tabs. One helper (userText).

describe("textProblem", () => {
  it("accepts ordinary text in any script, emoji included", () => {
    for (const ok of ["Zoë", "محمد", "東京", "👩‍💻 dev", "a b"]) expect(textProblem(ok)).toBeNull();
  });

  it("names the offending character", () => {
    expect(textProblem("a\u0000b")).toContain("U+0000");
    expect(textProblem("evil\u202Egnp.exe")).toContain("U+202E");
    expect(textProblem("x\u2066y")).toContain("U+2066");
    expect(textProblem("\u001b[31mred")).toContain("U+001B");
    expect(textProblem("\u0085")).toContain("U+0085");
    expect(textProblem("half \ud83d")).toContain("lone surrogate");
    expect(textProblem("two\nlines")).toContain("U+000A");
  });

  it("lets a multi-line field keep newlines and tabs, and nothing else", () => {
    expect(textProblem("one\ntwo\tthree\r\nfour", { multiline: true })).toBeNull();
    expect(textProblem("carriage\ronly", { multiline: true })).toContain("U+000D");
    expect(textProblem("bell\u0007", { multiline: true })).toContain("U+0007");
  });

  it("normalises to NFC", () => {
    expect(normalizeText("Zoe\u0308")).toBe("Zoë");
    expect(normalizeText("a\r\nb", { multiline: true })).toBe("a\nb");
  });
});

describe("over HTTP", () => {
  let s: TestServer;
  let user: Awaited<ReturnType<typeof signUp>>;
  beforeAll(async () => {
    s = await startTestServer({ ROLES: "api" });
    user = await signUp(s, "text");
  });
  afterAll(() => s.close());

  const patchMe = (json: unknown) => s.request("/api/v1/users/me", { method: "PATCH", token: user.token, json });

  it("refuses a display name with a bidi override, naming the field and the character", async () => {
    const p = await expectProblem(await patchMe({ displayName: "admin\u202Enimda" }), 400, "VALIDATION.FAILED");
    expect(p.errors).toEqual([expect.objectContaining({ path: "displayName", message: expect.stringContaining("U+202E") })]);
  });

  it("stores a display name in NFC and a bio with its newlines", async () => {
    const res = await patchMe({ displayName: "Zoe\u0308", bio: "line one\n\tline two" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ displayName: "Zoë", bio: "line one\n\tline two" });
  });

  it("refuses a control character in a bio and a lone surrogate in post content", async () => {
    await expectProblem(await patchMe({ bio: "bell\u0007" }), 400, "VALIDATION.FAILED");
    const post = await s.request("/api/v1/posts", { method: "POST", token: user.token, json: { content: "broken \ud800 text" } });
    const p = await expectProblem(post, 400, "VALIDATION.FAILED");
    expect(p.errors?.[0]?.path).toBe("content");
  });

  it("refuses a product name with a control character", async () => {
    const admin = await s.adminToken();
    const res = await s.request("/api/v1/products", {
      method: "POST",
      token: admin,
      json: { sku: "TXT-1", name: "Widget\u001b[2J", category: "tools", priceCents: 100, costCents: 50 },
    });
    const p = await expectProblem(res, 400, "VALIDATION.FAILED");
    expect(p.errors?.map((e) => e.path)).toContain("name");
  });
});
