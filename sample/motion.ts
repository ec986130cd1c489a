// Joint trajectories for a synthetic 14-DoF bimanual arm (two arms of 6 joints + 1 gripper,
// the ALOHA layout). Each joint is a seeded sum of sines, so motion is smooth and `action[t]`
// (the commanded next position) is close to `qpos[t + 1]`, as in real teleoperation logs.
import { createRandom } from "./random.ts";

export const JOINT_COUNT = 14;
const GRIPPER_JOINTS: ReadonlySet<number> = new Set([6, 13]);
const HARMONICS = 3;

type Wave = { amplitude: number; cyclesPerEpisode: number; phase: number };
type Joint = { offset: number; waves: Wave[]; gripper: boolean };

export type Trajectory = {
  /** Measured joint positions, row-major [frames, 14], radians (grippers 0 = closed .. 1 = open). */
  qpos: Float32Array;
  /** Commanded joint positions, row-major [frames, 14]: the next qpos plus a small tracking error. */
  action: Float32Array;
};

function createJoints(seed: number): Joint[] {
  const random = createRandom(seed);
  return Array.from({ length: JOINT_COUNT }, (_, index): Joint => {
    const gripper = GRIPPER_JOINTS.has(index);
    const waves = Array.from({ length: HARMONICS }, (_, k): Wave => ({
      // Higher harmonics are smaller, which is what keeps the curves smooth.
      amplitude: (gripper ? 0.5 : random.range(0.2, 0.6)) / (k + 1) ** 2,
      cyclesPerEpisode: (k + 1) * random.range(0.5, 1.5),
      phase: random.range(0, 2 * Math.PI),
    }));
    return { offset: gripper ? 0.5 : random.range(-0.6, 0.6), waves, gripper };
  });
}

/** Position of one joint at `u`, the fraction of the episode elapsed (0 at the first frame). */
function position(joint: Joint, u: number): number {
  let value = joint.offset;
  for (const wave of joint.waves) value += wave.amplitude * Math.sin(2 * Math.PI * wave.cyclesPerEpisode * u + wave.phase);
  return joint.gripper ? Math.min(1, Math.max(0, value)) : value;
}

/** The whole episode's qpos and action for `frames` time steps. */
export function createTrajectory(options: { seed: number; frames: number }): Trajectory {
  const { seed, frames } = options;
  const joints = createJoints(seed);
  const noise = createRandom(seed ^ 0x5bd1e995);
  const qpos = new Float32Array(frames * JOINT_COUNT);
  const action = new Float32Array(frames * JOINT_COUNT);
  for (let t = 0; t < frames; t++) {
    for (let j = 0; j < JOINT_COUNT; j++) {
      const joint = joints[j];
      if (joint === undefined) continue;
      qpos[t * JOINT_COUNT + j] = position(joint, t / frames);
      // The target one step ahead; defined for the last frame too because time is continuous.
      action[t * JOINT_COUNT + j] = position(joint, (t + 1) / frames) + noise.range(-0.002, 0.002);
    }
  }
  return { qpos, action };
}

/** Where the first arm's end effector is in the image plane, both in [0, 1], for drawing it. */
export function effectorPoint(qpos: Float32Array, frame: number): { x: number; y: number } {
  const shoulder = qpos[frame * JOINT_COUNT] ?? 0;
  const elbow = qpos[frame * JOINT_COUNT + 1] ?? 0;
  return { x: 0.5 + 0.4 * Math.tanh(shoulder), y: 0.55 + 0.35 * Math.tanh(elbow) };
}
