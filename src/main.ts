import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./observability/logger.ts";
import { createServer, type Server } from "./server.ts";

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
const shutdownTimeoutMs = config.SHUTDOWN_TIMEOUT_MS;

let server: Server | undefined;
let stopRequested: NodeJS.Signals | undefined;

async function shutdown(signal: NodeJS.Signals, running: Server): Promise<never> {
  log.info({ signal }, "shutting down");
  // stop() cuts the drain at SHUTDOWN_TIMEOUT_MS; closing pools and the embedded database after
  // that must not keep a dying process around forever either.
  setTimeout(() => {
    log.error("shutdown did not finish in time; exiting anyway");
    process.exit(1);
  }, shutdownTimeoutMs + 5000);
  try {
    await running.stop();
  } catch (err) {
    log.error({ err }, "shutdown failed");
    process.exit(1);
  }
  log.info("stopped");
  process.exit(0);
}

// Installed before start-up so a signal during a slow start (migrations, embedded initdb) is not
// lost: the server then stops as soon as it exists. A second signal gives up on draining.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopRequested) process.exit(130);
    stopRequested = signal;
    if (server) void shutdown(signal, server);
  });
}

try {
  server = await createServer(config, { log });
} catch (err) {
  log.fatal({ err }, `start-up failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (stopRequested) await shutdown(stopRequested, server);
server.listen();
