import pino, { type DestinationStream, type Logger } from "pino";

/**
 * createLogger returns the structured JSON logger; secrets are redacted by path. Lines go to
 * stdout unless a `destination` is given (tests capture them).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "eventful-monolith" },
    redact: { paths: ["password", "*.password", "passwordHash", "*.passwordHash", "req.headers.authorization"], censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
