import { sql } from "drizzle-orm";
import { pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const usersSchema = pgSchema("users");

/** accounts: one row per user. Username and email are unique case-insensitively. */
export const accounts = usersSchema.table(
  "accounts",
  {
    id: uuid("id").primaryKey(),
    username: text("username").notNull(),
    email: text("email").notNull(),
    displayName: text("display_name").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["user", "admin"] }).notNull().default("user"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("accounts_username_lower_key").on(sql`lower(${t.username})`),
    uniqueIndex("accounts_email_lower_key").on(sql`lower(${t.email})`),
  ],
);
