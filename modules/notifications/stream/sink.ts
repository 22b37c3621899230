import type { NotificationView } from "../views.ts";

/** Notifier is the writing side: tell every process that these recipients have new notifications. */
export interface Notifier {
  publish(recipientIds: readonly string[]): void;
}

/** StreamSink is where one open stream writes: the HTTP route's SSE stream. */
export interface StreamSink {
  /** send writes one notification as an SSE event whose id is its seq. */
  send(seq: number, notification: NotificationView): Promise<void>;
  /** comment writes an SSE comment (heartbeats). */
  comment(text: string): Promise<void>;
  /** close ends the response. */
  close(): void;
}

/** StreamOptions tune the streams; the composition root takes them from configuration. */
export interface StreamOptions {
  heartbeatMs: number;
  maxStreamsPerUser: number;
  onError?: (err: unknown, what: string) => void;
}
