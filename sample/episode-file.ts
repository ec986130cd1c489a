// Writes one synthetic episode as an HDF5 file with h5wasm, in the ALOHA-style layout that
// robot-learning loaders expect. The bytes depend only on the spec, never on the clock.
import h5wasm, { Module } from "h5wasm/node";
import type { File as H5File } from "h5wasm/node";
import { createScene, renderFrame } from "./frames.ts";
import { createTrajectory, effectorPoint, JOINT_COUNT } from "./motion.ts";
import { createRandom, mix32 } from "./random.ts";

export type EpisodeSpec = {
  /** Position in the dataset, stored as the `episode_index` attribute. */
  index: number;
  /** The run's seed, stored as the `seed` attribute so a file says how to remake it. */
  runSeed: number;
  /** Seed for this episode's content, derived from the run seed and the index. */
  episodeSeed: number;
  frames: number;
  cameras: number;
  height: number;
  width: number;
};

const ROBOT = "ferry-synthetic-aloha";
const TASKS = ["transfer the cube", "insert the peg", "stack the blocks", "open the drawer", "fold the towel"] as const;
const GZIP_LEVEL = 4; // h5py's default: a fair trade of speed for size on image chunks
const GRIPPER_JOINT = 6;

/** Loads the HDF5 WebAssembly module; call (and await) once before `writeEpisodeFile`. */
export async function loadHdf5(): Promise<void> {
  await h5wasm.ready;
}

/**
 * Runs a synchronous h5wasm session with two process-wide switches flipped, and flips them back:
 * - HDF5 stamps every object header with access/modify/change/birth times (track_times is on by
 *   default) and h5wasm cannot turn that off. Its WebAssembly clock reads the global `Date.now`,
 *   so pinning that to 0 makes the bytes independent of when they were written. No other JS can
 *   run while `write` does, so nothing else ever sees the frozen clock.
 * - HDF5's default error handler only prints to stderr and returns a status h5wasm does not always
 *   check (a failed create goes on to write into nothing); the throwing handler makes it an Error.
 */
function hdf5Session<T>(write: () => T): T {
  const realNow = Date.now;
  Date.now = () => 0;
  Module.activate_throwing_error_handler();
  try {
    return write();
  } finally {
    Module.deactivate_throwing_error_handler();
    Date.now = realNow;
  }
}

/**
 * HDF5 errors carry the whole error stack; the deepest frame names the actual cause (errno and
 * all). A frame's text can span lines (it embeds ctime()), so it runs up to the "major:" line.
 */
function hdf5Error(error: unknown): Error {
  const text = error instanceof Error ? error.message : String(error);
  const frames = [...text.matchAll(/ in (\w+\(\)): ([\s\S]*?)\n\s*major:/g)];
  const deepest = frames.at(-1);
  const summary = deepest ? `HDF5 ${deepest[1]}: ${(deepest[2] ?? "").replace(/\s*\n\s*/g, " ")}` : text;
  return new Error(summary, { cause: error });
}

/** Writes the episode to `path` (truncating it). Synchronous: h5wasm's API is. */
export function writeEpisodeFile(path: string, spec: EpisodeSpec): void {
  const { frames, cameras, height, width, episodeSeed } = spec;
  const trajectory = createTrajectory({ seed: episodeSeed, frames });
  const meta = createRandom(mix32(episodeSeed, 0x6d657461)); // "meta": a stream of its own
  const task = TASKS[meta.below(TASKS.length)] ?? TASKS[0];
  const success = meta.next() < 0.7 ? 1 : 0;

  hdf5Session(() => {
    let file: H5File | undefined;
    try {
      file = new h5wasm.File(path, "w");
      const observations = file.create_group("observations");
      const images = observations.create_group("images");
      const pixels = new Uint8ClampedArray(height * width * 3);
      // h5wasm checks the array class against the dtype; a view shares the clamped buffer.
      const frameBytes = new Uint8Array(pixels.buffer);
      for (let camera = 0; camera < cameras; camera++) {
        const scene = createScene({ seed: mix32(episodeSeed, camera), width, height });
        const draw = (frame: number): Uint8Array => {
          const effector = effectorPoint(trajectory.qpos, frame);
          const gripper = trajectory.qpos[frame * JOINT_COUNT + GRIPPER_JOINT] ?? 0;
          renderFrame(scene, { u: frame / frames, frame, effector, gripper }, pixels);
          return frameBytes;
        };
        // h5wasm can only create a dataset from data, so it starts as frame 0 with room for
        // all frames, then grows; one frame in memory at a time whatever the episode length.
        const dataset = images.create_dataset({
          name: `cam${camera}`,
          data: draw(0),
          shape: [1, height, width, 3],
          maxshape: [frames, height, width, 3],
          dtype: "<B",
          chunks: [1, height, width, 3],
          compression: "gzip",
          compression_opts: GZIP_LEVEL,
        });
        if (frames > 1) dataset.resize([frames, height, width, 3]);
        for (let frame = 1; frame < frames; frame++) dataset.write_slice([[frame, frame + 1]], draw(frame));
      }
      observations.create_dataset({ name: "qpos", data: trajectory.qpos, shape: [frames, JOINT_COUNT], dtype: "<f" });
      file.create_dataset({ name: "action", data: trajectory.action, shape: [frames, JOINT_COUNT], dtype: "<f" });
      file.create_attribute("robot", ROBOT);
      file.create_attribute("task", task);
      // int8 0/1: h5py's bool is an HDF5 enum, which h5wasm cannot create.
      file.create_attribute("success", success, null, "<b");
      file.create_attribute("episode_index", spec.index, null, "<q");
      file.create_attribute("seed", spec.runSeed, null, "<I");
      file.create_attribute("fps", 50, null, "<i");
      file.close();
    } catch (error) {
      try {
        file?.close();
      } catch {
        // Ignored on purpose: the write already failed, and that first error is the one to report.
      }
      throw hdf5Error(error);
    }
  });
}
