import { DomainError } from "../../src/platform.ts";

/** NotificationNotFoundError: no such notification of the caller's (another's is not found either). */
export class NotificationNotFoundError extends DomainError {
  constructor() {
    super("NOTIFICATIONS.NOT_FOUND", "not_found", "no such notification");
  }
}

/** DeviceNotFoundError: no such device of the caller's (another's is not found either). */
export class DeviceNotFoundError extends DomainError {
  constructor() {
    super("NOTIFICATIONS.DEVICE_NOT_FOUND", "not_found", "no such device");
  }
}

/** TooManyDevicesError: the caller has registered the most devices one account may have. */
export class TooManyDevicesError extends DomainError {
  constructor(max: number) {
    super("NOTIFICATIONS.TOO_MANY_DEVICES", "unprocessable", `an account may register at most ${max} devices; remove one first`);
  }
}

/** StreamsUnavailableError: the live stream cannot start (the database does not answer). */
export class StreamsUnavailableError extends DomainError {
  constructor() {
    super("NOTIFICATIONS.STREAM_UNAVAILABLE", "unavailable", "the notification stream is unavailable; retry shortly", { headers: { "retry-after": "2" } });
  }
}
