import { randomUUIDv7 } from "bun";
import { createJwtAuth } from "../../src/http/auth.ts";
import { eventually } from "./eventually.ts";
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
  const auth = createJwtAuth(s.config.JWT_SECRET, s.config.JWT_TTL_SECONDS);
  return Promise.all(
    rows.map(async (r) => ({ id: r.id, username: r.username, token: (await auth.issue({ id: r.id, role: "user", username: r.username })).accessToken })),
  );
}

/**
 * caughtUp waits until subscription `name` has handled every event of `types` appended so far
 * (in every partition), or fails after `timeoutMs`.
 */
export function caughtUp(s: TestServer, name: string, types: string[], timeoutMs = 15_000): Promise<true> {
  return eventually(async () => {
    const [row] = await s.database.sql<{ behind: number }[]>`
      select count(*)::int as behind from outbox.events e
      where e.type = any(${types}::text[])
        and not exists (
          select 1 from outbox.subscriptions c
          where c.name = ${name} and c.partition = ((hashtext(e.subject)::bigint % c.partitions) + c.partitions) % c.partitions
            and (c.last_transaction_id, c.last_position) >= (e.transaction_id, e.position))`;
    return row!.behind === 0;
  }, timeoutMs);
}

/** FAN_OUT_EVENTS are the events the timelines fan-out handles. */
export const FAN_OUT_EVENTS = ["post.created", "post.deleted", "user.followed", "user.unfollowed"];
