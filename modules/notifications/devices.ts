import { randomUUIDv7 } from "bun";
import { type Db, rawSql } from "../../src/platform.ts";
import { DeviceNotFoundError, TooManyDevicesError } from "./errors.ts";
import type { Device } from "./views.ts";

/** MAX_DEVICES is the most devices one account may register: each gets a push per notification. */
export const MAX_DEVICES = 20;

interface DeviceRow {
  id: string;
  platform: Device["platform"];
  token: string;
  created_at: string | Date;
}
const toDevice = (r: DeviceRow): Device => ({ id: r.id, platform: r.platform, token: r.token, createdAt: new Date(r.created_at).toISOString() });

/**
 * registerDevice registers a push token for `userId`: idempotent per token (the same token again
 * returns the same device). A token is one app install, so when another account registers it
 * the device moves to that account under a new id (the last one signed in on it owns it).
 */
export async function registerDevice(db: Db, userId: string, input: { platform: Device["platform"]; token: string }): Promise<Device> {
  return db.transaction(async (tx) => {
    const sql = rawSql(tx);
    // One registration at a time per account, so the bound below holds under concurrency.
    await sql`select pg_advisory_xact_lock(7402, hashtext(${userId}))`;
    const [mine] = await sql<
      DeviceRow[]
    >`select id, platform, token, created_at from notifications.devices where token = ${input.token} and user_id = ${userId}`;
    if (mine && mine.platform === input.platform) return toDevice(mine);
    const [counted] = await sql<{ n: number }[]>`select count(*)::int as n from notifications.devices where user_id = ${userId}`;
    if (!mine && counted!.n >= MAX_DEVICES) throw new TooManyDevicesError(MAX_DEVICES);
    const [row] = await sql<DeviceRow[]>`
      insert into notifications.devices as d (id, user_id, platform, token) values (${randomUUIDv7()}, ${userId}, ${input.platform}, ${input.token})
      on conflict (token) do update set
        id = case when d.user_id = excluded.user_id then d.id else excluded.id end,
        created_at = case when d.user_id = excluded.user_id then d.created_at else excluded.created_at end,
        user_id = excluded.user_id,
        platform = excluded.platform
      returning id, platform, token, created_at`;
    return toDevice(row!);
  });
}

/** removeDevice removes one of `userId`'s devices; another's (or none) is not found. */
export async function removeDevice(db: Db, userId: string, id: string): Promise<void> {
  const rows = await rawSql(db)`delete from notifications.devices where id = ${id} and user_id = ${userId} returning 1`;
  if (rows.length === 0) throw new DeviceNotFoundError();
}
