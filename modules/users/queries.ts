import { eq, or, sql } from "drizzle-orm";
import type { Db } from "../../src/platform.ts";
import { type Account, toAccount } from "./views.ts";
import { InvalidCredentialsError, UserNotFoundError } from "./errors.ts";
import { accounts } from "./schema.ts";

// Verifying against a real hash for unknown logins keeps response time from revealing which exist.
const DUMMY_HASH = Bun.password.hashSync("not-a-real-password", { algorithm: "argon2id" });

/** getAccount returns one account by id. */
export async function getAccount(db: Db, id: string): Promise<Account> {
  const [row] = await db.select().from(accounts).where(eq(accounts.id, id));
  if (!row) throw new UserNotFoundError();
  return toAccount(row);
}

/** findAccounts returns the accounts with these ids (unknown ids are left out). */
export async function findAccounts(db: Db, ids: string[]): Promise<Account[]> {
  if (ids.length === 0) return [];
  const rows = await db.select().from(accounts).where(sql`${accounts.id} = any(${sql.param(ids)}::uuid[])`);
  return rows.map(toAccount);
}

/** authenticate checks a login (username or email) and password. */
export async function authenticate(db: Db, login: string, password: string): Promise<Account> {
  const l = login.toLowerCase();
  const [row] = await db
    .select()
    .from(accounts)
    .where(or(sql`lower(${accounts.username}) = ${l}`, sql`lower(${accounts.email}) = ${l}`))
    .limit(1);
  const ok = await Bun.password.verify(password, row?.passwordHash ?? DUMMY_HASH);
  if (!row || !ok) throw new InvalidCredentialsError();
  return toAccount(row);
}
