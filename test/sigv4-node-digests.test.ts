// The signer's node:crypto digests (used by the agent, the replicator and the benches) sign
// exactly as its Web Crypto path, which the S3 core's tests check against AWS's vectors.
import { describe, expect, it } from "vitest";
import { nodeDigests } from "../s3/node-digests.ts";
import { RequestSigner, UNSIGNED_PAYLOAD, type SignRequestOptions } from "../s3/sigv4.ts";

describe("SigV4 with synchronous node:crypto digests", () => {
  const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
  const requests: Array<Omit<SignRequestOptions, "credentials" | "now">> = [
    { method: "GET", url: new URL("http://127.0.0.1:8787/datasets/robots/épisode 1.h5"), headers: { range: "bytes=0-4194303" }, payloadHash: UNSIGNED_PAYLOAD },
    { method: "GET", url: new URL("http://edge.example/datasets?list-type=2&prefix=a%2Fb%20c&max-keys=1000") },
    { method: "HEAD", url: new URL("http://edge.example/datasets/k"), headers: { "If-None-Match": '"abc"' } },
  ];

  it("gives the same headers as the Web Crypto path, across days and regions", async () => {
    for (const region of ["auto", "us-east-1"]) {
      const web = new RequestSigner(credentials, { region });
      const sync = new RequestSigner(credentials, { region, digests: nodeDigests });
      for (const now of [new Date("2026-11-30T23:59:59Z"), new Date("2026-12-01T00:00:01Z")]) {
        for (const r of requests) expect(await sync.sign({ ...r, now })).toEqual(await web.sign({ ...r, now }));
      }
    }
  });

  it("a different secret gives a different signature", async () => {
    const now = new Date("2026-11-30T12:00:00Z");
    const a = await new RequestSigner(credentials, { digests: nodeDigests }).sign({ ...requests[0]!, now });
    const b = await new RequestSigner({ ...credentials, secretAccessKey: "other" }, { digests: nodeDigests }).sign({ ...requests[0]!, now });
    expect(a["authorization"]).not.toBe(b["authorization"]);
  });
});
