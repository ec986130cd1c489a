// An HTTP proxy in front of a real edge that controls how response bodies flow (requests
// pass unchanged, Host included, so signatures still verify): it can hold
// a body back after its first N bytes until the test opens the gate, or cut the connection
// after N bytes, once. It is the network between the agent and the edge, under the test's
// control (a slow or broken link is otherwise a matter of timing); the edge behind it is real.
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  method: string;
  path: string;
  range: string | undefined;
}

export interface GateProxy {
  url: string;
  /** Every request forwarded, in order. */
  requests: ProxiedRequest[];
  /** Bodies of GETs whose path matches stop after `bytes` until open() (the rest waits in the proxy). */
  holdAfter(bytes: number, match: (path: string) => boolean): void;
  /** Bytes of response bodies for `path` sent on to the client so far. */
  forwardedBytes(path: string): number;
  /** Lets every held body flow, and stops holding. */
  open(): void;
  /** The next GET whose path matches is cut (connection destroyed) after `bytes` of its body. */
  cutNextAfter(bytes: number, match: (path: string) => boolean): void;
  close(): Promise<void>;
}

export async function startGateProxy(target: string): Promise<GateProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  let hold: { bytes: number; match: (path: string) => boolean } | undefined;
  let cut: { bytes: number; match: (path: string) => boolean } | undefined;
  const waiting = new Set<{ release: () => void }>();
  const forwarded = new Map<string, number>();
  const count = (path: string, bytes: number) => forwarded.set(path, (forwarded.get(path) ?? 0) + bytes);

  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    const method = req.method ?? "GET";
    requests.push({ method, path, range: req.headers.range });
    const holdRule = method === "GET" && hold?.match(path) ? hold.bytes : undefined;
    let cutRule: number | undefined;
    if (method === "GET" && cut?.match(path)) {
      cutRule = cut.bytes;
      cut = undefined;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, method, path, headers: req.headers }, (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let sent = 0;
      const held: Buffer[] = [];
      let gate: { release: () => void } | undefined;
      let released = false;
      up.on("data", (chunk: Buffer) => {
        if (cutRule !== undefined && sent + chunk.length >= cutRule) {
          res.write(chunk.subarray(0, cutRule - sent));
          count(path, cutRule - sent);
          up.destroy();
          // Let the bytes before the cut reach the agent, then break the connection under it.
          setImmediate(() => res.socket?.destroy());
          cutRule = Number.NaN;
          return;
        }
        if (Number.isNaN(cutRule)) return;
        // Checked as bytes come, not when the request came: after open() nothing new is held.
        if (holdRule !== undefined && hold !== undefined && !released && (gate || sent + chunk.length > holdRule)) {
          const room = gate ? 0 : holdRule - sent;
          if (room > 0) res.write(chunk.subarray(0, room));
          count(path, room);
          sent += room;
          held.push(chunk.subarray(room));
          if (!gate) {
            gate = {
              release: () => {
                waiting.delete(gate!);
                released = true;
                for (const piece of held.splice(0)) {
                  res.write(piece);
                  count(path, piece.length);
                }
                gate = undefined;
                if (up.readableEnded) res.end();
              },
            };
            waiting.add(gate);
          }
          return;
        }
        sent += chunk.length;
        res.write(chunk);
        count(path, chunk.length);
      });
      up.on("end", () => {
        if (!gate && !Number.isNaN(cutRule)) res.end();
      });
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    holdAfter(bytes, match) {
      hold = { bytes, match };
    },
    forwardedBytes: (path) => forwarded.get(path) ?? 0,
    open() {
      hold = undefined;
      for (const g of [...waiting]) g.release();
    },
    cutNextAfter(bytes, match) {
      cut = { bytes, match };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
