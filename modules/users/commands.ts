import { randomUUIDv7 } from "bun";
import { eq, sql } from "drizzle-orm";
import { type Appender, type Db, isUniqueViolation, prepared } from "../../src/platform.ts";
import { EmailTakenError, UsernameTakenError } from "./errors.ts";
import { UserRegistered } from "./events.ts";
import { accounts } from "./schema.ts";
import { type Account, toAccount } from "./views.ts";

export interface UsersDeps {
  db: Db;
  outbox: Appender;
}

/** hashPassword uses Bun's argon2id. */
export const hashPassword = (password: string) => Bun.password.hash(password, { algorithm: "argon2id" });

// The role is a constant of the statement: no value a caller passes can make an admin.
const insertAccount = prepared("users_insert_account", ["id", "username", "email", "displayName", "passwordHash"], (db, $) =>
  db
    .insert(accounts)
    .values({ id: $.id, username: $.username, email: $.email, displayName: $.displayName, passwordHash: $.passwordHash, role: "user" })
    .returning(),
);

/**
 * registerUser creates an account and appends `user.registered` in the same transaction.
 * The role is always `user`: there is no way to register as an admin.
 */
export async function registerUser(
  deps: UsersDeps,
  input: { username: string; email: string; password: string; displayName?: string | undefined },
): Promise<Account> {
  const passwordHash = await hashPassword(input.password);
  try {
    return await deps.db.transaction(async (tx) => {
      const [row] = await insertAccount.execute(tx, {
        id: randomUUIDv7(),
        username: input.username,
        email: input.email.toLowerCase(),
        displayName: input.displayName ?? input.username,
        passwordHash,
      });
      const account = toAccount(row!);
      await deps.outbox.append(tx, [
        UserRegistered.with(
          { userId: account.id, username: account.username, displayName: account.displayName, email: account.email },
          { subject: account.id },
        ),
      ]);
      return account;
    });
  } catch (err) {
    if (isUniqueViolation(err, "accounts_username_lower_key")) throw new UsernameTakenError();
    if (isUniqueViolation(err, "accounts_email_lower_key")) throw new EmailTakenError();
    throw err;
  }
}

/**
 * ensureAdmin makes sure the configured admin account exists with the admin role and the
 * configured password. Safe to run at every start and from several replicas at once.
 */
export async function ensureAdmin(deps: UsersDeps, admin: { username: string; email: string; password: string }): Promise<void> {
  const [existing] = await deps.db.select().from(accounts).where(sql`lower(${accounts.username}) = ${admin.username.toLowerCase()}`);
  if (!existing) {
    try {
      const created = await registerUser(deps, admin);
      await deps.db.update(accounts).set({ role: "admin" }).where(eq(accounts.id, created.id));
    } catch (err) {
      // Another replica created it first: fall through to the update below on the next start.
      if (!(err instanceof UsernameTakenError)) throw err;
    }
    return;
  }
  const passwordOk = await Bun.password.verify(admin.password, existing.passwordHash);
  if (existing.role !== "admin" || !passwordOk) {
    await deps.db
      .update(accounts)
      // A new configured password ends the admin's sessions, as a password change does.
      .set({ role: "admin", ...(passwordOk ? {} : { passwordHash: await hashPassword(admin.password), tokenVersion: sql`${accounts.tokenVersion} + 1` }) })
      .where(eq(accounts.id, existing.id));
  }
}
