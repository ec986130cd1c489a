// The training bench's shaper: bytes pass through unchanged in both directions, the first
// byte is held back at least firstByteMs, the body rate is capped, and a real SigV4-signed
// client works against the real edge through it (the Host header reaches the edge as signed).
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startShaper, type Shaper } from "../bench/train/shaper.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "./helpers/local-edge.ts";

const MiB = 2 ** 20;

describe("shaper over a plain HTTP server", () => {
  const payload = randomBytes(3 * MiB + 17);
  let origin: Server;
  let originUrl = "";
  let seen: { host?: string; custom?: string; body?: Buffer; url?: string } = {};

  beforeAll(async () => {
    origin = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen = { host: req.headers.host, custom: String(req.headers["x-custom"] ?? ""), body: Buffer.concat(chunks), url: req.url };
        if (req.method === "PUT") {
          res.writeHead(200, { "x-got-bytes": String(Buffer.concat(chunks).length) });
          res.end();
          return;
        }
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(payload.length), etag: '"abc"' });
        res.end(payload);
      });
    });
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", () => resolve()));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  });

  it("passes bytes, path, query and headers through and holds the first byte back", async () => {
    const shaper = await startShaper({ target: originUrl, firstByteMs: 120, streamMiBps: 0 });
    try {
      const t0 = performance.now();
      const response = await fetch(`${shaper.url}/bucket/a%20b.bin?x-id=GetObject&list-type=2`, { headers: { "x-custom": "kept" } });
      const headersAt = performance.now() - t0;
      const body = Buffer.from(await response.arrayBuffer());
      expect(response.status).toBe(200);
      expect(response.headers.get("etag")).toBe('"abc"');
      expect(body.equals(payload)).toBe(true);
      // A lower bound only: a busy machine may add any amount on top.
      expect(headersAt).toBeGreaterThanOrEqual(115);
      expect(seen.url).toBe("/bucket/a%20b.bin?x-id=GetObject&list-type=2");
      expect(seen.custom).toBe("kept");
      // The client's Host (the shaper's address), not the origin's.
      expect(seen.host).toBe(new URL(shaper.url).host);

      const upload = randomBytes(2 * MiB + 3);
      const put = await fetch(`${shaper.url}/bucket/up.bin`, { method: "PUT", body: upload });
      expect(put.headers.get("x-got-bytes")).toBe(String(upload.length));
      expect(seen.body?.equals(upload)).toBe(true);
      expect(shaper.stats().requests).toBe(2);
      expect(shaper.stats().bytes).toBe(payload.length);
    } finally {
      await shaper.stop();
    }
  });

  it("caps one response stream at streamMiBps", async () => {
    const shaper = await startShaper({ target: originUrl, firstByteMs: 0, streamMiBps: 4 });
    try {
      const t0 = performance.now();
      const body = Buffer.from(await (await fetch(`${shaper.url}/x`)).arrayBuffer());
      const seconds = (performance.now() - t0) / 1000;
      expect(body.equals(payload)).toBe(true);
      // 3 MiB at 4 MiB/s takes at least ~0.75 s (a lower bound only).
      expect(seconds).toBeGreaterThanOrEqual(0.7);
    } finally {
      await shaper.stop();
    }
  });
});

describe("shaper in front of the real edge", () => {
  let edge: LocalEdge;
  let key: TestKey;
  let shaper: Shaper;
  const object = randomBytes(5 * MiB + 1);

  beforeAll(async () => {
    edge = await startLocalEdge();
    key = await edge.createKey(["all:datasets/shaper/"]);
    shaper = await startShaper({ target: edge.url, firstByteMs: 30, streamMiBps: 50 });
  });
  afterAll(async () => {
    await shaper?.stop();
    await edge?.stop();
  });

  it("serves signed PutObject, GetObject and ListObjectsV2 through the shaper", async () => {
    const client = new S3Client({ endpoint: shaper.url, region: "auto", forcePathStyle: true, credentials: key, maxAttempts: 1 });
    await client.send(new PutObjectCommand({ Bucket: "datasets", Key: "shaper/one.bin", Body: object }));
    const got = await client.send(new GetObjectCommand({ Bucket: "datasets", Key: "shaper/one.bin" }));
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(object)).toBe(true);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "shaper/" }));
    expect(listed.Contents?.map((c) => [c.Key, c.Size])).toEqual([["shaper/one.bin", object.length]]);
    expect(shaper.stats().bytes).toBeGreaterThanOrEqual(object.length);
    client.destroy();
  });

  it("keeps serving while the caller's thread is blocked (as in a sync read on a mount fed through it)", async () => {
    const client = new S3Client({ endpoint: shaper.url, region: "auto", forcePathStyle: true, credentials: key });
    await client.send(new PutObjectCommand({ Bucket: "datasets", Key: "shaper/blocked.bin", Body: object }));
    // Presigned for the shaper's host, which the shaper passes on to the edge unchanged.
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: "datasets", Key: "shaper/blocked.bin" }), { expiresIn: 600 });
    client.destroy();
    // curl runs while this thread is blocked in spawnSync, as it is in readFileSync on a FUSE mount.
    const result = spawnSync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "60", url], { encoding: "utf8" });
    expect(result.stdout).toBe(`200 ${object.length}`);
  });
});
