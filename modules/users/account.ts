import type { accounts } from "./schema.ts";

/** Account is the public view of a user account. */
export interface Account {
  id: string;
  username: string;
  email: string;
  displayName: string;
  role: "user" | "admin";
  createdAt: string;
}

/** toAccount maps a row to the public view: never the password hash. */
export const toAccount = (r: typeof accounts.$inferSelect): Account => ({
  id: r.id,
  username: r.username,
  email: r.email,
  displayName: r.displayName,
  role: r.role,
  createdAt: new Date(r.createdAt).toISOString(),
});
