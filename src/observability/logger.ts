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
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "eventful-monolith" },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    serializers: { err: safeError, error: safeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
