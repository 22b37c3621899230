/** SseEvent is one Server-Sent Event as a client parses it. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  /** When the client had it (performance.now()). */
  at: number;
}

/** SseClient is an open event stream read with fetch, as an EventSource would (but with a bearer token). */
export interface SseClient {
  readonly status: number;
  readonly headers: Headers;
  readonly events: SseEvent[];
  readonly comments: string[];
  /** ended resolves when the server ends the stream (or it is aborted). */
  readonly ended: Promise<void>;
  /** next resolves with the first event at index >= `from` that matches, or fails after `timeoutMs`. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number, from?: number): Promise<SseEvent>;
  close(): void;
}

/**
 * openSse opens `url` as an event stream with `token`, and `Last-Event-ID` when given. A
 * non-200 answer is returned with its body in `comments[0]`, the stream not read.
 */
export async function openSse(url: string, token: string | undefined, lastEventId?: string): Promise<SseClient> {
  const abort = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
  const res = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  let ended: Promise<void> = Promise.resolve();
  if (res.status !== 200) {
    comments.push(await res.text());
  } else {
    ended = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let cut = buf.indexOf("\n\n");
          while (cut >= 0) {
            const frame = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const e: SseEvent = { data: "", at: performance.now() };
            const data: string[] = [];
            let isEvent = false;
            for (const line of frame.split("\n")) {
              if (line.startsWith(":")) comments.push(line.slice(1).trim());
              else {
                const i = line.indexOf(":");
                const field = i < 0 ? line : line.slice(0, i);
                const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
                isEvent = true;
                if (field === "data") data.push(value);
                else if (field === "id") e.id = value;
                else if (field === "event") e.event = value;
              }
            }
            if (isEvent) {
              e.data = data.join("\n");
              events.push(e);
            }
            cut = buf.indexOf("\n\n");
          }
          notify();
        }
      } catch {
        // aborted
      } finally {
        notify();
      }
    })();
  }
  let done = false;
  void ended.then(() => {
    done = true;
    notify();
  });
  return {
    status: res.status,
    headers: res.headers,
    events,
    comments,
    ended,
    next(match = () => true, timeoutMs = 5000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.slice(from).find(match);
          if (hit) {
            cleanup();
            resolve(hit);
          } else if (done) {
            cleanup();
            reject(new Error(`stream ended without the event (got ${events.length})`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching event within ${timeoutMs} ms (got ${JSON.stringify(events.map((e) => e.event))})`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => abort.abort(),
  };
}
