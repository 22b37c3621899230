import { customType } from "drizzle-orm/pg-core";

/** xid8 is Postgres' 64-bit transaction id; kept as a decimal string in JS. */
export const xid8 = customType<{ data: string; driverData: string }>({
  dataType: () => "xid8",
});
