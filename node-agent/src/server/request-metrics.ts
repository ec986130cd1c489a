// Prometheus metrics for the agent: request counts and latency histograms by operation
// and status, plus the cache's and read path's counters read at scrape time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface StatsSource {
  /** Named numeric figures (counters and gauges) to publish, read at scrape time. */
  figures(): Record<string, number>;
}

export class RequestMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"operation" | "status">;
  private readonly latency: Histogram<"operation">;
  private readonly children = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void } }>();

  constructor(source: StatsSource) {
    this.requests = new Counter({ name: "ferry_agent_requests_total", help: "S3 requests served, by operation and HTTP status", labelNames: ["operation", "status"], registers: [this.registry] });
    this.latency = new Histogram({
      name: "ferry_agent_request_seconds",
      help: "S3 request latency until the response ended, by operation",
      labelNames: ["operation"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    const figures = new Gauge({
      name: "ferry_agent_stat",
      help: "Cache and read-path figures (see the `name` label): hits, misses, bytes by source, evictions, corrupt blocks, …",
      labelNames: ["name"],
      registers: [this.registry],
      collect() {
        for (const [name, value] of Object.entries(source.figures())) this.set({ name }, value);
      },
    });
    void figures;
  }

  observe(operation: string, status: number, seconds: number): void {
    // Label children are looked up once per (operation, status): prom-client hashes label objects on every call otherwise.
    const k = `${operation} ${status}`;
    let child = this.children.get(k);
    if (child === undefined) {
      child = { requests: this.requests.labels(operation, String(status)), latency: this.latency.labels(operation) };
      this.children.set(k, child);
    }
    child.requests.inc();
    child.latency.observe(seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
