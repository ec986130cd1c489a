// The audit trail: one structured log line per S3 request with key id, operation, bucket,
// key, status and bytes, and never a secret or a signature (header or presigned form).
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { edgeFetch, expectOk, expectS3Error, grant, issueKey, objectPath, s3 } from "./helpers.ts";

let logSpy: MockInstance<typeof console.log>;

beforeEach(() => {
  // The edge runs in this isolate, so its console is this console.
  logSpy = vi.spyOn(console, "log").mockImplementation(() => undefined);
});

afterEach(() => {
  logSpy.mockRestore();
});

function auditLines(): Array<Record<string, unknown>> {
  return logSpy.mock.calls
    .map((args) => String(args[0]))
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry["msg"] === "s3 request");
}

describe("audit log", () => {
  it("writes one line per request with who, what, where, status and bytes, and no secret or signature", async () => {
    const key = await issueKey({ grants: [grant("read,write", "shared", "audit/")] });
    const put = await s3(key).sign("PUT", objectPath("shared", "audit/a.txt"), { body: "12345" });
    await expectOk(await edgeFetch(put.url, { method: "PUT", headers: put.headers, body: "12345" }));
    await expectOk(await s3(key).get("shared", "audit/a.txt", { headers: { range: "bytes=1-3" } }), 206);
    await expectS3Error(await s3(key).get("shared", "elsewhere/b.txt"), 403, "AccessDenied");
    const link = await s3(key).presign("GET", objectPath("shared", "audit/a.txt"));
    await expectOk(await edgeFetch(link));

    const lines = auditLines();
    expect(lines.map((l) => [l["operation"], l["accessKeyId"], l["bucket"], l["key"], l["status"]])).toEqual([
      ["PutObject", key.accessKeyId, "shared", "audit/a.txt", 200],
      ["GetObject", key.accessKeyId, "shared", "audit/a.txt", 206],
      ["GetObject", key.accessKeyId, "shared", "elsewhere/b.txt", 403],
      ["GetObject", key.accessKeyId, "shared", "audit/a.txt", 200],
    ]);
    expect(lines[0]?.["bytesIn"]).toBe(5);
    expect(lines[1]?.["bytesOut"]).toBe(3);
    expect(lines[2]?.["errorCode"]).toBe("AccessDenied");
    for (const line of lines) expect(line["requestId"]).toMatch(/^[0-9A-F]{16}$/);

    const everything = logSpy.mock.calls.map((args) => args.map(String).join(" ")).join("\n");
    const signatures = [/Signature=([0-9a-f]{64})/.exec(put.headers["authorization"] ?? "")?.[1], link.searchParams.get("X-Amz-Signature")];
    for (const secret of [key.secretAccessKey, ...signatures]) {
      expect(secret).toBeTruthy();
      expect(everything).not.toContain(secret);
    }
  });
});
