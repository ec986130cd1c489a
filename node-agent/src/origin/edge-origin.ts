// The edge as an origin: S3 over HTTP(S), signed with the node's key through the shared
// SigV4 code. Ranged reads pin the ETag with If-Match, so a changed object can never be
// stitched from two versions. Transient failures are retried with jittered backoff.
import { Agent, request, type Dispatcher } from "undici";
import { parseErrorDocument, parseListBuckets, parseListObjectsV2, type ListResult } from "../../../s3/listing-xml.ts";
import { RequestSigner, UNSIGNED_PAYLOAD, uriEncode, type Credentials } from "../../../s3/sigv4.ts";
import { nodeDigests } from "../../../s3/node-digests.ts";
import { ArrivingBytes, type RangeMemorySource } from "./arriving-bytes.ts";
import { OriginChangedError, OriginRefusedError, OriginUnavailableError, type ListParams, type ObjectInfo, type ObjectOrigin, type SmallObject } from "./object-origin.ts";

export interface EdgeOriginOptions {
  endpoint: URL;
  credentials: Credentials;
  /** Per-attempt timeout. Default 30 s. */
  timeoutMs?: number;
  /** Attempts for idempotent requests on network errors, 429 and 5xx. Default 4. */
  attempts?: number;
  /** Parallel connections to the edge. Default 64. */
  connections?: number;
  /** Memory for streamed ranges (streamRange, headWithFirstBlock): a BufferPool; default fresh buffers. */
  memory?: RangeMemorySource;
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function header(headers: RawResponse["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

export class EdgeOrigin implements ObjectOrigin {
  private readonly endpoint: URL;
  private readonly signer: RequestSigner;
  private readonly dispatcher: Agent;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly memory: RangeMemorySource | undefined;

  constructor(options: EdgeOriginOptions) {
    this.memory = options.memory;
    this.endpoint = options.endpoint;
    this.signer = new RequestSigner(options.credentials, { digests: nodeDigests });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.attempts = options.attempts ?? 4;
    this.dispatcher = new Agent({ connections: options.connections ?? 64, keepAliveTimeout: 30_000, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  private url(bucket: string, key?: string, query?: Record<string, string>): URL {
    const path = `/${uriEncode(bucket, { keepSlash: false })}${key === undefined ? "" : `/${uriEncode(key, { keepSlash: true })}`}`;
    const url = new URL(path, this.endpoint);
    for (const [name, value] of Object.entries(query ?? {})) url.searchParams.append(name, value);
    // Sorted, RFC 3986-encoded query: what is signed is exactly what is sent.
    url.search = [...url.searchParams.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, v]) => `${uriEncode(n, { keepSlash: false })}=${uriEncode(v, { keepSlash: false })}`).join("&");
    return url;
  }

  /**
   * One request, retried on network errors, 429 and 5xx, then handed to `take` (whose own
   * failures, say a body cut short, are retried too). Only idempotent requests come here.
   */
  private async exchange<T>(method: string, url: URL, extraHeaders: Record<string, string>, take: (response: Dispatcher.ResponseData) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await sleep(Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random()));
      try {
        const headers = await this.signer.sign({ method, url, headers: extraHeaders, payloadHash: UNSIGNED_PAYLOAD });
        const response = await request(url, { method: method as "GET", headers, dispatcher: this.dispatcher, signal: AbortSignal.timeout(this.timeoutMs) });
        if (response.statusCode === 429 || response.statusCode >= 500) {
          const text = await response.body.text();
          lastError = new OriginUnavailableError(`edge answered ${response.statusCode} for ${method} ${url.pathname}`, { status: response.statusCode, code: parseErrorDocument(text)?.code ?? "" });
          continue;
        }
        return await take(response);
      } catch (error) {
        lastError = error;
      }
    }
    if (lastError instanceof OriginUnavailableError) throw lastError;
    throw new OriginUnavailableError(`edge unreachable at ${this.endpoint.origin}: ${lastError instanceof Error ? lastError.message : String(lastError)}`, { cause: lastError });
  }

  private send(method: string, url: URL, extraHeaders: Record<string, string> = {}): Promise<RawResponse> {
    return this.exchange(method, url, extraHeaders, (response) => this.drained(response));
  }

  /** A response whose body is still to be read (the caller reads or drops it). */
  private open(method: string, url: URL, extraHeaders: Record<string, string>): Promise<Dispatcher.ResponseData> {
    return this.exchange(method, url, extraHeaders, async (response) => response);
  }

  /** A response read whole (metadata, listings, error documents). */
  private async drained(response: Dispatcher.ResponseData): Promise<RawResponse> {
    return { status: response.statusCode, headers: response.headers, body: new Uint8Array(await response.body.arrayBuffer()) };
  }

  /**
   * Streams [offset, offset + length) of version `etag` into `into`, from `response` if
   * given (a ranged GET already answered), else from requests of its own. A body cut short
   * resumes where it stopped, pinned to the same ETag, up to `attempts` times.
   */
  private async streamInto(into: ArrivingBytes, bucket: string, key: string, etag: string, offset: number, response: Dispatcher.ResponseData | undefined): Promise<void> {
    const url = this.url(bucket, key);
    const length = into.length;
    for (let resumes = 0; ; resumes++) {
      const from = offset + into.arrived;
      if (!response) {
        response = await this.open("GET", url, { range: `bytes=${from}-${offset + length - 1}`, "if-match": `"${etag}"` });
        if (response.statusCode === 412 || response.statusCode === 404) {
          await response.body.dump();
          throw new OriginChangedError(`${bucket}/${key} no longer has ETag ${etag}`, { status: response.statusCode });
        }
        if (response.statusCode !== 206 && response.statusCode !== 200) throw this.refused(await this.drained(response), `GET ${bucket}/${key}`);
      }
      // A 200 is the whole object (a server that ignored the Range): skip to the range.
      let skip = response.statusCode === 200 ? from : 0;
      const body = response.body;
      response = undefined;
      try {
        for await (const piece of body as AsyncIterable<Buffer>) {
          let chunk: Uint8Array = piece;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
          }
          const room = length - into.arrived;
          into.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          if (into.arrived === length) break; // leaving the loop drops the rest of a longer body
        }
        if (into.arrived === length) return;
        throw new OriginUnavailableError(`edge sent ${into.arrived} bytes of ${bucket}/${key} at ${offset}, expected ${length}`);
      } catch (error) {
        if (into.arrived === length) return;
        if (resumes + 1 >= this.attempts || error instanceof OriginChangedError) throw error;
      }
    }
  }

  private refused(response: RawResponse, what: string): OriginRefusedError {
    const error = parseErrorDocument(new TextDecoder().decode(response.body));
    return new OriginRefusedError(`edge refused ${what}: ${response.status} ${error?.code ?? ""} ${error?.message ?? ""}`.trim(), { status: response.status, ...(error ? { code: error.code } : {}) });
  }

  private info(bucket: string, key: string, headers: RawResponse["headers"]): ObjectInfo {
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith("x-amz-meta-") && value !== undefined) metadata[name.slice("x-amz-meta-".length)] = Array.isArray(value) ? value.join(",") : value;
    }
    const lastModified = header(headers, "last-modified");
    return {
      bucket,
      key,
      size: Number(header(headers, "content-length") ?? 0),
      etag: unquote(header(headers, "etag") ?? ""),
      lastModified: lastModified ? new Date(lastModified) : new Date(0),
      contentType: header(headers, "content-type") ?? "binary/octet-stream",
      metadata,
    };
  }

  async listBuckets(): Promise<string[]> {
    const response = await this.send("GET", new URL("/", this.endpoint));
    if (response.status !== 200) throw this.refused(response, "ListBuckets");
    return parseListBuckets(new TextDecoder().decode(response.body));
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const response = await this.send("HEAD", this.url(bucket, key));
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw this.refused(response, `HEAD ${bucket}/${key}`);
    return this.info(bucket, key, response.headers);
  }

  async headWithFirstBlock(bucket: string, key: string, blockSizeBytes: number): Promise<{ info: ObjectInfo; first: ArrivingBytes } | undefined> {
    const response = await this.open("GET", this.url(bucket, key), { range: `bytes=0-${blockSizeBytes - 1}` });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    // An empty object has no byte 0 (416): its HEAD says all there is.
    if (response.statusCode === 416) {
      await response.body.dump();
      const info = await this.head(bucket, key);
      return info && { info, first: ArrivingBytes.of(new Uint8Array(0)) };
    }
    if (response.statusCode !== 206 && response.statusCode !== 200) throw this.refused(await this.drained(response), `GET ${bucket}/${key}`);
    const info = this.info(bucket, key, response.headers);
    if (response.statusCode === 206) {
      const total = /\/(\d+)$/.exec(header(response.headers, "content-range") ?? "")?.[1];
      if (total === undefined) {
        await response.body.dump();
        throw new OriginUnavailableError(`edge sent no Content-Range for ${bucket}/${key}`);
      }
      info.size = Number(total);
    }
    // The metadata is known now; the block streams on behind it.
    const first = this.arriving(Math.min(blockSizeBytes, info.size));
    this.streamInto(first, bucket, key, info.etag, 0, response).catch((error: unknown) => first.fail(error));
    return { info, first };
  }

  async revalidate(bucket: string, key: string, etag: string): Promise<ObjectInfo | "unchanged" | undefined> {
    const response = await this.send("HEAD", this.url(bucket, key), { "if-none-match": `"${etag}"` });
    if (response.status === 304) return "unchanged";
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw this.refused(response, `HEAD ${bucket}/${key}`);
    return this.info(bucket, key, response.headers);
  }

  async readRange(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array> {
    // The caller keeps these bytes: never pooled memory.
    const bytes = new ArrivingBytes(length);
    if (length > 0) await this.streamInto(bytes, bucket, key, etag, offset, undefined);
    return bytes.done;
  }

  /** Pooled memory when there is a pool: the caller recycles the result once done with it. */
  streamRange(bucket: string, key: string, etag: string, offset: number, length: number): ArrivingBytes {
    const bytes = this.arriving(length);
    if (length > 0) this.streamInto(bytes, bucket, key, etag, offset, undefined).catch((error: unknown) => bytes.fail(error));
    return bytes;
  }

  private arriving(length: number): ArrivingBytes {
    return new ArrivingBytes(length, this.memory?.take(length));
  }

  async list(bucket: string, params: ListParams): Promise<ListResult> {
    const query: Record<string, string> = { "list-type": "2", prefix: params.prefix, "max-keys": String(params.maxKeys) };
    if (params.delimiter) query["delimiter"] = params.delimiter;
    if (params.continuationToken) query["continuation-token"] = params.continuationToken;
    if (params.startAfter) query["start-after"] = params.startAfter;
    const response = await this.send("GET", this.url(bucket, undefined, query));
    if (response.status !== 200) throw this.refused(response, `LIST ${bucket}/${params.prefix}`);
    return parseListObjectsV2(new TextDecoder().decode(response.body));
  }

  async getSmall(bucket: string, key: string, knownEtag?: string): Promise<SmallObject | "unchanged" | undefined> {
    const response = await this.send("GET", this.url(bucket, key), knownEtag ? { "if-none-match": `"${knownEtag}"` } : {});
    if (response.status === 304) return "unchanged";
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw this.refused(response, `GET ${bucket}/${key}`);
    return { bytes: response.body, etag: unquote(header(response.headers, "etag") ?? "") };
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
