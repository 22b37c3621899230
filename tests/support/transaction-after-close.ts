// Run by tests/platform/transaction-faults.int.test.ts: a transaction started after the pool was
// closed must fail (printing its error code) and leave nothing that keeps the process alive.
import { connectDatabase, rawSql } from "../../src/db/client.ts";

const d = connectDatabase(process.env.DATABASE_URL!, { max: 2 });
await d.db.transaction((tx) => rawSql(tx)`select 1`); // the pool has an open connection to close
await d.close();
const err = await d.db.transaction((tx) => rawSql(tx)`select 1`).catch((e: { code?: string; cause?: { code?: string } }) => e);
console.log((err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code ?? "resolved");
