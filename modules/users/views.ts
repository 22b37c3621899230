import type { accounts } from "./schema.ts";

type AccountRow = typeof accounts.$inferSelect;

/** Account is the owner's view of a user account (the only one with the email and role). */
export interface Account {
  id: string;
  username: string;
  email: string;
  displayName: string;
  role: "user" | "admin";
  createdAt: string;
}

/** Profile is the public view of a user: what anyone signed in may see. */
export interface Profile {
  id: string;
  username: string;
  displayName: string;
  bio: string;
  followersCount: number;
  followingCount: number;
  postsCount: number;
  createdAt: string;
}

/** Preferences are a user's notification switches, both on by default. */
export interface Preferences {
  emailNotifications: boolean;
  postNotifications: boolean;
}

/** toAccount maps a row to the owner's view: never the password hash. */
export const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  username: r.username,
  email: r.email,
  displayName: r.displayName,
  role: r.role,
  createdAt: new Date(r.createdAt).toISOString(),
});

/** toProfile maps a row to the public profile: no email, role or preferences. */
export const toProfile = (r: AccountRow): Profile => ({
  id: r.id,
  username: r.username,
  displayName: r.displayName,
  bio: r.bio,
  followersCount: r.followersCount,
  followingCount: r.followingCount,
  postsCount: r.postsCount,
  createdAt: new Date(r.createdAt).toISOString(),
});

/** toPreferences maps a row to the notification switches. */
export const toPreferences = (r: Pick<AccountRow, "emailNotifications" | "postNotifications">): Preferences => ({
  emailNotifications: r.emailNotifications,
  postNotifications: r.postNotifications,
});
