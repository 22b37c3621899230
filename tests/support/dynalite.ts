import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
// dynalite ships no types; it is a CommonJS factory returning a node:http server.
// @ts-expect-error no declaration file
import dynalite from "dynalite";

/** DynamoEmulator is dynalite (in memory) on an ephemeral 127.0.0.1 port. */
export interface DynamoEmulator {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * startDynalite runs dynalite in-process with an in-memory store (no path), tables active at
 * once. It implements the DynamoDB API but not Time to Live: tables are made without it, and
 * expired items are the store's own read filter's business, as with lazy expiry on DynamoDB.
 */
export async function startDynalite(): Promise<DynamoEmulator> {
  const server: HttpServer = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
