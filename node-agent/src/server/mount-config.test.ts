// The mount's settings: which FUSE driver (--mount-driver), how it opens files
// (--mount-mode), and how much disk passthrough copies may use (--passthrough-budget, a size or a share of the cache), with errors that
// name the flag or variable at fault.
import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig, type RawSettings } from "../config.ts";

const base = { edge: "http://127.0.0.1:8787", "cache-dir": "/tmp/c", "access-key-id": "AKID", "secret-access-key": "SECRET", "cache-size": "100GiB" } satisfies RawSettings;
const resolve = (flags: RawSettings, env: NodeJS.ProcessEnv = {}) => resolveConfig({ flags: { ...base, ...flags }, env, file: {} });
const GiB = 2 ** 30;

describe("mount config", () => {
  it("defaults to the auto driver and a passthrough budget of 10% of the cache", () => {
    const config = resolve({});
    expect(config.mountDriver).toBe("auto");
    expect(config.mountMode).toBe("passthrough");
    expect(config.passthroughBudgetBytes).toBe(10 * GiB);
  });

  it("takes page-cache mode for an immutable dataset only", () => {
    expect(resolve({ "mount-mode": "page-cache", "metadata-ttl": "indefinite" }).mountMode).toBe("page-cache");
    expect(resolve({ "metadata-ttl": "indefinite" }, { FERRY_MOUNT_MODE: "page-cache" }).mountMode).toBe("page-cache");
    expect(() => resolve({ "mount-mode": "page-cache" })).toThrow(/--mount-mode.*page-cache needs --metadata-ttl.*indefinite/);
    expect(() => resolve({ "mount-mode": "page-cache", "metadata-ttl": "3600" })).toThrow(ConfigError);
  });

  it("takes the driver and the budget from flags or the environment", () => {
    expect(resolve({ "mount-driver": "libfuse", "passthrough-budget": "0" }).passthroughBudgetBytes).toBe(0);
    expect(resolve({ "mount-driver": "kernel" }).mountDriver).toBe("kernel");
    const fromEnv = resolve({}, { FERRY_MOUNT_DRIVER: "kernel", FERRY_PASSTHROUGH_BUDGET: "25%" });
    expect(fromEnv.mountDriver).toBe("kernel");
    expect(fromEnv.passthroughBudgetBytes).toBe(25 * GiB);
    expect(resolve({ "passthrough-budget": "2GiB" }).passthroughBudgetBytes).toBe(2 * GiB);
  });

  it("names the setting at fault", () => {
    const cases: Array<[RawSettings, NodeJS.ProcessEnv, RegExp]> = [
      [{ "mount-driver": "fuse3" }, {}, /--mount-driver.*must be auto, kernel or libfuse, got "fuse3"/],
      [{}, { FERRY_MOUNT_DRIVER: "nope" }, /FERRY_MOUNT_DRIVER/],
      [{ "mount-mode": "cached" }, {}, /--mount-mode.*must be passthrough or page-cache, got "cached"/],
      [{ "passthrough-budget": "lots" }, {}, /--passthrough-budget/],
      [{ "passthrough-budget": "200GiB" }, {}, /--passthrough-budget.*cannot exceed/],
      [{ "passthrough-budget": "150%" }, {}, /--passthrough-budget.*must be at most 100%/],
    ];
    for (const [flags, env, message] of cases) {
      expect(() => resolve(flags, env)).toThrow(ConfigError);
      expect(() => resolve(flags, env)).toThrow(message);
    }
  });
});
