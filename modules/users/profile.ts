import { eq } from "drizzle-orm";
import { type Db, rawSql } from "../../src/platform.ts";
import type { UsersDeps } from "./commands.ts";
import { UserNotFoundError } from "./errors.ts";
import { UserUpdated } from "./events.ts";
import { accounts } from "./schema.ts";
import { type Preferences, type Profile, toPreferences, toProfile } from "./views.ts";

/** getProfile returns one user's public profile. */
export async function getProfile(db: Db, id: string): Promise<Profile> {
  const [row] = await db.select().from(accounts).where(eq(accounts.id, id));
  if (!row) throw new UserNotFoundError();
  return toProfile(row);
}

/**
 * updateProfile changes the caller's display name and/or bio and appends `user.updated` with the
 * profile as it now is, in one transaction. A change to the same values appends nothing.
 */
export async function updateProfile(deps: UsersDeps, userId: string, input: { displayName?: string | undefined; bio?: string | undefined }): Promise<Profile> {
  return deps.db.transaction(async (tx) => {
    const sql = rawSql(tx);
    // The old values come from the locked row, so two concurrent edits each see the other's result.
    const [before] = await sql<{ display_name: string; bio: string }[]>`
      select display_name, bio from users.accounts where id = ${userId} for no key update`;
    if (!before) throw new UserNotFoundError();
    const [row] = await tx
      .update(accounts)
      .set({ ...(input.displayName !== undefined && { displayName: input.displayName }), ...(input.bio !== undefined && { bio: input.bio }) })
      .where(eq(accounts.id, userId))
      .returning();
    const profile = toProfile(row!);
    if (profile.displayName !== before.display_name || profile.bio !== before.bio) {
      await deps.outbox.append(tx, [
        UserUpdated.with({ userId, username: profile.username, displayName: profile.displayName, bio: profile.bio }, { subject: userId }),
      ]);
    }
    return profile;
  });
}

/** getPreferences returns one user's notification preferences. */
export async function getPreferences(db: Db, userId: string): Promise<Preferences> {
  const [row] = await db
    .select({ emailNotifications: accounts.emailNotifications, postNotifications: accounts.postNotifications })
    .from(accounts)
    .where(eq(accounts.id, userId));
  if (!row) throw new UserNotFoundError();
  return toPreferences(row);
}

/** updatePreferences sets the given switches and returns all of them. */
export async function updatePreferences(db: Db, userId: string, input: Partial<Preferences>): Promise<Preferences> {
  const set = {
    ...(input.emailNotifications !== undefined && { emailNotifications: input.emailNotifications }),
    ...(input.postNotifications !== undefined && { postNotifications: input.postNotifications }),
  };
  if (Object.keys(set).length === 0) return getPreferences(db, userId);
  const [row] = await db
    .update(accounts)
    .set(set)
    .where(eq(accounts.id, userId))
    .returning({ emailNotifications: accounts.emailNotifications, postNotifications: accounts.postNotifications });
  if (!row) throw new UserNotFoundError();
  return toPreferences(row);
}
