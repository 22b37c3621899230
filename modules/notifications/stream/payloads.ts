/** CHANNEL is the Postgres NOTIFY channel of new notifications. */
export const CHANNEL = "notifications";
const PAYLOAD_MAX = 7_900; // Postgres refuses payloads of 8,000 bytes and more
/** ALL is the payload that wakes every stream. */
export const ALL = "*";
/** PING starts the payload a process sends itself to check its listen connection. */
export const PING = "~";

/** payloads splits recipient ids into NOTIFY payloads under the size limit, or `*` when there are many. */
export function payloads(ids: readonly string[]): string[] {
  if (ids.length === 0) return [];
  if (ids.length > 2_000) return [ALL];
  const out: string[] = [];
  let cur = "";
  for (const id of ids) {
    if (cur.length + id.length + 1 > PAYLOAD_MAX) {
      out.push(cur);
      cur = "";
    }
    cur = cur ? `${cur},${id}` : id;
  }
  if (cur) out.push(cur);
  return out;
}
