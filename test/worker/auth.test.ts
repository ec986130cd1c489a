// Authentication at the edge: SigV4 in the Authorization header and in presigned URLs,
// tampering with any signed part, clock skew, presigned expiry and replay, expired and
// revoked keys, and that no secret is stored in plaintext.
import { beforeAll, describe, expect, it } from "vitest";
import { toBase64, utf8 } from "../../s3/bytes.ts";
import {
  edgeFetch,
  expectOk,
  expectS3Error,
  grant,
  issueKey,
  keyRegistryRows,
  objectPath,
  r2,
  revokeKey,
  s3,
  send,
  storedKeys,
  type IssuedKey,
} from "./helpers.ts";

const MINUTE_MS = 60_000;
let key: IssuedKey;

beforeAll(async () => {
  key = await issueKey({ grants: [grant("read,list,write,delete", "datasets", "auth/")] });
  await r2("datasets").put("auth/hello.txt", "hello, ferry");
});

function flipLastHex(signature: string): string {
  return signature.slice(0, -1) + (signature.endsWith("0") ? "1" : "0");
}

describe("SigV4 Authorization header", () => {
  it("serves a correctly signed request", async () => {
    const response = await s3(key).get("datasets", "auth/hello.txt");
    expect(await expectOk(response)).toBe("hello, ferry");
  });

  it("accepts any region in the credential scope", async () => {
    const response = await s3(key).get("datasets", "auth/hello.txt", { region: "us-east-1" });
    expect(await expectOk(response)).toBe("hello, ferry");
  });

  it("refuses an unsigned request with AccessDenied", async () => {
    await expectS3Error(await edgeFetch(`http://ferry.test${objectPath("datasets", "auth/hello.txt")}`), 403, "AccessDenied");
  });

  it("refuses an unknown access key with InvalidAccessKeyId", async () => {
    const stranger = s3({ accessKeyId: "FRYAAAAAAAAAAAAAAAAA", secretAccessKey: key.secretAccessKey });
    const error = await expectS3Error(await stranger.get("datasets", "auth/hello.txt"), 403, "InvalidAccessKeyId");
    expect(error.xml).toContain("<AWSAccessKeyId>FRYAAAAAAAAAAAAAAAAA</AWSAccessKeyId>");
    const malformed = s3({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: key.secretAccessKey });
    await expectS3Error(await malformed.get("datasets", "auth/hello.txt"), 403, "InvalidAccessKeyId");
  });

  it("refuses the wrong secret with SignatureDoesNotMatch", async () => {
    // Another last character, whatever the random secret ends with (an "x" swapped for "x" was the right secret: a 1-in-64 flake).
    const last = key.secretAccessKey.at(-1) === "x" ? "y" : "x";
    const wrong = s3({ accessKeyId: key.accessKeyId, secretAccessKey: `${key.secretAccessKey.slice(0, -1)}${last}` });
    await expectS3Error(await wrong.get("datasets", "auth/hello.txt"), 403, "SignatureDoesNotMatch");
  });

  it("refuses a tampered signature", async () => {
    const parts = await s3(key).sign("GET", objectPath("datasets", "auth/hello.txt"));
    const authorization = parts.headers["authorization"] ?? "";
    const tampered = authorization.replace(/Signature=([0-9a-f]{64})/, (_, sig: string) => `Signature=${flipLastHex(sig)}`);
    expect(tampered).not.toBe(authorization);
    await expectS3Error(await send({ ...parts, headers: { ...parts.headers, authorization: tampered } }), 403, "SignatureDoesNotMatch");
    const short = authorization.replace(/Signature=[0-9a-f]{64}/, "Signature=abc");
    await expectS3Error(await send({ ...parts, headers: { ...parts.headers, authorization: short } }), 403, "SignatureDoesNotMatch");
  });

  it("refuses a signed header changed after signing", async () => {
    const parts = await s3(key).sign("GET", objectPath("datasets", "auth/hello.txt"), { headers: { range: "bytes=0-4" } });
    const response = await send({ ...parts, headers: { ...parts.headers, range: "bytes=0-11" } });
    await expectS3Error(response, 403, "SignatureDoesNotMatch");
  });

  it("refuses a path changed after signing", async () => {
    await r2("datasets").put("auth/other.txt", "other");
    const parts = await s3(key).sign("GET", objectPath("datasets", "auth/hello.txt"));
    const url = new URL(parts.url);
    url.pathname = objectPath("datasets", "auth/other.txt");
    await expectS3Error(await send({ ...parts, url }), 403, "SignatureDoesNotMatch");
  });

  it("refuses a query changed or extended after signing", async () => {
    const parts = await s3(key).sign("GET", objectPath("datasets"), { query: { "list-type": "2", prefix: "auth/" } });
    const changed = new URL(parts.url);
    changed.searchParams.set("prefix", "auth/x");
    await expectS3Error(await send({ ...parts, url: changed }), 403, "SignatureDoesNotMatch");
    const extended = new URL(parts.url);
    extended.searchParams.set("max-keys", "1");
    await expectS3Error(await send({ ...parts, url: extended }), 403, "SignatureDoesNotMatch");
  });

  it("refuses a body that does not match x-amz-content-sha256, storing nothing", async () => {
    const parts = await s3(key).sign("PUT", objectPath("datasets", "auth/swapped.txt"), { body: "the signed body" });
    const response = await send({ ...parts, body: utf8("the other body!") });
    await expectS3Error(response, 400, "XAmzContentSHA256Mismatch");
    expect(await storedKeys("datasets", "auth/swapped")).toEqual([]);
  });

  it("refuses x-amz-date 16 minutes off in either direction with RequestTimeTooSkewed", async () => {
    const client = s3(key);
    for (const offsetMs of [-16 * MINUTE_MS, 16 * MINUTE_MS]) {
      const response = await client.get("datasets", "auth/hello.txt", { now: new Date(Date.now() + offsetMs) });
      const error = await expectS3Error(response, 403, "RequestTimeTooSkewed");
      expect(error.xml).toContain("<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>");
    }
    // Within the 15 minutes S3 allows, the same request is served.
    await expectOk(await client.get("datasets", "auth/hello.txt", { now: new Date(Date.now() - 14 * MINUTE_MS) }));
  });
});

describe("presigned URLs", () => {
  it("serves a valid presigned GET without any header", async () => {
    const url = await s3(key).presign("GET", objectPath("datasets", "auth/hello.txt"), { expiresSeconds: 300 });
    expect(await expectOk(await edgeFetch(url))).toBe("hello, ferry");
  });

  it("accepts a presigned PUT (ferry share --put)", async () => {
    const url = await s3(key).presign("PUT", objectPath("datasets", "auth/shared-put.txt"), { expiresSeconds: 300 });
    await expectOk(await edgeFetch(url, { method: "PUT", body: "uploaded by link" }));
    expect(await (await r2("datasets").get("auth/shared-put.txt"))?.text()).toBe("uploaded by link");
  });

  it("refuses tampered presigned URLs with SignatureDoesNotMatch", async () => {
    await r2("datasets").put("auth/other.txt", "other");
    const url = await s3(key).presign("GET", objectPath("datasets", "auth/hello.txt"), { expiresSeconds: 300 });
    const badSignature = new URL(url);
    badSignature.searchParams.set("X-Amz-Signature", flipLastHex(url.searchParams.get("X-Amz-Signature") ?? ""));
    const otherPath = new URL(url);
    otherPath.pathname = objectPath("datasets", "auth/other.txt");
    const longer = new URL(url);
    longer.searchParams.set("X-Amz-Expires", "600");
    const extraParam = new URL(url);
    extraParam.searchParams.set("response-content-type", "text/html");
    for (const tampered of [badSignature, otherPath, longer, extraParam]) {
      await expectS3Error(await edgeFetch(tampered), 403, "SignatureDoesNotMatch");
    }
    await expectS3Error(await edgeFetch(url, { method: "DELETE" }), 403, "SignatureDoesNotMatch");
    expect(await r2("datasets").head("auth/hello.txt")).not.toBeNull();
  });

  it("refuses X-Amz-Expires over 7 days with AuthorizationQueryParametersError", async () => {
    const url = await s3(key).presign("GET", objectPath("datasets", "auth/hello.txt"), { expiresSeconds: 604800 });
    await expectOk(await edgeFetch(url));
    url.searchParams.set("X-Amz-Expires", "604801");
    await expectS3Error(await edgeFetch(url), 400, "AuthorizationQueryParametersError");
  });

  it("refuses a URL that has already expired with AccessDenied", async () => {
    const url = await s3(key).presign("GET", objectPath("datasets", "auth/hello.txt"), { expiresSeconds: 60, now: new Date(Date.now() - 2 * MINUTE_MS) });
    const error = await expectS3Error(await edgeFetch(url), 403, "AccessDenied");
    expect(error.message).toMatch(/expired/i);
  });

  it("refuses a URL replayed after its expiry that worked before", async () => {
    const signedAt = new Date();
    const url = await s3(key).presign("GET", objectPath("datasets", "auth/hello.txt"), { expiresSeconds: 2, now: signedAt });
    await expectOk(await edgeFetch(url));
    // X-Amz-Date has whole seconds; wait until its second plus 2 s have certainly passed.
    const expiresAtMs = Math.floor(signedAt.getTime() / 1000) * 1000 + 2000;
    await new Promise((resolve) => setTimeout(resolve, expiresAtMs - Date.now() + 150));
    await expectS3Error(await edgeFetch(url), 403, "AccessDenied");
  });

  it("refuses a presigned URL outside the key's grants", async () => {
    await r2("datasets").put("elsewhere/secret.txt", "no");
    const url = await s3(key).presign("GET", objectPath("datasets", "elsewhere/secret.txt"));
    await expectS3Error(await edgeFetch(url), 403, "AccessDenied");
  });
});

describe("SigV2 presigned URLs (aws CLI v1 `s3 presign`)", () => {
  /** Query-string SigV2 as the aws CLI v1 makes it: HMAC-SHA1 over verb, expiry and path. */
  async function presignV2(path: string, expiresEpochSeconds: number): Promise<URL> {
    const hmacKey = await crypto.subtle.importKey("raw", utf8(key.secretAccessKey), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
    const signature = toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, utf8(`GET\n\n\n${expiresEpochSeconds}\n${path}`))));
    const url = new URL(`http://ferry.test${path}`);
    url.searchParams.set("AWSAccessKeyId", key.accessKeyId);
    url.searchParams.set("Expires", String(expiresEpochSeconds));
    url.searchParams.set("Signature", signature);
    return url;
  }
  const inSeconds = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

  it("serves a valid link and refuses a tampered, expired or too long-lived one", async () => {
    const path = objectPath("datasets", "auth/hello.txt");
    expect(await expectOk(await edgeFetch(await presignV2(path, inSeconds(300))))).toBe("hello, ferry");
    const moved = await presignV2(path, inSeconds(300));
    moved.pathname = objectPath("datasets", "auth/other.txt");
    await expectS3Error(await edgeFetch(moved), 403, "SignatureDoesNotMatch");
    const extended = await presignV2(path, inSeconds(300));
    extended.searchParams.set("Expires", String(inSeconds(600)));
    await expectS3Error(await edgeFetch(extended), 403, "SignatureDoesNotMatch");
    await expectS3Error(await edgeFetch(await presignV2(path, inSeconds(-60))), 403, "AccessDenied");
    await expectS3Error(await edgeFetch(await presignV2(path, inSeconds(8 * 24 * 3600))), 400, "AuthorizationQueryParametersError");
  });
});

describe("key lifecycle", () => {
  it("refuses an expired key with InvalidAccessKeyId", async () => {
    const shortLived = await issueKey({ grants: [grant("read", "datasets", "auth/")], expiresInSeconds: 1 });
    await expectOk(await s3(shortLived).get("datasets", "auth/hello.txt"));
    await new Promise((resolve) => setTimeout(resolve, Date.parse(shortLived.expiresAt ?? "") - Date.now() + 100));
    await expectS3Error(await s3(shortLived).get("datasets", "auth/hello.txt"), 403, "InvalidAccessKeyId");
  });

  it("refuses a revoked key at once, for signed requests and for links it made", async () => {
    const doomed = await issueKey({ grants: [grant("read", "datasets", "auth/")] });
    const link = await s3(doomed).presign("GET", objectPath("datasets", "auth/hello.txt"));
    // Used first, so the isolate has the key cached: revocation must still win at once.
    await expectOk(await s3(doomed).get("datasets", "auth/hello.txt"));
    await expectOk(await edgeFetch(link));
    await revokeKey(doomed.accessKeyId);
    await expectS3Error(await s3(doomed).get("datasets", "auth/hello.txt"), 403, "InvalidAccessKeyId");
    await expectS3Error(await edgeFetch(link), 403, "InvalidAccessKeyId");
  });

  it("stores no secret in plaintext (nor plainly encoded) in the key registry", async () => {
    const fresh = await issueKey({ grants: [grant("read", "shared")] });
    const rows = await keyRegistryRows();
    const row = rows.find((r) => r["access_key_id"] === fresh.accessKeyId);
    expect(row, "the new key's row").toBeDefined();
    const secret = fresh.secretAccessKey;
    const forms = [secret, toBase64(utf8(secret))];
    for (const r of rows) {
      for (const [column, value] of Object.entries(r)) {
        for (const form of forms) expect(String(value), `column ${column}`).not.toContain(form);
      }
    }
    // The sealed secret is there and still opens: the key works.
    expect(String(row?.["sealed_secret"]).length).toBeGreaterThan(secret.length);
    await expectS3Error(await s3(fresh).get("shared", "nothing-here"), 404, "NoSuchKey");
  });
});
