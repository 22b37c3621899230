/**
 * Session windows, pure: a user's events under one sessionId belong to one session while less
 * than 30 minutes of event time separate them. An event may arrive out of order and bridge two
 * sessions, which then merge; it is late when even the session it would make or join has been
 * closed (its last event + 30 minutes + the allowed lateness is at or behind the watermark).
 */
import { SESSION_GAP_MS } from "./windows.ts";

/** SessionState is one session window being kept. */
export interface SessionState {
  id: string;
  start: number;
  end: number;
  eventCount: number;
  pageViews: number;
  cartAdditions: number;
  purchases: number;
  revenueCents: number;
}

/** SessionEvent is what a session needs of an event. */
export interface SessionEvent {
  t: number;
  eventType: string;
  /** The purchase's amount (0 for other events). */
  cents: number;
}

/**
 * addToSession applies one event to a key's sessions (changing `list` in place) and returns
 * whether it was late, which session it went to, and the ids of sessions merged away.
 *
 * @example addToSession(list, { t, eventType: "page_view", cents: 0 }, watermark, 120_000, () => randomUUIDv7())
 */
export function addToSession(
  list: SessionState[],
  e: SessionEvent,
  watermark: number | null,
  allowedLatenessMs: number,
  newId: () => string,
): { late: true } | { late: false; session: SessionState; merged: string[] } {
  // The usual case, one session or none within the gap of the event, without the arrays the
  // general case below makes (it runs for every event a delivery reads).
  let only: SessionState | undefined;
  let matches = 0;
  for (const s of list)
    if (s.start - SESSION_GAP_MS < e.t && e.t < s.end + SESSION_GAP_MS) {
      only = s;
      matches++;
    }
  if (matches <= 1) {
    const end = only ? Math.max(e.t, only.end) : e.t;
    if (watermark !== null && end + SESSION_GAP_MS + allowedLatenessMs <= watermark) return { late: true };
    if (!only) {
      only = { id: newId(), start: e.t, end: e.t, eventCount: 0, pageViews: 0, cartAdditions: 0, purchases: 0, revenueCents: 0 };
      list.push(only);
    }
    count(only, e);
    return { late: false, session: only, merged: [] };
  }
  const overlapping = list.filter((s) => s.start - SESSION_GAP_MS < e.t && e.t < s.end + SESSION_GAP_MS).sort((a, b) => a.start - b.start);
  const end = Math.max(e.t, ...overlapping.map((s) => s.end));
  if (watermark !== null && end + SESSION_GAP_MS + allowedLatenessMs <= watermark) return { late: true };
  let session = overlapping[0];
  if (!session) {
    session = { id: newId(), start: e.t, end: e.t, eventCount: 0, pageViews: 0, cartAdditions: 0, purchases: 0, revenueCents: 0 };
    list.push(session);
  }
  const merged: string[] = [];
  for (const other of overlapping.slice(1)) {
    session.start = Math.min(session.start, other.start);
    session.end = Math.max(session.end, other.end);
    session.eventCount += other.eventCount;
    session.pageViews += other.pageViews;
    session.cartAdditions += other.cartAdditions;
    session.purchases += other.purchases;
    session.revenueCents += other.revenueCents;
    list.splice(list.indexOf(other), 1);
    merged.push(other.id);
  }
  count(session, e);
  return { late: false, session, merged };
}

/** count adds an event to the session it goes to. */
function count(session: SessionState, e: SessionEvent): void {
  session.start = Math.min(session.start, e.t);
  session.end = Math.max(session.end, e.t);
  session.eventCount++;
  if (e.eventType === "page_view") session.pageViews++;
  else if (e.eventType === "add_to_cart") session.cartAdditions++;
  else if (e.eventType === "purchase") {
    session.purchases++;
    session.revenueCents += e.cents;
  }
}
