// `--schedule`: runs the replication at start and then on a node-cron schedule, never two
// at once. A tick that comes while a run is still going is skipped and logged (node-cron's
// noOverlap does the same for its own ticks; the local flag also covers the first run,
// which node-cron does not know about). Stops when the signal aborts, after the run in
// progress has wound down.
import cron from "node-cron";
import type { Reporter } from "../report/reporter.ts";

export interface ScheduleOptions {
  expression: string;
  reporter: Reporter;
  signal: AbortSignal;
  /** One run; its errors are the caller's to report (a thrown error is logged and the schedule goes on). */
  runOnce: (run: number) => Promise<void>;
  /** Errors that end the schedule instead (e.g. bad input on the first run). */
  isFatal: (error: unknown, run: number) => boolean;
}

export async function runOnSchedule(options: ScheduleOptions): Promise<void> {
  const { reporter, signal } = options;
  let running: Promise<void> | undefined;
  let runs = 0;
  let skipped = 0;
  let fatal: unknown;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const start = (trigger: "start" | "tick"): Promise<void> => {
    if (running) {
      skipped++;
      reporter.log("warn", "scheduled run skipped: the previous run is still going", { run: runs, skipped, trigger });
      return running;
    }
    const run = ++runs;
    running = options
      .runOnce(run)
      .catch((error: unknown) => {
        if (options.isFatal(error, run)) {
          fatal = error;
          finish();
          return;
        }
        reporter.log("error", "scheduled run failed", { run, error: error instanceof Error ? error.message : String(error) });
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const task = cron.schedule(expressionOf(options.expression), () => start("tick"), { noOverlap: true, name: "ferry-replicate" });
  task.on("execution:overlap", () => {
    skipped++;
    reporter.log("warn", "scheduled run skipped: the previous run is still going", { run: runs, skipped, trigger: "tick" });
  });
  reporter.log("info", "schedule started", { schedule: options.expression, next: task.getNextRun()?.toISOString() });
  const onAbort = () => finish();
  signal.addEventListener("abort", onAbort, { once: true });
  void start("start");
  await finished;
  signal.removeEventListener("abort", onAbort);
  await task.stop();
  await task.destroy();
  if (running) await running;
  reporter.log("info", "schedule stopped", { runs, skipped });
  if (fatal !== undefined) throw fatal;
}

function expressionOf(text: string): string {
  return text.trim();
}
