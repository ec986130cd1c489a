// Seeded pseudo-random numbers for the sample generator. Everything is 32-bit integer
// arithmetic (Math.imul), so a seed gives the same stream on every machine.

/** Combines words into one well-spread 32-bit value; used to derive per-episode and per-camera seeds. */
export function mix32(...words: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const word of words) {
    h = Math.imul(h ^ (word >>> 0), 0x85ebca6b);
    h = (h << 13) | (h >>> 19);
    h = Math.imul(h, 0xc2b2ae35) + 0x165667b1;
  }
  // murmur3's finalizer, so nearby inputs (episode 1, episode 2) give unrelated outputs
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export type Random = {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  range(min: number, max: number): number;
  /** Uniform whole number in [0, count). */
  below(count: number): number;
};

/** mulberry32: tiny, fast and good enough for synthetic data (not for anything secret). */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    range: (min, max) => min + (max - min) * next(),
    below: (count) => Math.floor(next() * count),
  };
}
