import { randomUUIDv7 } from "bun";
import { createJwtAuth } from "../../src/http/auth.ts";
import { unique } from "./http.ts";
import type { TestServer } from "./server.ts";

/** QuickUser is an account made straight in the database, with a bearer token for it. */
export interface QuickUser {
  id: string;
  username: string;
  token: string;
}

/**
 * quickUsers makes `n` accounts with one insert and signs tokens for them, skipping the argon2
 * hash of registration (about a second each on a busy machine) for tests that need many people.
 * Registration itself is tested through HTTP in users.int.test.ts.
 */
export async function quickUsers(s: TestServer, n: number, prefix = "q"): Promise<QuickUser[]> {
  const rows = Array.from({ length: n }, () => {
    const username = unique(prefix);
    return { id: randomUUIDv7(), username, email: `${username}@example.com` };
  });
  await s.database.sql`
    insert into users.accounts (id, username, email, display_name, password_hash)
    select id, username, email, username, 'no-login' from unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.username)}::text[], ${rows.map((r) => r.email)}::text[]) as t(id, username, email)`;
  // Only signs: the server's own verifier checks the accounts (new ones are at token version 0).
  const auth = createJwtAuth(s.config.JWT_SECRET, s.config.JWT_TTL_SECONDS, { accounts: async () => undefined });
  return Promise.all(
    rows.map(async (r) => ({
      id: r.id,
      username: r.username,
      token: (await auth.issue({ id: r.id, role: "user", username: r.username, tokenVersion: 0 })).accessToken,
    })),
  );
}
