// CPU time read from /proc, for benchmarks that report what a process spent per MiB served.
import { readFileSync } from "node:fs";

/** Clock ticks (1/100 s) a process has used, all threads. */
export function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}
