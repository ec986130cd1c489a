// Back-pressure: the byte budget never overcommits, the rate limit holds, the pool bounds.
import { describe, expect, it } from "vitest";
import { Budget, RateLimit, forEachLimit } from "./limits.ts";

describe("limits", () => {
  it("Budget never exceeds its capacity and lets an oversized request run alone", async () => {
    const budget = new Budget(10);
    let peak = 0;
    await forEachLimit([4, 4, 4, 20, 3, 7], 6, async (units) => {
      const release = await budget.acquire(units);
      peak = Math.max(peak, budget.used);
      await new Promise((r) => setTimeout(r, 5));
      release();
    });
    expect(peak).toBeLessThanOrEqual(10);
    expect(budget.used).toBe(0);
  });

  it("RateLimit spreads bytes over time", async () => {
    const rate = new RateLimit(100_000);
    const started = performance.now();
    for (let i = 0; i < 6; i++) await rate.take(50_000); // 300 kB at 100 kB/s, 1 s burst
    expect(performance.now() - started).toBeGreaterThan(1500);
  });

  it("forEachLimit keeps at most `limit` in flight", async () => {
    let active = 0;
    let peak = 0;
    await forEachLimit(Array.from({ length: 20 }, (_, i) => i), 3, async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
    });
    expect(peak).toBe(3);
  });
});
