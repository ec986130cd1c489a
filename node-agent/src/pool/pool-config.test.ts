// The pool's settings: --cluster or --peers (never both), a peer listener, an advertised
// address when binding every interface, a shared secret for static lists, bounded timings.
import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig, type RawSettings } from "../config.ts";

const base = { edge: "http://127.0.0.1:8787", "cache-dir": "/tmp/c", "access-key-id": "AKID", "secret-access-key": "SECRET" } satisfies RawSettings;
const resolve = (flags: RawSettings, env: NodeJS.ProcessEnv = {}) => resolveConfig({ flags: { ...base, ...flags }, env, file: {} });

describe("pool config", () => {
  it("is absent without --cluster or --peers", () => {
    expect(resolve({}).pool).toBeUndefined();
  });

  it("parses a cluster member with defaults", () => {
    expect(resolve({ cluster: "gpu-a", "peer-listen": "10.0.0.5:8789" }).pool).toEqual({ cluster: "gpu-a", listen: { host: "10.0.0.5", port: 8789 }, advertise: "10.0.0.5:8789", heartbeatMs: 3000, peerTimeoutMs: 10000, nearCacheBytes: 50 * 2 ** 30, replicas: 1, handoff: false, handoffDeadlineMs: 30_000 });
    expect(resolve({ cluster: "gpu", "peer-listen": "0.0.0.0:8789", "peer-advertise": "node7:8789", heartbeat: "500ms", "peer-timeout": "2s" }).pool).toMatchObject({ advertise: "node7:8789", heartbeatMs: 500, peerTimeoutMs: 2000 });
  });

  it("parses --near-cache as a size or a share of the cache, --replicas, --handoff and its deadline", () => {
    const pool = resolve({ cluster: "gpu", "peer-listen": "a:1", "cache-size": "100GiB", "near-cache": "2GiB", replicas: "2", handoff: "true", "handoff-deadline": "45s" }).pool;
    expect(pool).toMatchObject({ nearCacheBytes: 2 * 2 ** 30, replicas: 2, handoff: true, handoffDeadlineMs: 45_000 });
    expect(resolve({ cluster: "gpu", "peer-listen": "a:1", "cache-size": "100GiB", "near-cache": "0" }).pool?.nearCacheBytes).toBe(0);
    expect(resolve({ cluster: "gpu", "peer-listen": "a:1", "cache-size": "100GiB", "near-cache": "25%" }).pool?.nearCacheBytes).toBe(25 * 2 ** 30);
  });

  it("parses a static list that includes this node, with its secret", () => {
    const pool = resolve({ peers: "10.0.0.5:8789, 10.0.0.6:8789", "peer-listen": "10.0.0.5:8789" }, { FERRY_CLUSTER_SECRET: "0123456789abcdef" }).pool;
    expect(pool?.peers).toEqual(["10.0.0.5:8789", "10.0.0.6:8789"]);
    expect(pool?.clusterSecret).toBe("0123456789abcdef");
  });

  it("names the flag at fault", () => {
    const cases: Array<[RawSettings, NodeJS.ProcessEnv, RegExp]> = [
      [{ cluster: "gpu" }, {}, /--peer-listen/],
      [{ cluster: "gpu", peers: "a:1", "peer-listen": "a:1" }, {}, /exclude each other/],
      [{ cluster: "GPU!", "peer-listen": "a:1" }, {}, /--cluster/],
      [{ cluster: "gpu", "peer-listen": "0.0.0.0:1" }, {}, /--peer-advertise/],
      [{ peers: "a:1,b:1", "peer-listen": "a:1" }, {}, /FERRY_CLUSTER_SECRET/],
      [{ peers: "b:1", "peer-listen": "a:1" }, { FERRY_CLUSTER_SECRET: "0123456789abcdef" }, /own address/],
      [{ cluster: "gpu", "peer-listen": "a:1", heartbeat: "1ms" }, {}, /--heartbeat/],
      [{ cluster: "gpu", "peer-listen": "a:1", "near-cache": "lots" }, {}, /--near-cache/],
      [{ cluster: "gpu", "peer-listen": "a:1", "cache-size": "1GiB", "near-cache": "2GiB" }, {}, /--near-cache.*cannot exceed/],
      [{ cluster: "gpu", "peer-listen": "a:1", replicas: "9" }, {}, /--replicas/],
      [{ cluster: "gpu", "peer-listen": "a:1", handoff: "maybe" }, {}, /--handoff/],
    ];
    for (const [flags, env, message] of cases) {
      expect(() => resolve(flags, env)).toThrow(ConfigError);
      expect(() => resolve(flags, env)).toThrow(message);
    }
  });
});
