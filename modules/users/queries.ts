import { eq, or, sql } from "drizzle-orm";
import { type Executor, prepared } from "../../src/platform.ts";
import { InvalidCredentialsError, UserNotFoundError } from "./errors.ts";
import { accounts } from "./schema.ts";
import { type Account, toAccount } from "./views.ts";

// Verifying against a real hash for unknown logins keeps response time from revealing which exist.
const DUMMY_HASH = Bun.password.hashSync("not-a-real-password", { algorithm: "argon2id" });

// Every request that reads an account runs one of these: built once, then only executed.
const accountById = prepared("users_account_by_id", ["id"], (db, $) => db.select().from(accounts).where(eq(accounts.id, $.id)));
const accountsByIds = prepared("users_accounts_by_ids", ["ids"], (db, $) => db.select().from(accounts).where(sql`${accounts.id} = any(${$.ids}::uuid[])`));
/** By lower-cased username or email: both have a unique index on `lower(...)`. */
export const accountByLogin = prepared("users_account_by_login", ["login"], (db, $) =>
  db
    .select()
    .from(accounts)
    .where(or(sql`lower(${accounts.username}) = ${$.login}`, sql`lower(${accounts.email}) = ${$.login}`))
    .limit(1),
);

/** getAccount returns one account by id. */
export async function getAccount(db: Executor, id: string): Promise<Account> {
  const [row] = await accountById.execute(db, { id });
  if (!row) throw new UserNotFoundError();
  return toAccount(row);
}

/** findAccounts returns the accounts with these ids (unknown ids are left out). */
export async function findAccounts(db: Executor, ids: string[]): Promise<Account[]> {
  if (ids.length === 0) return [];
  const rows = await accountsByIds.execute(db, { ids });
  return rows.map(toAccount);
}

/** authenticate checks a login (username or email) and password. */
export async function authenticate(db: Executor, login: string, password: string): Promise<Account> {
  const [row] = await accountByLogin.execute(db, { login: login.toLowerCase() });
  const ok = await Bun.password.verify(password, row?.passwordHash ?? DUMMY_HASH);
  if (!row || !ok) throw new InvalidCredentialsError();
  return toAccount(row);
}
