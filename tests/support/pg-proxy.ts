import { connect, createServer, type Socket } from "node:net";

/** PgTraffic counts what clients sent to Postgres through a counting proxy. */
export interface PgTraffic {
  /** Separate writes from clients once connected: their round trips. */
  flushes: number;
  /** Frontend messages by type byte: `Q` simple query, `P` parse, `D` describe, `E` execute, `S` sync... */
  messages: Record<string, number>;
  /** Statements executed: extended-protocol Execute plus simple queries. */
  statements(): number;
  reset(): void;
}

/** CountingProxy is a TCP proxy to Postgres on 127.0.0.1 that counts client traffic. */
export interface CountingProxy extends PgTraffic {
  readonly port: number;
  /** url is `target` with its host and port replaced by the proxy's. */
  url(target: string): string;
  close(): void;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * countingProxy forwards TCP to the Postgres of `targetUrl` and parses the frontend protocol
 * (startup, then typed messages) to count what each client asks for. The counts cover every
 * client of the proxy; reset them before the part under test.
 */
export async function countingProxy(targetUrl: string): Promise<CountingProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const traffic = {
    flushes: 0,
    messages: {} as Record<string, number>,
    statements() {
      return (this.messages.E ?? 0) + (this.messages.Q ?? 0);
    },
    reset() {
      this.flushes = 0;
      this.messages = {};
    },
  };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let startup = true;
    let buffered = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      if (!startup) traffic.flushes++;
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (startup) {
          if (buffered.length < 8) break;
          const len = buffered.readInt32BE(0);
          if (buffered.length < len) break;
          const code = buffered.readInt32BE(4);
          buffered = buffered.subarray(len);
          if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) startup = false;
          continue;
        }
        if (buffered.length < 5) break;
        const len = buffered.readInt32BE(1);
        if (buffered.length < len + 1) break;
        const type = String.fromCharCode(buffered[0]!);
        traffic.messages[type] = (traffic.messages[type] ?? 0) + 1;
        buffered = buffered.subarray(len + 1);
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(traffic, {
    port,
    url(t: string) {
      const u = new URL(t);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  });
}
