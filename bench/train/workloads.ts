// The three emulated workloads of `npm run bench:train`, with MLPerf Storage's published H100
// numbers (DLIO's workload configs, MLPerf Storage v1.0) and our documented choice for trajectories.
import { MLPERF_SAMPLE_BYTES, RESNET50_DEFAULT_RECORDS_PER_FILE } from "../../sample/mlperf.ts";
import type { Workload } from "./types.ts";

/**
 * resnet50_h100.yaml: batch_size 400, computation_time 0.224 s, read_threads 8, records of
 * 114,660 bytes. One H100 consumes 400 × 114,660 B / 0.224 s ≈ 195 MiB/s.
 */
export const RESNET50: Readonly<Workload> = Object.freeze({
  name: "resnet50",
  sampleBytes: MLPERF_SAMPLE_BYTES.resnet50,
  samplesPerFile: RESNET50_DEFAULT_RECORDS_PER_FILE,
  batchSize: 400,
  computeSeconds: 0.224,
  readThreads: 8,
});

/**
 * unet3d_h100.yaml: batch_size 7, computation_time 0.323 s, read_threads 4, one sample of
 * 146,600,628 bytes (the mean) per file. One H100 consumes 7 × 146.6 MB / 0.323 s ≈ 3 GiB/s:
 * the bandwidth-bound workload.
 */
export const UNET3D: Readonly<Workload> = Object.freeze({
  name: "unet3d",
  sampleBytes: MLPERF_SAMPLE_BYTES.unet3d,
  samplesPerFile: 1,
  batchSize: 7,
  computeSeconds: 0.323,
  readThreads: 4,
});

/**
 * A trajectory sample is one whole HDF5 episode from `ferry sample` (defaults: 40 frames, 2
 * cameras of 96×128, gzip: ≈ 1.25 MB). The model is an ACT-style policy (a ResNet18 per camera
 * image, then a transformer over the action chunk), batch 8 episodes = 640 images. We scale
 * from DLIO's own resnet50 calibration (400 images of 224×224 in 0.224 s) rather than from peak
 * FLOPs, so the three workloads share one notion of H100 efficiency: ResNet18 is 1.8/4.1 of
 * ResNet50's FLOPs and a 96×128 image is 0.245 of a 224×224 one, so 640 images cost as much as
 * ≈ 69 resnet50 images ≈ 0.039 s; the transformer roughly doubles it: 0.08 s per batch, i.e.
 * ≈ 120 MiB/s per H100 — between resnet50 and unet3d. readThreads 4: DLIO's setting for the
 * other large-sample workload, and a common DataLoader num_workers for such policies.
 * sampleBytes is the generated set's mean file size (the emulator reads each file whole).
 */
export const TRAJECTORY: Readonly<Workload> = Object.freeze({
  name: "trajectory",
  sampleBytes: 1_250_000,
  samplesPerFile: 1,
  batchSize: 8,
  computeSeconds: 0.08,
  readThreads: 4,
});

export const WORKLOADS: Readonly<Record<Workload["name"], Readonly<Workload>>> = Object.freeze({ resnet50: RESNET50, unet3d: UNET3D, trajectory: TRAJECTORY });

export function isWorkloadName(text: string): text is Workload["name"] {
  return Object.hasOwn(WORKLOADS, text);
}
