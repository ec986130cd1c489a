// Byte sizes as people write them on command lines and in config files, and as they like
// to read them back. Shared by the agent, the replicator and the CLI (Node and Workers safe).

const KiB = 1024;
const UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: KiB, kib: KiB, kb: 1e3,
  m: KiB ** 2, mib: KiB ** 2, mb: 1e6,
  g: KiB ** 3, gib: KiB ** 3, gb: 1e9,
  t: KiB ** 4, tib: KiB ** 4, tb: 1e12,
};

/** "16MiB", "16M" (binary, as rclone reads it), "16MB" (decimal), "1048576" → bytes; undefined if not a size. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  return m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : undefined;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
