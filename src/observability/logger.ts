import { writeSync } from "node:fs";
import "./tracing-channel.ts";
import pino, { type DestinationStream, type Logger } from "pino";
import { safeError } from "./safe-error.ts";

/**
 * REDACTED_PATHS are fields that never appear in a log line, at the top level or one object
 * down (pino's redaction is by path): credentials, tokens, and personal data a log does not need.
 */
export const REDACTED_PATHS = [
  "password",
  "newPassword",
  "currentPassword",
  "passwordHash",
  "password_hash",
  "token",
  "accessToken",
  "authorization",
  "cookie",
  "email",
  "params",
  "parameters",
  "headers.authorization",
  "headers.cookie",
  "req.headers.authorization",
  "req.headers.cookie",
].flatMap((p) => [p, `*.${p}`]);

/**
 * createLogger returns the structured JSON logger. Secrets are redacted by path (REDACTED_PATHS),
 * and an error logged as `err` (or `error`) keeps only what safeError lets through: no query
 * parameters. Lines go to stdout unless a `destination` is given (tests capture them).
 *
 * Stdout gets the lines of up to 5 ms in one write (see `turnBatchedStdout`).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "eventful-monolith" },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    serializers: { err: safeError, error: safeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, destination ?? turnBatchedStdout());
}

/**
 * turnBatchedStdout is a destination that collects the lines logged over `BATCH_MS` (5 ms, or
 * until 64 KB are pending) and writes them to stdout together, synchronously, in one `write`
 * call: under load one blocking write for many event-loop turns instead of one per line (which
 * had cost about a tenth of a cached read's time) or one per turn (sonic-boom's synchronous mode
 * also counted each batch's bytes twice and copied it; its asynchronous mode costs more than it
 * saves under Bun). Order is kept. Pending lines are written when the process exits (`exit` runs
 * on `process.exit`, on the signals main.ts handles and after an uncaught error); only a hard
 * kill (SIGKILL, power loss) loses them, at most the last 5 ms.
 */
export function turnBatchedStdout(): DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  let batch = "";
  const flushSync = () => {
    if (batch === "") return;
    const text = batch;
    batch = "";
    writeAllSync(1, text);
  };
  process.on("exit", flushSync);
  return {
    write(line: string) {
      if (batch === "") setTimeout(flushSync, BATCH_MS);
      batch += line;
      if (batch.length >= BATCH_MAX_CHARS) flushSync();
    },
    flush(cb) {
      flushSync();
      cb?.();
    },
    flushSync,
  };
}

// Lines are written at most this long after they were logged, in one write per interval (or at
// once past BATCH_MAX_CHARS): under load, one write for many event-loop turns' lines.
const BATCH_MS = 5;
const BATCH_MAX_CHARS = 64 * 1024;
// How long a write to a full non-blocking pipe waits before it is tried again (sonic-boom waits
// 100 ms, far longer than a reader takes to make room).
const BUSY_WRITE_MS = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * writeAllSync writes `text` to `fd` in full, blocking: one `write` call for the common case (a
 * file, or a pipe with room), the rest of a partial write written after it, and a full
 * non-blocking pipe (EAGAIN) waited on and tried again, as sonic-boom's synchronous mode does,
 * without its two byte counts and a copy per write.
 */
export function writeAllSync(fd: number, text: string): void {
  let rest: string | Buffer = text;
  for (;;) {
    try {
      const n = typeof rest === "string" ? writeSync(fd, rest) : writeSync(fd, rest);
      // ASCII (nearly every line) has as many bytes as characters: the byte count is needed only otherwise.
      if (n === rest.length && (typeof rest !== "string" || n === Buffer.byteLength(rest))) return;
      const bytes: Buffer = typeof rest === "string" ? Buffer.from(rest) : rest;
      if (n >= bytes.length) return;
      rest = bytes.subarray(n);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== "EAGAIN" && code !== "EBUSY") throw err;
      Atomics.wait(sleeper, 0, 0, BUSY_WRITE_MS);
    }
  }
}
