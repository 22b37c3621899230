import type { Database } from "../../src/db/client.ts";

/**
 * handledCount counts the events of `type` about `subject` that subscription `name` has moved
 * its checkpoint past (in the subject's partition): delivered and committed. Tests of
 * idempotency wait for it to reach the number of copies appended before judging the effects.
 */
export async function handledCount(database: Database, name: string, type: string, subject: string): Promise<number> {
  const [row] = await database.sql<{ n: number }[]>`
    select count(*)::int as n from outbox.events e
    join outbox.subscriptions s on s.name = ${name}
      and s.partition = ((hashtext(e.subject)::bigint % s.partitions) + s.partitions) % s.partitions
    where e.type = ${type} and e.subject = ${subject}
      and (s.last_transaction_id, s.last_position) >= (e.transaction_id, e.position)`;
  return row!.n;
}
