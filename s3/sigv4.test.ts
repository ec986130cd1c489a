// SigV4 against AWS's published examples, and sign → verify round trips (header and
// presigned forms, tampering, skew, expiry). Runs in Node and in workerd.
import { describe, expect, it } from "vitest";
import { S3Error } from "./errors.ts";
import { canonicalQueryString, parseQuery, presignUrl, signRequest, uriEncode } from "./sigv4.ts";
import { parseSignedRequest, verifySignedRequest } from "./sigv4-verify.ts";

const AWS_EXAMPLE = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const MAY_24_2013 = new Date("2013-05-24T00:00:00Z");

function codeOf(error: unknown): string {
  return error instanceof S3Error ? error.code : `not an S3Error: ${String(error)}`;
}

describe("SigV4 signing matches AWS's examples", () => {
  it("signs the GET-with-Range header example", async () => {
    const headers = await signRequest({
      method: "GET",
      url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
      headers: { range: "bytes=0-9" },
      credentials: AWS_EXAMPLE,
      region: "us-east-1",
      now: MAY_24_2013,
    });
    expect(headers["authorization"]).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("presigns the GET example", async () => {
    const url = await presignUrl({ method: "GET", url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"), credentials: AWS_EXAMPLE, region: "us-east-1", expiresSeconds: 86400, now: MAY_24_2013 });
    expect(url.searchParams.get("X-Amz-Signature")).toBe("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  });

  it("encodes like SigV4: unreserved kept, slash only in paths, UTF-8 percent-encoded", () => {
    expect(uriEncode("a b/c~d*é", { keepSlash: true })).toBe("a%20b/c~d%2A%C3%A9");
    expect(uriEncode("a/b", { keepSlash: false })).toBe("a%2Fb");
    expect(canonicalQueryString(parseQuery("prefix=a%20b&list-type=2&delimiter=%2F&uploads"))).toBe("delimiter=%2F&list-type=2&prefix=a%20b&uploads=");
  });
});

describe("verification", () => {
  const secret = { accessKeyId: "FRYTESTKEY0000000001", secretAccessKey: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-0000" };
  const url = new URL("http://127.0.0.1:8787/datasets/robots/ep%20000.hdf5?x-id=GetObject");

  async function signed(now = new Date(), mutate: (h: Headers) => void = () => {}) {
    const headers = new Headers(await signRequest({ method: "GET", url, credentials: secret, now }));
    mutate(headers);
    return { method: "GET", url, headers };
  }

  it("accepts what it signed, in header and presigned form", async () => {
    const request = await signed();
    const parsed = parseSignedRequest(request);
    expect(parsed.accessKeyId).toBe(secret.accessKeyId);
    await expect(verifySignedRequest(request, parsed, secret.secretAccessKey)).resolves.toMatchObject({ accessKeyId: secret.accessKeyId });

    const presigned = { method: "GET", url: await presignUrl({ method: "GET", url, credentials: secret, expiresSeconds: 60 }), headers: new Headers({ host: url.host }) };
    await expect(verifySignedRequest(presigned, parseSignedRequest(presigned), secret.secretAccessKey)).resolves.toBeTruthy();
  });

  it("refuses a wrong secret or a tampered header", async () => {
    const request = await signed();
    await expect(verifySignedRequest(request, parseSignedRequest(request), "wrong")).rejects.toSatisfy((e) => codeOf(e) === "SignatureDoesNotMatch");
    const tampered = await signed(new Date(), (h) => h.set("host", "127.0.0.1:9999"));
    await expect(verifySignedRequest(tampered, parseSignedRequest(tampered), secret.secretAccessKey)).rejects.toSatisfy((e) => codeOf(e) === "SignatureDoesNotMatch");
  });

  it("refuses requests 16 minutes off the clock", async () => {
    const request = await signed(new Date(Date.now() - 16 * 60 * 1000));
    expect(() => parseSignedRequest(request)).toThrow(S3Error);
    try {
      parseSignedRequest(request);
    } catch (error) {
      expect(codeOf(error)).toBe("RequestTimeTooSkewed");
    }
  });

  it("refuses expired presigned URLs and expiries over 7 days", async () => {
    const old = await presignUrl({ method: "GET", url, credentials: secret, expiresSeconds: 60, now: new Date(Date.now() - 120_000) });
    expect(() => parseSignedRequest({ method: "GET", url: old, headers: new Headers() })).toThrow(/expired/);
    const tooLong = new URL(old);
    tooLong.searchParams.set("X-Amz-Expires", "604801");
    try {
      parseSignedRequest({ method: "GET", url: tooLong, headers: new Headers() });
      expect.unreachable();
    } catch (error) {
      expect(codeOf(error)).toBe("AuthorizationQueryParametersError");
    }
    await expect(presignUrl({ method: "GET", url, credentials: secret, expiresSeconds: 604801 })).rejects.toThrow(RangeError);
  });

  it("refuses anonymous requests", () => {
    expect(() => parseSignedRequest({ method: "GET", url, headers: new Headers() })).toThrow(/Anonymous/);
  });
});
