import { afterAll } from "bun:test";
import { prepareTemplate } from "./db.ts";

// One migrated template per `bun test` run; each test file clones it (see createTestDatabase).
const stop = await prepareTemplate();
afterAll(async () => {
  await stop?.();
});
