// The agent's local S3 endpoint (read side) on node:http: ListBuckets, ListObjects(V2),
// HeadBucket, HeadObject and GetObject with Range and conditionals, served from the cache.
// Unsigned or any-key requests are accepted unless a local key is configured; writes are
// refused. The first block is fetched before the status line goes out, so origin errors
// still become proper S3 errors; a failure after that aborts the connection, so a client
// never mistakes a cut body for a whole one.
import type { IncomingMessage, ServerResponse } from "node:http";
import { checkPreconditions } from "../../../s3/conditionals.ts";
import { S3Error } from "../../../s3/errors.ts";
import { parseEncodingType, parseMaxKeys, renderListBuckets, renderListObjectsV1, renderListObjectsV2 } from "../../../s3/listing-xml.ts";
import { contentRange, parseRangeHeader, resolveRange } from "../../../s3/range.ts";
import type { RecentBlocks } from "./recent-blocks.ts";
import type { HotObjects } from "../read/hot-objects.ts";
import { parseSignedRequest, verifySignedRequest } from "../../../s3/sigv4-verify.ts";
import type { Credentials } from "../../../s3/sigv4.ts";
import { renderErrorDocument } from "../../../s3/xml.ts";
import type { Logger } from "../log.ts";
import type { MetadataCache } from "../metadata/metadata-cache.ts";
import { OriginChangedError, OriginRefusedError, OriginUnavailableError, type ObjectInfo } from "../origin/object-origin.ts";
import { LineageMismatchError, type ObjectReader } from "../read/object-reader.ts";
import type { RequestMetrics } from "./request-metrics.ts";

export interface S3EndpointOptions {
  metadata: MetadataCache;
  reader: ObjectReader;
  logger: Logger;
  metrics: RequestMetrics;
  /** When set, requests must be SigV4-signed with this key. */
  localKey?: Credentials;
  /** Verified blocks held in memory, shared with the mount: ranges smaller than a block come from here. */
  recent?: RecentBlocks;
  /** Small whole objects held in memory: GETs of them are one socket write. */
  hot?: HotObjects;
}

/** Maps what went wrong to the S3 error a client should see. */
export function toS3Error(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof OriginUnavailableError) return new S3Error("ServiceUnavailable", `The Ferry edge is unreachable and this data is not cached: ${error.message}`);
  if (error instanceof OriginRefusedError) {
    if (error.status === 403) return new S3Error("AccessDenied", `The edge refused this node's key: ${error.message}`);
    return new S3Error("InternalError", error.message);
  }
  if (error instanceof OriginChangedError) return new S3Error("SlowDown", "The object changed while it was read; retry");
  if (error instanceof LineageMismatchError) return new S3Error("InternalError", error.message);
  return new S3Error("InternalError", "We encountered an internal error. Please try again.");
}

/** The client closed the connection mid-response: routine for load generators and killed readers. */
class ClientGoneError extends Error {
  override readonly name = "ClientGoneError";
}

/** Waits for the socket to take more, or fails if the client went away. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      res.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      res.off("drain", onDrain);
      reject(new ClientGoneError("client went away"));
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

export class S3Endpoint {
  private readonly options: S3EndpointOptions;
  private requests = 0;

  constructor(options: S3EndpointOptions) {
    this.options = options;
  }

  private requestId(): string {
    this.requests = (this.requests + 1) % 0x1_0000_0000;
    return `FERRY${process.pid.toString(16)}${this.requests.toString(16).padStart(8, "0")}`.toUpperCase();
  }

  /** The node:http request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const id = this.requestId();
    let operation = "unknown";
    this.serve(req, res, id, (op) => (operation = op))
      .catch((error: unknown) => this.fail(req, res, id, error))
      .finally(() => this.options.metrics.observe(operation, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9));
  };

  private fail(req: IncomingMessage, res: ServerResponse, id: string, error: unknown): void {
    const s3 = toS3Error(error);
    if (error instanceof ClientGoneError) this.options.logger.debug("client went away", { method: req.method, url: req.url });
    else if (s3.code === "InternalError") this.options.logger.error("request failed", { method: req.method, url: req.url, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    if (res.headersSent) {
      // Never let a truncated body look complete.
      res.destroy(error instanceof Error ? error : undefined);
      return;
    }
    res.statusCode = s3.status;
    res.setHeader("x-amz-request-id", id);
    if (s3.status === 304 || req.method === "HEAD") {
      res.end();
      return;
    }
    const body = renderErrorDocument({ code: s3.code, message: s3.message, details: s3.details }, id);
    res.setHeader("content-type", "application/xml");
    res.setHeader("content-length", Buffer.byteLength(body));
    res.end(body);
  }

  private async authenticate(req: IncomingMessage, url: URL): Promise<void> {
    const key = this.options.localKey;
    if (!key) return;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(",") : value);
    }
    const incoming = { method: req.method ?? "GET", url, headers };
    const signed = parseSignedRequest(incoming);
    if (signed.accessKeyId !== key.accessKeyId) throw new S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    await verifySignedRequest(incoming, signed, key.secretAccessKey);
  }

  private async serve(req: IncomingMessage, res: ServerResponse, id: string, named: (op: string) => void): Promise<void> {
    const url = new URL(req.url ?? "/", "http://agent.local");
    const slash = url.pathname.indexOf("/", 1);
    let bucket: string;
    let key: string;
    try {
      bucket = decodeURIComponent(slash < 0 ? url.pathname.slice(1) : url.pathname.slice(1, slash));
      key = slash < 0 ? "" : decodeURIComponent(url.pathname.slice(slash + 1));
    } catch {
      throw new S3Error("InvalidURI", "Couldn't parse the specified URI.");
    }
    await this.authenticate(req, url);
    res.setHeader("x-amz-request-id", id);
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      named("Write");
      throw new S3Error("MethodNotAllowed", "This Ferry agent endpoint is read-only; write through the edge", { details: { Method: method } });
    }
    if (bucket === "") {
      named("ListBuckets");
      return this.sendXml(res, renderListBuckets(await this.options.metadata.listBuckets(), { id: "ferry-agent", name: "ferry-agent" }, "2024-01-01T00:00:00.000Z"));
    }
    if (!(await this.options.metadata.listBuckets()).includes(bucket)) throw new S3Error("NoSuchBucket", "The specified bucket does not exist", { details: { BucketName: bucket } });
    if (key === "") return this.serveBucket(req, res, url, bucket, named);
    named(method === "HEAD" ? "HeadObject" : "GetObject");
    // A read that starts in the first block gets that block with the metadata (one round trip).
    const from = /^bytes=(\d+)-/.exec(req.headers.range ?? "bytes=0-")?.[1];
    const readsFront = method === "GET" && from !== undefined && Number(from) < this.options.reader.blockSizeBytes;
    const info = readsFront ? await this.options.metadata.headForRead(bucket, key) : await this.options.metadata.head(bucket, key);
    if (!info) throw new S3Error("NoSuchKey", "The specified key does not exist.", { details: { Key: key } });
    return this.sendObject(req, res, url, info);
  }

  private async serveBucket(req: IncomingMessage, res: ServerResponse, url: URL, bucket: string, named: (op: string) => void): Promise<void> {
    const q = url.searchParams;
    if (req.method === "HEAD") {
      named("HeadBucket");
      res.setHeader("x-amz-bucket-region", "auto");
      res.end();
      return;
    }
    if (q.has("location")) {
      named("GetBucketLocation");
      return this.sendXml(res, '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>');
    }
    if (q.has("uploads") || q.has("versioning") || q.has("acl") || q.has("policy")) throw new S3Error("NotImplemented", "The Ferry agent serves reads only");
    const encodingType = parseEncodingType(q.get("encoding-type"));
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeys = parseMaxKeys(q.get("max-keys"));
    if (q.get("list-type") === "2") {
      named("ListObjectsV2");
      const token = q.get("continuation-token") ?? undefined;
      const startAfter = q.get("start-after") ?? undefined;
      const page = await this.options.metadata.list(bucket, { prefix, delimiter, maxKeys, ...(token ? { continuationToken: token } : {}), ...(startAfter ? { startAfter } : {}) });
      return this.sendXml(res, renderListObjectsV2({ ...page, bucket, prefix, delimiter, maxKeys, ...(encodingType ? { encodingType } : {}), ...(token ? { continuationToken: token } : {}), ...(startAfter ? { startAfter } : {}) }));
    }
    named("ListObjects");
    const marker = q.get("marker") ?? "";
    const page = await this.options.metadata.list(bucket, { prefix, delimiter, maxKeys, ...(marker ? { startAfter: marker } : {}) });
    const last = [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort().at(-1);
    return this.sendXml(res, renderListObjectsV1({ ...page, bucket, prefix, delimiter, maxKeys, marker, ...(encodingType ? { encodingType } : {}), ...(page.isTruncated && last ? { nextMarker: last } : {}) }));
  }

  private sendXml(res: ServerResponse, xml: string | Uint8Array): void {
    // Encoded once: a LIST page is ~240 KB, and byteLength then end(string) walk it twice.
    const body = typeof xml === "string" ? Buffer.from(xml) : xml;
    res.setHeader("content-type", "application/xml");
    res.setHeader("content-length", body.length);
    res.end(body);
  }

  private async sendObject(req: IncomingMessage, res: ServerResponse, url: URL, info: ObjectInfo): Promise<void> {
    // Straight from node's parsed headers (already lower-cased): no Headers object per GET.
    const h = req.headers;
    checkPreconditions({ ifMatch: h["if-match"] ?? null, ifNoneMatch: h["if-none-match"] ?? null, ifModifiedSince: h["if-modified-since"] ?? null, ifUnmodifiedSince: h["if-unmodified-since"] ?? null }, { etag: info.etag, lastModified: info.lastModified });
    const rangeRequest = parseRangeHeader(req.headers.range);
    const range = rangeRequest ? resolveRange(rangeRequest, info.size) : undefined;
    const offset = range?.offset ?? 0;
    const length = range?.length ?? info.size;
    res.setHeader("etag", `"${info.etag}"`);
    res.setHeader("last-modified", info.lastModified.toUTCString());
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("content-type", url.searchParams.get("response-content-type") ?? info.contentType);
    for (const [name, value] of Object.entries(info.metadata)) res.setHeader(`x-amz-meta-${name}`, value);
    res.setHeader("content-length", length);
    if (range) res.setHeader("content-range", contentRange(range, info.size));
    res.statusCode = range ? 206 : 200;
    if (req.method === "HEAD" || length === 0) {
      res.end();
      return;
    }
    const recent = this.options.recent;
    const bs = this.options.reader.blockSizeBytes;
    const wholeObject = offset === 0 && length === info.size;
    const hot = this.options.hot;
    if (hot && info.size <= hot.maxObjectBytes) {
      // A small object read again (an epoch of small samples): from memory, one write. Held
      // bytes never change, so every response may write from the same buffer.
      const fromMemory = hot.get(info);
      if (fromMemory) this.options.reader.countMemoryHit(length);
      const held = fromMemory ?? (wholeObject && hot.admits(info) ? await this.holdHot(hot, info) : undefined);
      if (held) {
        res.end(wholeObject ? held : held.subarray(offset, offset + length));
        return;
      }
    }
    if (recent && range && !wholeObject && Math.floor(offset / bs) === Math.floor((offset + length - 1) / bs)) {
      // Random reads of records inside big files (a data loader's pattern): without the held
      // block each one would read and CRC-check a whole block from disk for a few hundred KiB.
      // The socket writes from the held block; it is given back when the write completed (after
      // a failed write it is left to the GC, as below).
      const lease = await recent.lend(info, offset, length);
      res.write(lease.data, (error) => {
        if (!error) lease.release();
      });
      res.end();
      return;
    }
    const chunks = this.options.reader.read(info, offset, length);
    // The first block decides the status: fetch it before anything is sent.
    let next = await chunks.next();
    try {
      while (!next.done) {
        const lease = next.value;
        // The socket holds the bytes until its write completes: only then may the cache reuse them.
        // On a failed write the lease is left to the GC (the socket may still reference it).
        const flowing = res.write(lease.data, (error) => {
          if (!error) lease.release();
        });
        if (!flowing) await drained(res);
        next = await chunks.next();
      }
    } finally {
      // Stopped early (client gone): lets the reader give back the blocks it had prefetched.
      await chunks.return(undefined);
    }
    res.end();
  }

  /** Reads a small object (one block, verified on the way) and copies it into the hot set. */
  private async holdHot(hot: HotObjects, info: ObjectInfo): Promise<Buffer> {
    const lease = await this.options.reader.block(info, 0);
    try {
      if (lease.data.length !== info.size) throw new RangeError(`block 0 of ${info.bucket}/${info.key} holds ${lease.data.length} bytes, not ${info.size}`);
      const bytes = Buffer.allocUnsafeSlow(info.size);
      bytes.set(lease.data);
      hot.add(info, bytes);
      return bytes;
    } finally {
      lease.release();
    }
  }
}
