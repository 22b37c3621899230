import { eq, sql } from "drizzle-orm";
import { type Db, prepared, type TokenIssuer } from "../../src/platform.ts";
import { hashPassword } from "./commands.ts";
import { InvalidCredentialsError, UserNotFoundError } from "./errors.ts";
import { accounts } from "./schema.ts";

/**
 * Sessions: what a bearer token's check reads on each request (cached briefly by the verifier),
 * and the two ways to end every session of an account: a password change and an admin's
 * disable. Both move the account's token version on, so every token signed before is refused.
 */

/** SessionState is an account as a token check sees it. */
export interface SessionState {
  role: "user" | "admin";
  username: string;
  tokenVersion: number;
  disabled: boolean;
}

const sessionById = prepared("users_session_by_id", ["id"], (db, $) =>
  db
    .select({ role: accounts.role, username: accounts.username, tokenVersion: accounts.tokenVersion, disabledAt: accounts.disabledAt })
    .from(accounts)
    .where(eq(accounts.id, $.id)),
);

/** sessionState reads what a token check needs, or undefined for an account that does not exist (any more). */
export async function sessionState(db: Db, id: string): Promise<SessionState | undefined> {
  const [row] = await sessionById.execute(db, { id });
  return row && { role: row.role, username: row.username, tokenVersion: row.tokenVersion, disabled: row.disabledAt !== null };
}

/**
 * changePassword checks the current password (after `beforeVerify`, the sign-in limit), stores
 * the new one and ends every session of the account; it returns a token for the new session.
 */
export async function changePassword(
  deps: { db: Db; tokens: TokenIssuer },
  userId: string,
  input: { currentPassword: string; newPassword: string },
  beforeVerify?: (account: string) => Promise<void>,
): Promise<Awaited<ReturnType<TokenIssuer["issue"]>>> {
  const [row] = await deps.db.select().from(accounts).where(eq(accounts.id, userId));
  if (!row) throw new UserNotFoundError();
  // Guessing the current password with a stolen token spends the account's sign-in budget.
  await beforeVerify?.(row.id);
  if (!(await Bun.password.verify(input.currentPassword, row.passwordHash))) throw new InvalidCredentialsError();
  const passwordHash = await hashPassword(input.newPassword);
  const [updated] = await deps.db
    .update(accounts)
    .set({ passwordHash, tokenVersion: sql`${accounts.tokenVersion} + 1` })
    .where(eq(accounts.id, userId))
    .returning({ tokenVersion: accounts.tokenVersion, role: accounts.role, username: accounts.username });
  if (!updated) throw new UserNotFoundError();
  deps.tokens.forget(userId);
  return deps.tokens.issue({ id: userId, role: updated.role, username: updated.username, tokenVersion: updated.tokenVersion });
}

/** setDisabled disables an account (ending its sessions; it cannot sign in) or enables it again. */
export async function setDisabled(deps: { db: Db; tokens: TokenIssuer }, userId: string, disabled: boolean): Promise<void> {
  const [updated] = await deps.db
    .update(accounts)
    .set(disabled ? { disabledAt: sql`coalesce(${accounts.disabledAt}, now())`, tokenVersion: sql`${accounts.tokenVersion} + 1` } : { disabledAt: null })
    .where(eq(accounts.id, userId))
    .returning({ id: accounts.id });
  if (!updated) throw new UserNotFoundError();
  deps.tokens.forget(userId);
}
