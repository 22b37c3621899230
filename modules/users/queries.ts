import { and, eq, or, sql } from "drizzle-orm";
import { type Executor, prepared } from "../../src/platform.ts";
import { InvalidCredentialsError, UserNotFoundError } from "./errors.ts";
import { accounts, follows } from "./schema.ts";
import { type Account, type Preferences, toAccount } from "./views.ts";

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

/**
 * authenticate checks a login (username or email) and password; a disabled account cannot sign
 * in. `beforeVerify` sees the account's id (or the login, when none matches) before the password
 * is checked: the sign-in limit.
 */
export async function authenticate(
  db: Executor,
  login: string,
  password: string,
  beforeVerify?: (account: string) => Promise<void>,
): Promise<Account & { tokenVersion: number }> {
  const [row] = await accountByLogin.execute(db, { login: login.toLowerCase() });
  await beforeVerify?.(row?.id ?? `login:${login.toLowerCase()}`);
  const ok = await Bun.password.verify(password, row?.passwordHash ?? DUMMY_HASH);
  if (!row || !ok || row.disabledAt !== null) throw new InvalidCredentialsError();
  return { ...toAccount(row), tokenVersion: row.tokenVersion };
}

/** PostSubscriber is a follower who wants to hear of an author's new posts. */
export interface PostSubscriber {
  authorId: string;
  followerId: string;
}

/**
 * findPostSubscribers returns, for each of `authorIds`, the followers whose postNotifications is
 * on: one statement for every author (the follows index by followee, then the account by key).
 * Authors with more than `maxFollowers` followers are left out (none of their followers is returned).
 */
export async function findPostSubscribers(db: Executor, authorIds: string[], maxFollowers = 2_147_483_647): Promise<PostSubscriber[]> {
  if (authorIds.length === 0) return [];
  const rows = await postSubscribers.execute(db, { ids: [...new Set(authorIds)], max: maxFollowers });
  return rows.map((r) => ({ authorId: r.authorId, followerId: r.followerId }));
}
const postSubscribers = prepared("users_post_subscribers", ["ids", "max"], (db, $) =>
  db
    .select({ authorId: follows.followeeId, followerId: follows.followerId })
    .from(follows)
    .innerJoin(accounts, eq(accounts.id, follows.followerId))
    .where(
      and(
        sql`${follows.followeeId} = any(array(select id from users.accounts where id = any(${$.ids}::uuid[]) and followers_count <= ${$.max}::int))`,
        eq(accounts.postNotifications, true),
      ),
    ),
);

/** NotificationTarget is where and whether a user wants to be told: their email address and switches. */
export interface NotificationTarget extends Preferences {
  id: string;
  email: string;
}

/** findNotificationTargets returns the email and notification preferences of the users among `ids`; unknown ids are left out. */
export async function findNotificationTargets(db: Executor, ids: string[]): Promise<NotificationTarget[]> {
  if (ids.length === 0) return [];
  return targetsByIds.execute(db, { ids: [...new Set(ids)] });
}
const targetsByIds = prepared("users_notification_targets_by_ids", ["ids"], (db, $) =>
  db
    .select({ id: accounts.id, email: accounts.email, emailNotifications: accounts.emailNotifications, postNotifications: accounts.postNotifications })
    .from(accounts)
    .where(sql`${accounts.id} = any(${$.ids}::uuid[])`),
);

/** listAdminIds returns the ids of every admin account. */
export async function listAdminIds(db: Executor): Promise<string[]> {
  const rows = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.role, "admin")).orderBy(accounts.id);
  return rows.map((r) => r.id);
}
