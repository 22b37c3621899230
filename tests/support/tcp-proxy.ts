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

/** TcpProxy forwards connections on 127.0.0.1 to a target server. */
export interface TcpProxy {
  readonly port: number;
  /** url is `target` with its host and port replaced by the proxy's. */
  url(target: string): string;
  close(): void;
}

/** PgCountingProxy is a TCP proxy to Postgres that counts client traffic. */
export interface PgCountingProxy extends PgTraffic, TcpProxy {}

/**
 * tcpProxy forwards TCP from a free port on 127.0.0.1 to `targetUrl`'s host and port (or
 * `defaultPort`), handing every chunk a client sends to `onClientData(chunk, connection)` first.
 */
export async function tcpProxy(targetUrl: string, defaultPort: number, onClientData: (chunk: Buffer, connection: object) => void): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || defaultPort), target.hostname);
    sockets.add(client).add(upstream);
    const connection = {};
    client.on("data", (chunk: Buffer) => {
      onClientData(chunk, connection);
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
  return {
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
  };
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * pgCountingProxy forwards TCP to the Postgres of `targetUrl` and parses the frontend protocol
 * (startup, then typed messages) to count what each client asks for. The counts cover every
 * client of the proxy; reset them before the part under test.
 */
export async function pgCountingProxy(targetUrl: string): Promise<PgCountingProxy> {
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
  const parsers = new WeakMap<object, { startup: boolean; buffered: Buffer }>();
  const proxy = await tcpProxy(targetUrl, 5432, (chunk, connection) => {
    let p = parsers.get(connection);
    if (!p) parsers.set(connection, (p = { startup: true, buffered: Buffer.alloc(0) }));
    if (!p.startup) traffic.flushes++;
    p.buffered = Buffer.concat([p.buffered, chunk]);
    for (;;) {
      if (p.startup) {
        if (p.buffered.length < 8) break;
        const len = p.buffered.readInt32BE(0);
        if (p.buffered.length < len) break;
        const code = p.buffered.readInt32BE(4);
        p.buffered = p.buffered.subarray(len);
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) p.startup = false;
        continue;
      }
      if (p.buffered.length < 5) break;
      const len = p.buffered.readInt32BE(1);
      if (p.buffered.length < len + 1) break;
      const type = String.fromCharCode(p.buffered[0]!);
      traffic.messages[type] = (traffic.messages[type] ?? 0) + 1;
      p.buffered = p.buffered.subarray(len + 1);
    }
  });
  return Object.assign(traffic, proxy);
}

/** RedisCountingProxy is a TCP proxy to Redis that counts the commands clients send, by name (lower case). */
export interface RedisCountingProxy extends TcpProxy {
  commands: Record<string, number>;
  reset(): void;
}

/**
 * redisCountingProxy forwards TCP to the Redis of `targetUrl` and parses the commands clients
 * send (RESP arrays of bulk strings; pipelined or not) to count them by name.
 */
export async function redisCountingProxy(targetUrl: string): Promise<RedisCountingProxy> {
  const counts = {
    commands: {} as Record<string, number>,
    reset() {
      this.commands = {};
    },
  };
  const buffers = new WeakMap<object, Buffer>();
  const proxy = await tcpProxy(targetUrl, 6379, (chunk, connection) => {
    let buf = Buffer.concat([buffers.get(connection) ?? Buffer.alloc(0), chunk]);
    for (;;) {
      const parsed = parseCommand(buf);
      if (!parsed) break;
      counts.commands[parsed.name] = (counts.commands[parsed.name] ?? 0) + 1;
      buf = buf.subarray(parsed.length);
    }
    buffers.set(connection, buf);
  });
  return Object.assign(counts, proxy);
}

/** parseCommand reads one `*N\r\n($len\r\ndata\r\n)*N` command from the start of `buf`, or undefined if incomplete. */
function parseCommand(buf: Buffer): { name: string; length: number } | undefined {
  const line = (at: number) => {
    const end = buf.indexOf("\r\n", at);
    return end < 0 ? undefined : { text: buf.toString("latin1", at, end), next: end + 2 };
  };
  const head = line(0);
  if (!head) return undefined;
  if (!head.text.startsWith("*")) throw new Error(`unexpected Redis client data: ${head.text}`);
  let at = head.next;
  let name = "";
  for (let i = 0; i < Number(head.text.slice(1)); i++) {
    const len = line(at);
    if (!len) return undefined;
    const size = Number(len.text.slice(1));
    if (buf.length < len.next + size + 2) return undefined;
    if (i === 0) name = buf.toString("latin1", len.next, len.next + size).toLowerCase();
    at = len.next + size + 2;
  }
  return { name, length: at };
}
