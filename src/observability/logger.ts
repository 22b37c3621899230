import pino, { type Logger } from "pino";

/** createLogger returns the structured JSON logger; secrets are redacted by path. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "eventful-monolith" },
    redact: { paths: ["password", "*.password", "passwordHash", "*.passwordHash", "req.headers.authorization"], censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
