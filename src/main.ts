import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./observability/logger.ts";
import { createServer } from "./server.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
const log = createLogger(config.LOG_LEVEL);
const server = await createServer(config, { log });
server.listen();

let signals = 0;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, async () => {
    if (++signals > 1) process.exit(130);
    log.info({ signal }, "shutting down");
    await server.stop();
    log.info("stopped");
    process.exit(0);
  });
}
