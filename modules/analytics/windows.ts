/**
 * The windowing rules, pure: tumbling windows by event time, the allowed-lateness test against
 * the watermark, and the fraud and velocity classifications. Money is in integer cents.
 */

/** Aggregate names one windowed aggregate. */
export type Aggregate = "revenue" | "risk" | "velocity" | "sessions";

/** AGGREGATES lists every aggregate, in the order they are reported. */
export const AGGREGATES: readonly Aggregate[] = ["revenue", "risk", "velocity", "sessions"];

/** SESSION_GAP_MS: a session ends once 30 minutes pass without an event (an event exactly 30 minutes later starts a new one). */
export const SESSION_GAP_MS = 30 * 60_000;

/** WINDOW_MS is each aggregate's tumbling window length. */
export const WINDOW_MS: Record<Exclude<Aggregate, "sessions">, number> = { revenue: 5 * 60_000, risk: 3600_000, velocity: 3600_000 };

/** DEFAULT_ALLOWED_LATENESS_MS: how long after a window's end it still takes events (2 minutes). */
export const DEFAULT_ALLOWED_LATENESS_MS = 2 * 60_000;

/** windowStart is the start (ms since the epoch) of the `size`-long tumbling window holding `t`. */
export const windowStart = (t: number, size: number): number => Math.floor(t / size) * size;

/**
 * isLate says whether an event at `t` comes too late for its window: the watermark (the highest
 * event time applied before it) has passed the window's end plus the allowed lateness, so the
 * window is final and the event is counted as late instead of applied.
 */
export const isLate = (t: number, size: number, watermark: number | null, allowedLatenessMs: number): boolean =>
  watermark !== null && windowStart(t, size) + size + allowedLatenessMs <= watermark;

/** RiskLevel is a user-hour's fraud risk. */
export type RiskLevel = "LOW_RISK" | "MEDIUM_RISK" | "HIGH_RISK";

/**
 * riskLevel: HIGH_RISK with more than 10 purchases and over 5,000 in total; MEDIUM_RISK with more
 * than 2 countries or over 2,000; LOW_RISK otherwise.
 */
export function riskLevel(purchaseCount: number, totalCents: number, countryCount: number): RiskLevel {
  if (purchaseCount > 10 && totalCents > 500_000) return "HIGH_RISK";
  if (countryCount > 2 || totalCents > 200_000) return "MEDIUM_RISK";
  return "LOW_RISK";
}

/** RISK_RANK orders the levels for "alert once per level reached". */
export const RISK_RANK: Record<RiskLevel, number> = { LOW_RISK: 0, MEDIUM_RISK: 1, HIGH_RISK: 2 };

/** Velocity is a product-hour's category. */
export type Velocity = "FAST_MOVING" | "MODERATE" | "SLOW_MOVING";

/** VELOCITY_REPORT_UNITS: a product-hour is reported once it has sold more than this many units. */
export const VELOCITY_REPORT_UNITS = 10;

/** velocity: FAST_MOVING over 100 units, MODERATE over 50, else SLOW_MOVING. */
export const velocity = (units: number): Velocity => (units > 100 ? "FAST_MOVING" : units > 50 ? "MODERATE" : "SLOW_MOVING");
