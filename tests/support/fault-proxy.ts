import type { Socket, TCPSocketListener } from "bun";

/**
 * ConnectionFault is what a FaultProxy does to connections: pass them through, reset them (every
 * open connection is cut, and each new one is accepted and cut at once, so the client sees
 * ECONNRESET / "socket hang up"), refuse them (nothing listens on the port: ECONNREFUSED), or
 * stall them (open connections stay open but nothing passes either way, and new ones are accepted
 * and never forwarded: a server that hangs, which only a client's timeouts notice).
 */
export type ConnectionFault = "pass" | "reset" | "refuse" | "stall";

/** FaultProxy is a TCP proxy on 127.0.0.1 in front of a local server that can cut or refuse connections on demand. */
export interface FaultProxy {
  readonly port: number;
  /** Connections accepted and then cut on purpose. */
  readonly reset: number;
  set(fault: ConnectionFault): void;
  stop(): void;
}

interface Link {
  peer?: Socket<Link>;
  /** Bytes for this link's socket that it has not taken yet (not connected, or backpressure). */
  queue: Uint8Array[];
  connected: boolean;
}

function write(to: Socket<Link>, chunk: Uint8Array): void {
  const link = to.data;
  if (!link.connected || link.queue.length > 0) {
    link.queue.push(chunk);
    return;
  }
  const n = to.write(chunk);
  if (n < chunk.byteLength) link.queue.push(chunk.subarray(Math.max(0, n)));
}

function flush(s: Socket<Link>): void {
  const q = s.data.queue;
  while (q.length > 0) {
    const chunk = q[0]!;
    const n = s.write(chunk);
    if (n < chunk.byteLength) {
      q[0] = chunk.subarray(Math.max(0, n));
      return;
    }
    q.shift();
  }
}

/** startFaultProxy forwards every connection on an ephemeral 127.0.0.1 port to `targetPort` until told otherwise. */
export function startFaultProxy(targetPort: number): FaultProxy {
  let fault: ConnectionFault = "pass";
  let resets = 0;
  const open = new Set<Socket<Link>>();

  const handlers = {
    open(client: Socket<Link>) {
      client.data = { queue: [], connected: true };
      if (fault === "stall") {
        open.add(client);
        return;
      }
      if (fault !== "pass") {
        resets++;
        client.terminate();
        return;
      }
      open.add(client);
      const upLink: Link = { peer: client, queue: [], connected: false };
      void Bun.connect<Link>({
        hostname: "127.0.0.1",
        port: targetPort,
        data: upLink,
        socket: {
          open(up) {
            if (!open.has(client)) return void up.end();
            up.data.connected = true;
            client.data.peer = up;
            open.add(up);
            flush(up);
          },
          data: (up, chunk) => {
            if (fault !== "stall") write(up.data.peer!, new Uint8Array(chunk));
          },
          drain: (up) => flush(up),
          close(up) {
            open.delete(up);
            client.end();
          },
          error: () => void client.end(),
          connectError: () => void client.terminate(),
        },
      }).catch(() => client.terminate());
      // Bytes that arrive before the upstream connection is open wait in its link's queue.
      client.data.peer = { data: upLink } as Socket<Link>;
    },
    data(client: Socket<Link>, chunk: Buffer) {
      const up = client.data.peer;
      if (!up || fault === "stall") return;
      if (!up.data.connected) up.data.queue.push(new Uint8Array(chunk));
      else write(up, new Uint8Array(chunk));
    },
    drain: (client: Socket<Link>) => flush(client),
    close(client: Socket<Link>) {
      open.delete(client);
      const up = client.data.peer;
      if (up?.data.connected) up.end();
    },
    error() {},
  };

  const listen = (port: number): TCPSocketListener<Link> => Bun.listen<Link>({ hostname: "127.0.0.1", port, socket: handlers });
  let listener: TCPSocketListener<Link> | undefined = listen(0);
  const port = listener.port;
  const cutAll = () => {
    for (const s of open) s.terminate();
    open.clear();
  };

  return {
    port,
    get reset() {
      return resets;
    },
    set(next) {
      const was = fault;
      fault = next;
      // Leaving a stall cuts its connections too: the bytes it swallowed left their streams broken.
      if ((next !== "pass" && next !== "stall") || (was === "stall" && next !== "stall")) cutAll();
      if (next === "refuse") {
        listener?.stop(true);
        listener = undefined;
      } else {
        listener ??= listen(port);
      }
    },
    stop() {
      cutAll();
      listener?.stop(true);
      listener = undefined;
    },
  };
}
