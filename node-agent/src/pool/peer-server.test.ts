// The peer listener's only-if-cached answers, over real HTTP with the real peer client, a
// real disk cache and the real read path. The origin behind the read path is the one
// stand-in: it records any call, because the point is that these requests never reach it.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { AsyncLocalStorage } from "node:async_hooks";
import { afterEach, describe, expect, test } from "vitest";
import { blockId, bytes, cacheOpener, tempDirs } from "../cache/cache-test-support.ts";
import { createLogger } from "../log.ts";
import type { ObjectInfo, ObjectOrigin } from "../origin/object-origin.ts";
import { ObjectReader } from "../read/object-reader.ts";
import { StaticMembership } from "./membership.ts";
import { PeerClient } from "./peer-client.ts";
import { createPeerServer } from "./peer-server.ts";
import { PoolStats } from "./pool-stats.ts";

const BLOCK = 64 * 1024;
const dirs = tempDirs();
const { cacheIn, closeAll } = cacheOpener({ blockSizeBytes: BLOCK, quotaBytes: 1 << 30, minFreeRatio: 0 });
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await closeAll();
  await dirs.cleanup();
});

/** An origin that must not be reached: every call is recorded and fails. */
function unreachableOrigin(calls: string[]): ObjectOrigin {
  const refuse = (name: string) => () => {
    calls.push(name);
    return Promise.reject(new Error(`origin reached: ${name}`));
  };
  return { listBuckets: refuse("listBuckets"), head: refuse("head"), revalidate: refuse("revalidate"), readRange: refuse("readRange"), list: refuse("list"), getSmall: refuse("getSmall") };
}

async function peerWith(options: { evictAfterIndexCheck?: boolean }) {
  const cache = await cacheIn(await dirs.make());
  const originCalls: string[] = [];
  const logger = createLogger({ component: "test", write: () => {} });
  const reader = new ObjectReader({ cache, origin: unreachableOrigin(originCalls), logger });
  const data = bytes(BLOCK + 100);
  const info: ObjectInfo = { bucket: "datasets", key: "ep/0.h5", size: data.length, etag: "etag-1", lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} };
  await cache.put(blockId(info.key, 0), data.subarray(0, BLOCK));
  await cache.put(blockId(info.key, 1), data.subarray(BLOCK));
  const credential = { accessKeyId: "FRYPOOLTEST", secretAccessKey: "cluster-secret-for-tests" };
  const membership = new StaticMembership({ selfId: "127.0.0.1:0", peers: [], credential, intervalMs: 60_000, timeoutMs: 1_000, logger });
  const stats = new PoolStats();
  const evictions: Array<Promise<boolean>> = [];
  const server = createPeerServer({
    membership,
    head: async (bucket, key) => (bucket === info.bucket && key === info.key ? info : undefined),
    block: (i, index) => reader.block(i, index),
    cachedBlock: (i, index) => reader.cachedBlock(i, index),
    // The race this guards against: the index says the block is here, then eviction takes
    // it before the read. Removing it right after a "yes" makes that moment certain.
    holds: (bucket, key, etag, index) => {
      const id = { bucket, key, etag, index };
      const held = cache.has(id);
      if (held && options.evictAfterIndexCheck) evictions.push(cache.remove(id)); // leaves the index at once
      return held;
    },
    blockSizeBytes: BLOCK,
    servingPeer: new AsyncLocalStorage<true>(),
    warming: new AsyncLocalStorage(),
    stats,
    logger,
    leaving: () => false,
    pin: async () => {},
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const peer = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new PeerClient({ timeoutMs: 5_000 });
  closers.push(async () => {
    await client.close();
    server.close();
  });
  const blockRequest = (index: number) => ({ bucket: info.bucket, key: info.key, etag: info.etag, offset: index * BLOCK, length: Math.min(BLOCK, info.size - index * BLOCK) });
  return { client, peer, credential, data, stats, originCalls, blockRequest, cache, evictions };
}

describe("only-if-cached", () => {
  test("a held block comes back whole and checked, from the cache alone", async () => {
    const p = await peerWith({});
    const second = await p.client.fetchHeldBlock(p.peer, p.credential, p.blockRequest(1));
    expect(Buffer.from(second ?? [])).toEqual(p.data.subarray(BLOCK));
    expect(p.stats.notHeldAnswers).toBe(0);
    expect(p.originCalls).toEqual([]);
  });

  test("a block the cache does not hold is a 504, and the origin is never asked", async () => {
    const p = await peerWith({});
    await p.cache.remove(blockId("ep/0.h5", 0));
    expect(await p.client.fetchHeldBlock(p.peer, p.credential, p.blockRequest(0))).toBeUndefined();
    expect(p.stats.notHeldAnswers).toBe(1);
    expect(p.originCalls).toEqual([]);
  });

  test("a block evicted between the index check and the read is still a 504, never a read of the origin", async () => {
    const p = await peerWith({ evictAfterIndexCheck: true });
    expect(await p.client.fetchHeldBlock(p.peer, p.credential, p.blockRequest(0))).toBeUndefined();
    expect(p.stats.notHeldAnswers).toBe(1);
    expect(p.originCalls).toEqual([]);
    expect(await Promise.all(p.evictions)).toEqual([true]);
    expect(p.cache.has(blockId("ep/0.h5", 0))).toBe(false);
  });
});
