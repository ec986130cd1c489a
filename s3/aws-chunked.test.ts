// aws-chunked decoding: AWS's documented signed examples, SDK-style unsigned trailers,
// fragmentation, and every failure path, including that nothing past a failed
// verification (and never the last chunk before the end is verified) is emitted.
import { describe, expect, it } from "vitest";
import { decodeAwsChunked } from "./aws-chunked.ts";
import type { AwsChunkedOptions, ChunkSignatureVerifier } from "./aws-chunked.ts";
import { concatBytes, toHex, utf8 } from "./bytes.ts";
import { checksumBase64 } from "./checksums.ts";
import { S3Error } from "./errors.ts";

// ---- SigV4 streaming primitives (Web Crypto), written here to stay independent of sigv4.ts.
const DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DOC_AMZ_DATE = "20130524T000000Z";
const DOC_SCOPE = "20130524/us-east-1/s3/aws4_request";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

async function hmac(key: Uint8Array<ArrayBuffer>, message: string): Promise<Uint8Array<ArrayBuffer>> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, utf8(message)));
}

async function sha256Hex(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

async function docSigningKey(): Promise<Uint8Array<ArrayBuffer>> {
  let key = utf8(`AWS4${DOC_SECRET}`);
  for (const part of ["20130524", "us-east-1", "s3", "aws4_request"]) key = await hmac(key, part);
  return key;
}

/** Signs and verifies one request's chunk chain, starting from the seed signature. */
class ChunkChain {
  readonly #key: Uint8Array<ArrayBuffer>;
  #previous: string;
  constructor(key: Uint8Array<ArrayBuffer>, seed: string) {
    this.#key = key;
    this.#previous = seed;
  }
  async signChunk(data: Uint8Array<ArrayBuffer>): Promise<string> {
    const stringToSign = ["AWS4-HMAC-SHA256-PAYLOAD", DOC_AMZ_DATE, DOC_SCOPE, this.#previous, EMPTY_SHA256, await sha256Hex(data)];
    this.#previous = toHex(await hmac(this.#key, stringToSign.join("\n")));
    return this.#previous;
  }
  /**
   * SDKs (and the SigV4 spec text) start the trailer string to sign with
   * "AWS4-HMAC-SHA256-TRAILER"; the trailer signature printed in AWS's own example
   * reproduces only with "AWS4-HMAC-SHA256-PAYLOAD", so the doc test passes that label.
   */
  async signTrailer(canonical: string, label = "AWS4-HMAC-SHA256-TRAILER"): Promise<string> {
    const stringToSign = [label, DOC_AMZ_DATE, DOC_SCOPE, this.#previous, await sha256Hex(utf8(canonical))];
    this.#previous = toHex(await hmac(this.#key, stringToSign.join("\n")));
    return this.#previous;
  }
}

function verifierFor(key: Uint8Array<ArrayBuffer>, seed: string, trailerLabel?: string): ChunkSignatureVerifier & { trailers: string[] } {
  const chain = new ChunkChain(key, seed);
  const trailers: string[] = [];
  return {
    trailers,
    async verifyChunk(signature, data) {
      return (await chain.signChunk(new Uint8Array(data))) === signature;
    },
    async verifyTrailer(signature, canonical) {
      trailers.push(canonical);
      return (await chain.signTrailer(canonical, trailerLabel)) === signature;
    },
  };
}

// ---- Encoding test bodies by hand.
interface BodySpec {
  chunks: Uint8Array[];
  /** One per chunk plus one for the final empty chunk; omitted for unsigned bodies. */
  signatures?: string[];
  trailers?: Array<[string, string]>;
  trailerSignature?: string;
}

function encode(spec: BodySpec): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const extension = (i: number): string => (spec.signatures ? `;chunk-signature=${spec.signatures[i] ?? ""}` : "");
  spec.chunks.forEach((chunk, i) => parts.push(utf8(`${chunk.length.toString(16)}${extension(i)}\r\n`), chunk, utf8("\r\n")));
  parts.push(utf8(`0${extension(spec.chunks.length)}\r\n`));
  for (const [name, value] of spec.trailers ?? []) parts.push(utf8(`${name}:${value}\r\n`));
  if (spec.trailerSignature) parts.push(utf8(`x-amz-trailer-signature:${spec.trailerSignature}\r\n`));
  parts.push(utf8("\r\n"));
  return concatBytes(...parts);
}

async function signedSpec(chunks: Uint8Array<ArrayBuffer>[], trailers?: Array<[string, string]>): Promise<BodySpec & { key: Uint8Array<ArrayBuffer>; seed: string }> {
  const key = await docSigningKey();
  const seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
  const chain = new ChunkChain(key, seed);
  const signatures: string[] = [];
  for (const chunk of [...chunks, new Uint8Array(0)]) signatures.push(await chain.signChunk(chunk));
  const trailerSignature = trailers ? await chain.signTrailer(trailers.map(([n, v]) => `${n}:${v}\n`).join("")) : undefined;
  return { key, seed, chunks, signatures, ...(trailers ? { trailers } : {}), ...(trailerSignature ? { trailerSignature } : {}) };
}

/** A body source delivering fragments of the given sizes (cycled), counting bytes handed out. */
function sourceOf(bytes: Uint8Array, fragmentSizes: number[] = [bytes.length || 1]): { stream: ReadableStream<Uint8Array>; consumed: () => number; cancelled: () => boolean } {
  let offset = 0;
  let index = 0;
  let wasCancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        const size = Math.max(1, fragmentSizes[index++ % fragmentSizes.length] ?? 1);
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
      },
      cancel() {
        wasCancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, consumed: () => Math.min(offset, bytes.length), cancelled: () => wasCancelled };
}

interface Drained {
  bytes: Uint8Array;
  /** Source bytes consumed when each output chunk arrived. */
  consumedAtEmit: number[];
  error: unknown;
  trailers: Record<string, string> | undefined;
  trailersError: unknown;
}

async function decode(encoded: Uint8Array, options: AwsChunkedOptions, fragmentSizes?: number[]): Promise<Drained> {
  const source = sourceOf(encoded, fragmentSizes);
  const decoded = decodeAwsChunked(source.stream, options);
  const reader = decoded.body.getReader();
  const parts: Uint8Array[] = [];
  const consumedAtEmit: number[] = [];
  let error: unknown;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      consumedAtEmit.push(source.consumed());
    }
  } catch (caught) {
    error = caught;
  }
  let trailers: Record<string, string> | undefined;
  let trailersError: unknown;
  try {
    trailers = await decoded.trailers;
  } catch (caught) {
    trailersError = caught;
  }
  return { bytes: concatBytes(...parts), consumedAtEmit, error, trailers, trailersError };
}

function expectS3Error(result: Drained, code: string): void {
  expect(result.error).toBeInstanceOf(S3Error);
  expect((result.error as S3Error).code).toBe(code);
  expect(result.trailersError).toBe(result.error);
}

const filled = (length: number, byte: number): Uint8Array<ArrayBuffer> => new Uint8Array(length).fill(byte);
const unsigned = (extra: Partial<AwsChunkedOptions> = {}): AwsChunkedOptions => ({ signed: false, trailerNames: [], trailerSigned: false, ...extra });

describe("AWS documented examples", () => {
  it("decodes the STREAMING-AWS4-HMAC-SHA256-PAYLOAD example (64 KiB + 1 KiB of 'a')", async () => {
    const spec: BodySpec = {
      chunks: [filled(65_536, 0x61), filled(1024, 0x61)],
      signatures: [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
      ],
    };
    const encoded = encode(spec);
    expect(encoded.length).toBe(66_824);
    const verifier = verifierFor(await docSigningKey(), "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    const result = await decode(encoded, { signed: true, trailerNames: [], trailerSigned: false, decodedContentLength: 66_560, verifier }, [1000, 4096, 7]);
    expect(result.error).toBeUndefined();
    expect(result.bytes).toEqual(filled(66_560, 0x61));
    expect(result.trailers).toEqual({});
  });

  it("decodes the STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER example (crc32c trailer)", async () => {
    const data = filled(66_560, 0x61);
    expect(checksumBase64("CRC32C", data)).toBe("sOO8/Q==");
    const spec: BodySpec = {
      chunks: [data.subarray(0, 65_536), data.subarray(65_536)],
      signatures: [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
      ],
      trailers: [["x-amz-checksum-crc32c", "sOO8/Q=="]],
      trailerSignature: "63bddb248ad2590c92712055f51b8e78ab024eead08276b24f010b0efd74843f",
    };
    const seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const verifier = verifierFor(await docSigningKey(), seed, "AWS4-HMAC-SHA256-PAYLOAD");
    const options: AwsChunkedOptions = { signed: true, trailerNames: ["x-amz-checksum-crc32c"], trailerSigned: true, decodedContentLength: 66_560, verifier };
    const result = await decode(encode(spec), options);
    expect(result.error).toBeUndefined();
    expect(result.bytes).toEqual(data);
    expect(result.trailers).toEqual({ "x-amz-checksum-crc32c": "sOO8/Q==" });
    expect(verifier.trailers).toEqual(["x-amz-checksum-crc32c:sOO8/Q==\n"]);
  });
});

describe("decoding", () => {
  const text = utf8("Hello from Ferry: aws-chunked with a CRC32 trailer, split everywhere.");
  const sdkBody = (): Uint8Array =>
    encode({ chunks: [text.subarray(0, 20), text.subarray(20, 50), text.subarray(50)], trailers: [["x-amz-checksum-crc32", checksumBase64("CRC32", text)]] });
  const sdkOptions = unsigned({ trailerNames: ["x-amz-checksum-crc32"], decodedContentLength: text.length });

  it("decodes STREAMING-UNSIGNED-PAYLOAD-TRAILER as SDK v3 sends it", async () => {
    const result = await decode(sdkBody(), sdkOptions);
    expect(result.error).toBeUndefined();
    expect(result.bytes).toEqual(text);
    expect(result.trailers).toEqual({ "x-amz-checksum-crc32": checksumBase64("CRC32", text) });
  });

  it("decodes an unsigned body fed one byte per read", async () => {
    const result = await decode(sdkBody(), sdkOptions, [1]);
    expect(result.error).toBeUndefined();
    expect(result.bytes).toEqual(text);
    expect(result.trailers?.["x-amz-checksum-crc32"]).toBe(checksumBase64("CRC32", text));
  });

  it("decodes a signed body with a signed trailer fed one byte per read", async () => {
    const spec = await signedSpec([text.subarray(0, 33), text.subarray(33)], [["x-amz-checksum-crc32", checksumBase64("CRC32", text)]]);
    const verifier = verifierFor(spec.key, spec.seed);
    const options: AwsChunkedOptions = { signed: true, trailerNames: ["x-amz-checksum-crc32"], trailerSigned: true, decodedContentLength: text.length, verifier };
    const result = await decode(encode(spec), options, [1]);
    expect(result.error).toBeUndefined();
    expect(result.bytes).toEqual(text);
  });

  it("decodes a multi-chunk 6 MiB body from odd-sized fragments", async () => {
    const data = Uint8Array.from({ length: 6 << 20 }, (_, i) => (i * 31 + (i >> 11)) & 0xff);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += 65_536) chunks.push(data.subarray(i, i + 65_536));
    const body = encode({ chunks, trailers: [["x-amz-checksum-crc32c", checksumBase64("CRC32C", data)]] });
    const options = unsigned({ trailerNames: ["x-amz-checksum-crc32c"], decodedContentLength: data.length });
    const result = await decode(body, options, [4093, 65_536, 17, 100_000]);
    expect(result.error).toBeUndefined();
    expect(result.bytes.length).toBe(data.length);
    expect(checksumBase64("CRC32C", result.bytes)).toBe(result.trailers?.["x-amz-checksum-crc32c"]);
  });

  it("decodes an empty body", async () => {
    const result = await decode(utf8("0\r\n\r\n"), unsigned({ decodedContentLength: 0 }));
    expect(result.error).toBeUndefined();
    expect(result.bytes.length).toBe(0);
    expect(result.trailers).toEqual({});
  });

  it("emits a chunk only after the next header, and the last only at the very end", async () => {
    const chunks = [filled(100, 1), filled(100, 2), filled(100, 3)];
    const body = encode({ chunks, trailers: [["x-amz-checksum-crc32", checksumBase64("CRC32", concatBytes(...chunks))]] });
    const result = await decode(body, unsigned({ trailerNames: ["x-amz-checksum-crc32"], decodedContentLength: 300 }), [1]);
    expect(result.error).toBeUndefined();
    // Each chunk is "64\r\n" + 100 bytes + "\r\n"; the header after n chunks ends at n * 106 + 4.
    const headerEnd = (n: number): number => n * 106 + 4;
    expect(result.consumedAtEmit[0]).toBeGreaterThanOrEqual(headerEnd(1));
    expect(result.consumedAtEmit[1]).toBeGreaterThanOrEqual(headerEnd(2));
    expect(result.consumedAtEmit[2]).toBe(body.length);
  });
});

describe("failures", () => {
  const chunks = [filled(1000, 1), filled(1000, 2), filled(500, 3)];
  const total = 2500;

  it("refuses a decoded length that does not match, before emitting the last chunk", async () => {
    const body = encode({ chunks });
    const short = await decode(body, unsigned({ decodedContentLength: total - 1 }));
    expectS3Error(short, "IncompleteBody");
    expect(short.bytes.length).toBeLessThan(total - 1);
    const long = await decode(body, unsigned({ decodedContentLength: total + 1 }));
    expectS3Error(long, "IncompleteBody");
    expect(long.bytes.length).toBe(2000);
  });

  it("refuses a body truncated anywhere, never emitting the last chunk", async () => {
    const body = encode({ chunks });
    for (let cut = 0; cut < body.length; cut += 7) {
      const result = await decode(body.subarray(0, cut), unsigned({ decodedContentLength: total }), [64]);
      expectS3Error(result, "IncompleteBody");
      expect(result.bytes.length).toBeLessThanOrEqual(2000);
    }
  });

  it("refuses bad framing", async () => {
    const cases = ["zz\r\nab\r\n0\r\n\r\n", "-1\r\n", "0x2\r\nab\r\n0\r\n\r\n", "2\nab\r\n0\r\n\r\n", "2\r\nabc\r\n0\r\n\r\n", "2\r\nab0\r\n\r\n", "2;foo=bar\r\nab\r\n0\r\n\r\n", "2\r\nab\r\n0\r\n\r\nextra", " 2\r\nab\r\n0\r\n\r\n", "\r\n"];
    for (const text of cases) {
      const result = await decode(utf8(text), unsigned(), [3]);
      expectS3Error(result, "IncompleteBody");
      expect(result.bytes.length).toBe(0);
    }
    const endless = await decode(filled(10_000, 0x31), unsigned());
    expectS3Error(endless, "IncompleteBody");
  });

  it("refuses a chunk size over the limit", async () => {
    const result = await decode(encode({ chunks: [filled(2048, 1)] }), unsigned({ maxChunkBytes: 1024 }));
    expectS3Error(result, "InvalidRequest");
    const huge = await decode(utf8("ffffffffffffffff\r\n"), unsigned());
    expectS3Error(huge, "InvalidRequest");
  });

  it("refuses a bad chunk signature without emitting that chunk or anything after", async () => {
    const spec = await signedSpec(chunks);
    const options = (): AwsChunkedOptions => ({ signed: true, trailerNames: [], trailerSigned: false, decodedContentLength: total, verifier: verifierFor(spec.key, spec.seed) });
    const good = await decode(encode(spec), options());
    expect(good.error).toBeUndefined();
    expect(good.bytes.length).toBe(total);

    const forgedSecond = [...(spec.signatures ?? [])];
    forgedSecond[1] = "0".repeat(64);
    const second = await decode(encode({ ...spec, signatures: forgedSecond }), options());
    expectS3Error(second, "SignatureDoesNotMatch");
    expect(second.bytes).toEqual(chunks[0]);

    const flipped = encode(spec);
    const inLastChunk = flipped.length - 100;
    flipped[inLastChunk] = (flipped[inLastChunk] ?? 0) ^ 1;
    const lastData = await decode(flipped, options(), [1]);
    expectS3Error(lastData, "SignatureDoesNotMatch");
    expect(lastData.bytes.length).toBe(2000);

    const forgedFinal = [...(spec.signatures ?? [])];
    forgedFinal[3] = "f".repeat(64);
    const final = await decode(encode({ ...spec, signatures: forgedFinal }), options());
    expectS3Error(final, "SignatureDoesNotMatch");
    expect(final.bytes.length).toBe(2000);
  });

  it("refuses missing, malformed and unexpected chunk signatures", async () => {
    const spec = await signedSpec(chunks);
    const signedOptions: AwsChunkedOptions = { signed: true, trailerNames: [], trailerSigned: false, verifier: verifierFor(spec.key, spec.seed) };
    expectS3Error(await decode(encode({ chunks }), signedOptions), "SignatureDoesNotMatch");
    const upper = (spec.signatures ?? []).map((s) => s.toUpperCase());
    expectS3Error(await decode(encode({ chunks, signatures: upper }), { ...signedOptions, verifier: verifierFor(spec.key, spec.seed) }), "SignatureDoesNotMatch");
    expectS3Error(await decode(encode(spec), unsigned()), "InvalidRequest");
    expect(() => decodeAwsChunked(sourceOf(encode(spec)).stream, { signed: true, trailerNames: [], trailerSigned: false })).toThrow(TypeError);
  });

  it("refuses a bad or missing trailer signature, holding back the last chunk", async () => {
    const trailers: Array<[string, string]> = [["x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]];
    const spec = await signedSpec(chunks, trailers);
    const options = (): AwsChunkedOptions => ({ signed: true, trailerNames: ["x-amz-checksum-sha256"], trailerSigned: true, decodedContentLength: total, verifier: verifierFor(spec.key, spec.seed) });
    const good = await decode(encode(spec), options());
    expect(good.error).toBeUndefined();
    expect(good.trailers).toEqual({ "x-amz-checksum-sha256": trailers[0]?.[1] });

    const forged = await decode(encode({ ...spec, trailerSignature: "1".repeat(64) }), options());
    expectS3Error(forged, "SignatureDoesNotMatch");
    expect(forged.bytes.length).toBe(2000);
    const changedValue = await decode(encode({ ...spec, trailers: [["x-amz-checksum-sha256", "AAAA"]] }), options());
    expectS3Error(changedValue, "SignatureDoesNotMatch");
    const { trailerSignature: _dropped, ...unsignedTrailer } = spec;
    const missing = await decode(encode(unsignedTrailer), options());
    expectS3Error(missing, "SignatureDoesNotMatch");
    expect(missing.bytes.length).toBe(2000);
  });

  it("refuses missing, undeclared, duplicate and malformed trailers", async () => {
    const crc = checksumBase64("CRC32", concatBytes(...chunks));
    const declared = unsigned({ trailerNames: ["x-amz-checksum-crc32"], decodedContentLength: total });
    const missing = await decode(encode({ chunks }), declared);
    expectS3Error(missing, "MalformedTrailerError");
    expect(missing.bytes.length).toBe(2000);
    const undeclared = await decode(encode({ chunks, trailers: [["x-amz-checksum-crc32", crc]] }), unsigned({ decodedContentLength: total }));
    expectS3Error(undeclared, "MalformedTrailerError");
    expect(undeclared.bytes.length).toBe(2000);
    const other = await decode(encode({ chunks, trailers: [["x-amz-checksum-crc32c", crc]] }), declared);
    expectS3Error(other, "MalformedTrailerError");
    const duplicate = await decode(encode({ chunks, trailers: [["x-amz-checksum-crc32", crc], ["x-amz-checksum-crc32", crc]] }), declared);
    expectS3Error(duplicate, "MalformedTrailerError");
    const noColon = await decode(utf8("0\r\nx-amz-checksum-crc32\r\n\r\n"), unsigned({ trailerNames: ["x-amz-checksum-crc32"] }));
    expectS3Error(noColon, "MalformedTrailerError");
    const signatureUnasked = await decode(encode({ chunks, trailers: [["x-amz-checksum-crc32", crc]], trailerSignature: "a".repeat(64) }), declared);
    expectS3Error(signatureUnasked, "MalformedTrailerError");
  });

  it("normalises trailer names and values", async () => {
    const result = await decode(utf8("0\r\nX-Amz-Checksum-CRC32 :  AAAAAA== \r\n\r\n"), unsigned({ trailerNames: ["x-amz-checksum-crc32"], decodedContentLength: 0 }));
    expect(result.error).toBeUndefined();
    expect(result.trailers).toEqual({ "x-amz-checksum-crc32": "AAAAAA==" });
  });

  it("reports a failing source as IncompleteBody and a cancelled body on trailers", async () => {
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(utf8("5\r\nab"));
        controller.error(new Error("connection reset"));
      },
    });
    const decoded = decodeAwsChunked(failing, unsigned());
    await expect(decoded.body.getReader().read()).rejects.toMatchObject({ code: "IncompleteBody" });
    await expect(decoded.trailers).rejects.toMatchObject({ code: "IncompleteBody" });

    const source = sourceOf(encode({ chunks }), [10]);
    const cancelled = decodeAwsChunked(source.stream, unsigned());
    const reader = cancelled.body.getReader();
    await reader.read();
    await reader.cancel(new Error("client went away"));
    await expect(cancelled.trailers).rejects.toMatchObject({ code: "IncompleteBody" });
    expect(source.cancelled()).toBe(true);
  });
});
