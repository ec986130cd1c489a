// Part sizing for multipart uploads under R2's rules: every part but the last has the
// same size, 5 MiB to 5 GiB, and at most 10,000 parts. Sizes are whole MiB so that
// the same object always splits the same way.

export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 ** 3;
export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/** The part size for an object: at least `minimumBytes`, large enough for ≤ 10,000 parts. */
export function partSizeFor(objectBytes: number, minimumBytes: number): number {
  const needed = Math.ceil(objectBytes / MAX_PARTS);
  const size = Math.max(minimumBytes, MIN_PART_BYTES, Math.ceil(needed / MiB) * MiB);
  if (size > MAX_PART_BYTES) throw new RangeError(`object too large for multipart: ${objectBytes} bytes`);
  return size;
}

export function partCount(objectBytes: number, partBytes: number): number {
  return Math.max(1, Math.ceil(objectBytes / partBytes));
}
