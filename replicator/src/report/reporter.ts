// How a run tells the world what it does. The copier calls a Reporter; the CLI picks
// the concrete one: a progress bar on a terminal or JSON lines otherwise (stderr), and
// with --json the per-object results and the summary as JSON lines on stdout, the summary
// last. Every line is one JSON object with a constant "msg" and fields for the variables.
import type { RunSummary } from "./summary.ts";
import { formatBytes, formatSummary } from "./summary.ts";

export type Level = "debug" | "info" | "warn" | "error";

export interface Reporter {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  /** Totals for the progress bar once the plan is known. */
  planned(totals: { objects: number; bytes: number }): void;
  bytes(count: number): void;
  objectDone(event: { type: "copied" | "failed" | "deleted" | "would-copy" | "would-delete"; key: string; [field: string]: unknown }): void;
  summary(summary: RunSummary): void;
  close(): void;
}

export interface ReporterOptions {
  json: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  now?: () => number;
}

function line(fields: Record<string, unknown>): string {
  return JSON.stringify(fields, (_key, value: unknown) => (value instanceof Error ? value.message : value)) + "\n";
}

export function createReporter(options: ReporterOptions): Reporter {
  const { stdout, stderr, json } = options;
  const now = options.now ?? (() => performance.now());
  const tty = stderr.isTTY === true;
  let totals = { objects: 0, bytes: 0 };
  let doneObjects = 0;
  let doneBytes = 0;
  let started = now();
  let barShown = false;
  let timer: NodeJS.Timeout | undefined;

  const clearBar = () => {
    if (tty && barShown) stderr.write("\r\x1b[2K");
    barShown = false;
  };
  const drawBar = () => {
    if (!tty || totals.objects === 0) return;
    const width = Math.max(10, Math.min(30, (stderr.columns ?? 80) - 60));
    const fraction = totals.bytes > 0 ? Math.min(1, doneBytes / totals.bytes) : doneObjects / totals.objects;
    const filled = Math.round(fraction * width);
    const seconds = (now() - started) / 1000;
    const rate = seconds > 0 ? doneBytes / seconds : 0;
    const eta = rate > 0 && totals.bytes > doneBytes ? Math.round((totals.bytes - doneBytes) / rate) : 0;
    const etaText = `${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, "0")}`;
    stderr.write(`\r\x1b[2K[${"#".repeat(filled)}${".".repeat(width - filled)}] ${doneObjects}/${totals.objects} objects  ${formatBytes(doneBytes)}/${formatBytes(totals.bytes)}  ${formatBytes(rate)}/s  ETA ${etaText}`);
    barShown = true;
  };

  return {
    log(level, msg, fields = {}) {
      if (tty) {
        if (level === "debug" || (level === "info" && !["run started", "run finished", "scheduled run skipped: the previous run is still going", "schedule started"].includes(msg))) return;
        clearBar();
        const details = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v instanceof Error ? v.message : v)}`).join(" ");
        stderr.write(`${level === "info" ? "" : `${level}: `}${msg}${details ? ` ${details}` : ""}\n`);
        drawBar();
        return;
      }
      if (level === "debug") return;
      stderr.write(line({ time: new Date().toISOString(), level, msg, ...fields }));
    },
    planned(t) {
      totals = t;
      doneObjects = 0;
      doneBytes = 0;
      started = now();
      if (tty && !timer && t.objects > 0) {
        timer = setInterval(drawBar, 250);
        timer.unref();
      }
    },
    bytes(count) {
      doneBytes += count;
    },
    objectDone(event) {
      if (event.type === "copied" || event.type === "failed") doneObjects++;
      if (json) stdout.write(line(event));
      else if (!tty) stderr.write(line({ time: new Date().toISOString(), level: event.type === "failed" ? "error" : "info", msg: event.type, ...event, type: undefined }));
      else if (event.type !== "copied") {
        clearBar();
        stderr.write(`${event.type}: ${event.key}${event["error"] ? `: ${String(event["error"])}` : ""}\n`);
        drawBar();
      }
    },
    summary(summary) {
      if (timer) clearInterval(timer);
      timer = undefined;
      clearBar();
      if (json) stdout.write(line(summary as unknown as Record<string, unknown>));
      else stdout.write(formatSummary(summary) + "\n");
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clearBar();
    },
  };
}
