// The seams of the training-feed benchmark (`npm run bench:train`): what a workload is,
// where its samples are read from, and what one measured data path reports. The emulator
// (emulator.ts) only sees a SampleLocation; the data paths (paths.ts) only produce one.

/** An MLPerf Storage-shaped workload: samples packed in files, read in batches, then "computed". */
export interface Workload {
  name: "resnet50" | "unet3d" | "trajectory";
  /** Bytes per sample (one record; unet3d and trajectory: one whole file). */
  sampleBytes: number;
  /** Samples stored back to back in one file (resnet50 packs many; unet3d and trajectory one). */
  samplesPerFile: number;
  /** Samples per batch per emulated accelerator. */
  batchSize: number;
  /** Published H100 compute time per batch (seconds) the emulator sleeps for. */
  computeSeconds: number;
  /** Concurrent reads per emulated accelerator (DLIO's read_threads). */
  readThreads: number;
}

/** One sample file of a generated data set, relative to the data set root / S3 prefix. */
export interface SampleFile {
  /** Path relative to the data set root, "/"-separated (also the S3 key below the prefix). */
  name: string;
  bytes: number;
}

/** A generated data set on local disk: the source every path is filled from and verified against. */
export interface DataSet {
  workload: Workload;
  /** Local directory holding the files (the "local-disk" path reads it directly). */
  root: string;
  files: SampleFile[];
  totalBytes: number;
}

/** Where the emulator reads samples: a directory (plain fs reads) or an S3 endpoint. */
export type SampleLocation =
  | { kind: "posix"; root: string }
  | {
      kind: "s3";
      /** e.g. http://127.0.0.1:8788 (path-style). */
      endpoint: string;
      bucket: string;
      /** Key prefix, "" or ending in "/": key = prefix + SampleFile.name. */
      prefix: string;
      /** Absent: unsigned requests (the agent's loopback endpoint accepts them). */
      credentials?: { accessKeyId: string; secretAccessKey: string };
    };

/** One data path under test, as set up by paths.ts. */
export interface DataPath {
  /** One of: agent-mount-cold, agent-mount-warm, agent-s3-cold, agent-s3-warm, agent-pool-peer, edge-direct, sync-then-local, rclone-vfs, s3fs, local-disk. */
  name: string;
  /** Human-readable one-liner for the output (what this path is, how it was set up). */
  description: string;
  /**
   * Makes the path ready for one measured run and says where to read. A cold path empties
   * its caches here (fresh agent cache, dropped page cache, fresh VFS cache) so that every
   * run starts cold; a warm path fills them here. Seconds spent before reading can be
   * counted (sync-then-local counts its copy) through `setupSeconds`.
   */
  prepare(): Promise<{ location: SampleLocation; setupSeconds?: number }>;
  /** Stops whatever prepare() started (mounts, processes). Called once at the end. */
  close(): Promise<void>;
  /**
   * Runs read each sample at most once: a first epoch. The agent's cold paths (a second
   * epoch would come from the cache they filled), rclone's VFS cache and s3fs likewise (their
   * VFS cache, the page cache over their mount), and edge-direct, whose second epoch would
   * come from the page cache of the local R2's files, which a remote origin does not have.
   */
  firstEpoch?: boolean;
}

/** What one emulated training run measured. */
export interface RunResult {
  accelerators: number;
  /** compute time ÷ wall time over all steps but the first, 0..1. */
  au: number;
  mibPerSec: number;
  samplesPerSec: number;
  steps: number;
  wallSeconds: number;
  /** Samples whose bytes were checked against the source in this run (0 when verification is off). */
  verifiedSamples: number;
  /**
   * Set when the run's deadline ended it early: "between-steps" after a completed step, or
   * "mid-step" when reads stopped inside a step (those in flight finished and were verified).
   */
  cutAtDeadline?: "between-steps" | "mid-step";
  /**
   * What au, mibPerSec and wallSeconds cover when the run was cut: "measured-steps" (DLIO's
   * window: every step but the first), "measured-steps-and-stall" (that window up to the last
   * in-flight read, compute of completed steps only, MiB/s of the bytes read in it) or
   * "whole-run" (no measured step completed: from the run's start, start-up included; AU =
   * compute of completed steps, often none, ÷ wall time; MiB/s = verified bytes read ÷ wall time).
   */
  basis?: "measured-steps" | "measured-steps-and-stall" | "whole-run";
}

/** One data path's result in bench/results/train-<workload>.json. */
export interface PathResult {
  name: string;
  description: string;
  /** Largest accelerator count with AU ≥ 0.9 (0 when even one accelerator falls short). */
  acceleratorsSupported: number;
  /** AU at acceleratorsSupported (or at 1 when none is supported). */
  au: number;
  /** MiB/s at acceleratorsSupported (or at 1 when none is supported). */
  mibPerSec: number;
  setupSeconds?: number;
  runs: RunResult[];
  /** Set when the path could not run here (tool missing, mount refused): the reason. */
  skipped?: string;
}

/** What paths.ts needs to build every data path for one data set. */
export interface PathsContext {
  dataSet: DataSet;
  /** Scratch directory for caches, mounts and copies; the caller removes it. */
  workDir: string;
  /** The shaper in front of the edge, so it behaves like R2 seen from another cloud. */
  shaper: { firstByteMs: number; streamMiBps: number };
  /** Progress and setup lines for the bench's output. */
  log: (line: string) => void;
  /** Extra `ferry agent` flags for the agent paths (`--agent-arg`), named in their descriptions. */
  agentArgs?: readonly string[];
  /** Publish the set's dataset manifest after the upload (`--manifest`), as `ferry replicate` does. */
  manifest?: boolean;
}

/** Builds all paths of the issue (skipped ones carry `skipped`), sharing one edge and one shaper. */
export type CreateDataPaths = (context: PathsContext) => Promise<{ paths: Array<DataPath & { skipped?: string }>; close(): Promise<void> }>;

/** A real PyTorch DataLoader's result for one path (trajectory workload). */
export interface LoaderResult {
  path: string;
  /** "h5py" over a POSIX location, "boto3" over an S3 location. */
  loader: "h5py" | "boto3";
  numWorkers: number;
  samplesPerSec: number;
  mibPerSec: number;
  /** Samples whose bytes matched the source. */
  verifiedSamples: number;
}
