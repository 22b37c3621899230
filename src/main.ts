import { createServer as createProbe } from "node:net";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./observability/logger.ts";
import type { Server } from "./server.ts";

let config: ReturnType<typeof loadConfig>;
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
// lost: the server then stops as soon as it exists, or the process exits if start-up does not
// end within the shutdown deadline. A second signal gives up on draining.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopRequested) process.exit(130);
    stopRequested = signal;
    if (server) void shutdown(signal, server);
    else
      setTimeout(() => startupFailed(new Error(`${signal} during start-up, which did not finish within ${shutdownTimeoutMs} ms`)), shutdownTimeoutMs).unref();
  });
}

/** startupFailed logs why the process cannot start and exits non-zero; the embedded Postgres stops with it. */
function startupFailed(err: unknown): never {
  log.fatal({ err }, `start-up failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

// Until the server listens, anything thrown outside the awaited chain (an error event, a stray
// rejection) is a failed start: exit with the reason instead of lingering half-started.
const onStartupError = (err: unknown) => startupFailed(err);
process.on("uncaughtException", onStartupError);
process.on("unhandledRejection", onStartupError);

try {
  await assertHttpPortFree(config.PORT, config.HOST);
  // Loaded only now: a bad config or a taken port is reported before the whole app is loaded.
  const { createServer } = await import("./server.ts");
  server = await createServer(config, { log });
} catch (err) {
  startupFailed(err);
}
if (stopRequested) await shutdown(stopRequested, server);
try {
  server.listen();
} catch (err) {
  // Taken since the check above. Workers and pools are running: close them (bounded), then exit.
  await Promise.race([server.stop().catch(() => {}), Bun.sleep(shutdownTimeoutMs)]);
  startupFailed(listenError(err, config.PORT, config.HOST));
}
process.removeListener("uncaughtException", onStartupError);
process.removeListener("unhandledRejection", onStartupError);

/**
 * assertHttpPortFree binds the port once and lets it go, so a taken port fails the start before
 * the database is touched; listen() itself still reports one taken in between.
 */
async function assertHttpPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((ok, fail) => {
    const probe = createProbe();
    probe.once("error", (err) => fail(listenError(err, port, host)));
    probe.listen(port, host, () => probe.close(() => ok()));
  });
}

function listenError(err: unknown, port: number, host: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new Error(`PORT ${port} on ${host} is already in use; stop what listens there or set PORT to a free port (PORT=0 picks one)`, { cause: err });
  if (code === "EACCES")
    return new Error(`not allowed to listen on PORT ${port} on ${host} (ports below 1024 need privileges); set PORT to 1024 or above`, { cause: err });
  if (code === "EADDRNOTAVAIL") return new Error(`HOST ${host} is not an address of this machine; set HOST to one (0.0.0.0 for all)`, { cause: err });
  return err;
}
