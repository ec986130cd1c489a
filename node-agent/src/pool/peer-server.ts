// The peer listener (on the cluster network, not loopback): serves whole blocks to other
// members with the S3 GET they send (Range = one block, If-Match = its ETag), only when
// signed with the cluster credential. Blocks come from this node's cache, else from the
// edge (this node is their owner) through the shared read path, so concurrent requests
// for one block make one fetch. Each answer carries the block's CRC32C. A request with
// Cache-Control: only-if-cached is answered from the cache or with 504, never from the edge.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AsyncLocalStorage } from "node:async_hooks";
import { S3Error } from "../../../s3/errors.ts";
import { parseRangeHeader } from "../../../s3/range.ts";
import { parseSignedRequest, verifySignedRequest } from "../../../s3/sigv4-verify.ts";
import { renderErrorDocument } from "../../../s3/xml.ts";
import type { Logger } from "../log.ts";
import type { ObjectInfo } from "../origin/object-origin.ts";
import type { LentBlock } from "./pool.ts";
import type { Membership } from "./membership.ts";
import { blockCrc32c, CACHE_CONTROL_HEADER, CRC32C_HEADER, ONLY_IF_CACHED, PIN_HEADER, WARM_FROM_HEADER, WARM_HEADER } from "./peer-client.ts";
import type { WarmRequest } from "./placement.ts";
import type { PoolStats } from "./pool-stats.ts";
import { blockKeyOf } from "./rendezvous.ts";

export interface PeerServerOptions {
  membership: Membership;
  /** Object metadata (the agent's metadata cache). */
  head: (bucket: string, key: string) => Promise<ObjectInfo | undefined>;
  /** One block through the agent's read path (cache, else one coalesced fill), lent until release(). */
  block: (info: ObjectInfo, index: number) => Promise<LentBlock>;
  /** One block from this node's cache only, undefined when it is not held (only-if-cached). */
  cachedBlock: (info: ObjectInfo, index: number) => Promise<LentBlock | undefined>;
  blockSizeBytes: number;
  /** Marks reads done on a peer's behalf, so the pool origin never forwards them again. */
  servingPeer: AsyncLocalStorage<true>;
  stats: PoolStats;
  logger: Logger;
  /** True once this node is leaving: health answers 503 so static peers drop it. */
  leaving: () => boolean;
  /** Marks loads a warm or handoff asked for (replicas read through the pool, handoffs copy from the sender). */
  warming: AsyncLocalStorage<WarmRequest>;
  /** Pins a prefix in this node's cache (a cluster warm with --pin). */
  pin: (bucket: string, prefix: string) => Promise<void>;
  /** Whether this node's cache holds the block (answers only-if-cached requests). */
  holds: (bucket: string, key: string, etag: string, index: number) => boolean;
}

/** First pins of a prefix in progress: one walk of the cache per prefix, however many warms arrive at once. */
const pinning = new Map<string, Promise<void>>();

async function pinOnce(options: PeerServerOptions, bucket: string, prefix: string): Promise<void> {
  const k = `${bucket}\n${prefix}`;
  let p = pinning.get(k);
  if (!p) {
    p = options.pin(bucket, prefix);
    pinning.set(k, p);
    p.catch(() => pinning.delete(k));
  }
  await p;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What a peer is told: S3 errors as they are, anything else a retryable 503. */
function toS3Error(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  return new S3Error("ServiceUnavailable", `this peer cannot serve the block now: ${error instanceof Error ? error.message : String(error)}`);
}

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(",") : value);
  return headers;
}

async function authenticate(req: IncomingMessage, url: URL, membership: Membership): Promise<void> {
  const incoming = { method: req.method ?? "GET", url, headers: headersOf(req) };
  const signed = parseSignedRequest(incoming);
  const credential = membership.credential();
  if (!credential || signed.accessKeyId !== credential.accessKeyId) throw new S3Error("InvalidAccessKeyId", "Peer requests must be signed with the cluster credential.");
  await verifySignedRequest(incoming, signed, credential.secretAccessKey);
}

async function serve(req: IncomingMessage, res: ServerResponse, options: PeerServerOptions): Promise<void> {
  const url = new URL(req.url ?? "/", "http://peer.local");
  if (url.pathname === "/_ferry/peer/health") {
    res.statusCode = options.leaving() ? 503 : 200;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: !options.leaving(), id: options.membership.selfId }));
    return;
  }
  await authenticate(req, url, options.membership);
  if (req.method !== "GET") throw new S3Error("MethodNotAllowed", "Peers serve block reads only");
  const slash = url.pathname.indexOf("/", 1);
  if (slash < 0) throw new S3Error("InvalidRequest", "Peers serve object blocks only");
  let bucket: string;
  let key: string;
  try {
    bucket = decodeURIComponent(url.pathname.slice(1, slash));
    key = decodeURIComponent(url.pathname.slice(slash + 1));
  } catch {
    throw new S3Error("InvalidURI", "Couldn't parse the specified URI.");
  }
  const bs = options.blockSizeBytes;
  const notHeld = () => {
    options.stats.notHeldAnswers++;
    res.statusCode = 504;
    res.setHeader("content-length", 0);
    res.end();
  };
  const onlyIfCached = header(req, CACHE_CONTROL_HEADER)?.includes(ONLY_IF_CACHED) === true;
  if (onlyIfCached) {
    // A node that now owns the block asks whether this one (its owner before) still holds
    // it: answered from the cache index before anything could reach the edge.
    const etag = /^"(.*)"$/.exec(header(req, "if-match") ?? "")?.[1];
    const first = parseRangeHeader(req.headers.range);
    if (!etag || first?.kind !== "first" || !options.holds(bucket, key, etag, Math.floor(first.first / bs))) {
      notHeld();
      return;
    }
  }
  const info = await options.head(bucket, key);
  if (!info) throw new S3Error("NoSuchKey", "The specified key does not exist.", { details: { Key: key } });
  if (req.headers["if-match"] !== `"${info.etag}"`) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  const range = parseRangeHeader(req.headers.range);
  const offset = range?.kind === "first" ? range.first : -1;
  const index = Math.floor(offset / bs);
  const length = Math.min(bs, info.size - offset);
  // Only whole blocks of this node's block size: anything else is a configuration mismatch.
  if (range?.kind !== "first" || offset % bs !== 0 || offset >= info.size || range.last !== offset + length - 1) {
    throw new S3Error("InvalidRange", `Peers serve whole blocks of ${bs} bytes`);
  }
  const warm = header(req, WARM_HEADER);
  if (warm !== undefined && warm !== "1" && warm !== "replica" && warm !== "handoff") throw new S3Error("InvalidArgument", `unknown ${WARM_HEADER}: ${warm}`);
  const pinText = header(req, PIN_HEADER);
  if (warm && pinText !== undefined) {
    let prefix: string;
    try {
      prefix = decodeURIComponent(pinText);
    } catch {
      throw new S3Error("InvalidArgument", `${PIN_HEADER} is not URI-encoded`);
    }
    if (!key.startsWith(prefix)) throw new S3Error("InvalidArgument", `${PIN_HEADER} does not cover the key`);
    await pinOnce(options, bucket, prefix);
  }
  const from = header(req, WARM_FROM_HEADER);
  // only-if-cached reads the cache alone: a block evicted since the index check above is
  // still a 504, never a read of the edge.
  const lease = onlyIfCached
    ? await options.cachedBlock(info, index)
    : warm === "replica" || warm === "handoff"
      ? await options.warming.run(warm === "handoff" && from ? { from } : {}, () => options.block(info, index))
      : await options.servingPeer.run(true, () => options.block(info, index));
  if (!lease) {
    notHeld();
    return;
  }
  if (warm) {
    lease.release();
    // Distinct bytes are counted once per block, by its first owner: replicas are copies.
    if (warm === "1") options.stats.ownedRead(blockKeyOf(bucket, key, info.etag, index), length);
    else if (warm === "replica") options.stats.replicaBlocks++;
    res.statusCode = 204;
    res.end();
    return;
  }
  // The lent memory must stay untouched until the socket has taken it.
  res.once("close", () => lease.release());
  const data = lease.data;
  options.stats.servedToPeer(blockKeyOf(bucket, key, info.etag, index), data.length);
  res.statusCode = 206;
  res.setHeader("etag", `"${info.etag}"`);
  res.setHeader("content-range", `bytes ${offset}-${offset + data.length - 1}/${info.size}`);
  res.setHeader("content-length", data.length);
  res.setHeader(CRC32C_HEADER, blockCrc32c(data));
  res.end(data);
}

export function createPeerServer(options: PeerServerOptions): Server {
  return createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    serve(req, res, options).catch((error: unknown) => {
      const s3 = toS3Error(error);
      if (s3.status >= 500) options.logger.warn("peer request failed", { url: req.url, error: error instanceof Error ? error.message : String(error) });
      else options.stats.refusedPeerRequests++;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = renderErrorDocument({ code: s3.code, message: s3.message, details: s3.details }, "peer");
      res.statusCode = s3.status;
      res.setHeader("content-type", "application/xml");
      res.setHeader("content-length", Buffer.byteLength(body));
      res.end(body);
    });
  });
}
