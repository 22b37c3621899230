import { connect, createServer, type Server, type Socket } from "node:net";

/** CountingProxy forwards TCP to Postgres and counts the client's separate writes. */
export interface CountingProxy {
  port: number;
  /** Writes the client has made; once connected, each is one round trip's worth of requests. */
  flushes: number;
  /** url is `target` with its port pointed at the proxy. */
  url: string;
  close(): void;
}

/**
 * countingProxy forwards TCP to the Postgres of `target` and counts the chunks the client sends:
 * a way to check how many round trips an operation costs (BEGIN pipelined with the first
 * statement, write-behind statements sent with COMMIT).
 */
export async function countingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(to.port || 5432), to.hostname);
    sockets.add(client).add(upstream);
    client.on("data", (chunk) => {
      state.flushes++;
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
  const via = new URL(target);
  via.port = String(port);
  const state: CountingProxy = {
    port,
    flushes: 0,
    url: via.toString(),
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  return state;
}
