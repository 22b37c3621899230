/**
 * Validation of ingested events: the zod schema is the rule (and the OpenAPI description); a
 * hand-written check of the same rules answers the common case, an event that is valid, without
 * zod's per-field machinery (about 5 µs an event in zod, a tenth of that here). Any event it is not
 * sure of (anything invalid, or unusual) goes to zod, which then accepts it or says why not, so the
 * answers and their messages are zod's. `tests/modules/analytics/validate.property.test.ts` checks
 * the shortcut against zod on generated events, valid and not.
 */
import { z } from "zod";
import { type FieldError, textProblem } from "../../src/platform.ts";

/** MAX_CLOCK_SKEW_MS: a clientTime may be at most this far ahead of the server's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((s) => textProblem(s) === null, { message: "contains a control or bidirectional character" });

/** ClickEventSchema is one clickstream event as a client sends it. */
export const ClickEventSchema = z.object({
  eventId: z.uuid().optional(),
  userId: text(128),
  sessionId: text(128),
  eventType: z.enum(["page_view", "add_to_cart", "purchase", "search"]),
  productId: text(128).optional(),
  category: text(100).optional(),
  price: z.number().min(0).max(10_000_000).optional(),
  quantity: z.number().int().min(1).max(1000).optional(),
  deviceType: text(50).optional(),
  location: z.object({ country: text(64), region: text(100) }).optional(),
  query: text(500).optional(),
  clientTime: z.iso.datetime({ offset: true }).optional(),
});

/** ClickEvent is a validated clickstream event. */
export type ClickEvent = z.output<typeof ClickEventSchema>;

/** Rejected is one refused event of a request: its index and why. */
export interface Rejected {
  index: number;
  errors: FieldError[];
}

/** Caller says who sends: a signed-in user (may only send their own userId) or the ingestion key holder. */
export type Caller = { kind: "user"; userId: string } | { kind: "key" };

const issuesOf = (err: z.ZodError): FieldError[] => err.issues.map((i) => ({ path: i.path.join(".") || "(event)", message: i.message, code: i.code }));

// The shortcut's patterns are the schema's own.
const UUID = ClickEventSchema.shape.eventId.unwrap()._zod.def.pattern!;
const DATETIME = ClickEventSchema.shape.clientTime.unwrap()._zod.def.pattern!;
const EVENT_TYPES: ReadonlySet<unknown> = new Set(ClickEventSchema.shape.eventType.options);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// Printable ASCII with no space at either end: already trimmed, well-formed, and free of control
// and bidirectional characters, so one regex answers what trim and textProblem's three checks would.
const PLAIN_ASCII = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** What the schema's text(max) gives for `v`, or undefined when that is not certain to be valid. */
function quickText(v: unknown, max: number): string | undefined {
  if (typeof v !== "string") return undefined;
  if (v.length <= max && PLAIN_ASCII.test(v)) return v;
  const s = v.trim();
  return s.length >= 1 && s.length <= max && textProblem(s) === null ? s : undefined;
}

/**
 * quickParse is ClickEventSchema's answer for a valid event, or undefined when `raw` may be
 * invalid (zod then decides). Unknown fields are dropped, text is trimmed, as zod does.
 */
export function quickParse(raw: unknown): ClickEvent | undefined {
  if (!isRecord(raw)) return undefined;
  const { eventId, eventType, productId, category, price, quantity, deviceType, location, query, clientTime } = raw;
  const userId = quickText(raw.userId, 128);
  const sessionId = quickText(raw.sessionId, 128);
  if (userId === undefined || sessionId === undefined || !EVENT_TYPES.has(eventType)) return undefined;
  const e: ClickEvent = { userId, sessionId, eventType: eventType as ClickEvent["eventType"] };
  if (eventId !== undefined) {
    if (typeof eventId !== "string" || !UUID.test(eventId)) return undefined;
    e.eventId = eventId;
  }
  if (productId !== undefined && (e.productId = quickText(productId, 128)) === undefined) return undefined;
  if (category !== undefined && (e.category = quickText(category, 100)) === undefined) return undefined;
  if (price !== undefined) {
    if (typeof price !== "number" || !(price >= 0 && price <= 10_000_000)) return undefined;
    e.price = price;
  }
  if (quantity !== undefined) {
    if (!Number.isSafeInteger(quantity) || (quantity as number) < 1 || (quantity as number) > 1000) return undefined;
    e.quantity = quantity as number;
  }
  if (deviceType !== undefined && (e.deviceType = quickText(deviceType, 50)) === undefined) return undefined;
  if (location !== undefined) {
    if (!isRecord(location)) return undefined;
    const country = quickText(location.country, 64);
    const region = quickText(location.region, 100);
    if (country === undefined || region === undefined) return undefined;
    e.location = { country, region };
  }
  if (query !== undefined && (e.query = quickText(query, 500)) === undefined) return undefined;
  if (clientTime !== undefined) {
    if (typeof clientTime !== "string" || !DATETIME.test(clientTime)) return undefined;
    e.clientTime = clientTime;
  }
  return e;
}

/**
 * validateEvents checks each raw event; `now` bounds clientTime. Returns the valid events with
 * their index in the request, and the refused ones with their errors. Each event is checked alone
 * (a bad one never costs the good ones): by quickParse when it is plainly valid, else by zod.
 */
export function validateEvents(raw: readonly unknown[], caller: Caller, now: Date): { valid: { index: number; event: ClickEvent }[]; rejected: Rejected[] } {
  const valid: { index: number; event: ClickEvent }[] = [];
  const rejected: Rejected[] = [];
  const latest = now.getTime() + MAX_CLOCK_SKEW_MS;
  for (let index = 0; index < raw.length; index++) {
    const item = raw[index];
    let e = quickParse(item);
    if (e === undefined) {
      const parsed = ClickEventSchema.safeParse(item);
      if (!parsed.success) {
        rejected.push({ index, errors: issuesOf(parsed.error) });
        continue;
      }
      e = parsed.data;
    }
    const futureTime = e.clientTime !== undefined && Date.parse(e.clientTime) > latest;
    const notOwn = caller.kind === "user" && e.userId !== caller.userId;
    if (!futureTime && !notOwn) {
      valid.push({ index, event: e });
      continue;
    }
    const errors: FieldError[] = [];
    if (futureTime) errors.push({ path: "clientTime", message: "is more than 5 minutes in the future", code: "ANALYTICS.CLIENT_TIME_IN_FUTURE" });
    if (notOwn) errors.push({ path: "userId", message: "a signed-in caller may only send its own userId", code: "ANALYTICS.NOT_OWN_USER" });
    rejected.push({ index, errors });
  }
  return { valid, rejected };
}
