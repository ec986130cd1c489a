// Synthetic camera frames: a static seeded backdrop (wall, table, vignette), a few objects
// drifting on smooth paths, the arm's end effector, light flicker and faint sensor noise.
// Mostly smooth and slowly changing, so frames compress like real footage, not like noise.
import { createRandom, mix32 } from "./random.ts";
import type { Random } from "./random.ts";

/** Noise by 3 random bits: -1 and +1 once in 8 each, else 0. */
const NOISE = Int8Array.of(-1, 0, 0, 0, 0, 0, 0, 1);

type Rgb = readonly [number, number, number];
type Mover = {
  kind: "disc" | "box";
  color: Rgb;
  /** Radius (disc) or half side (box) as a fraction of the shorter image side. */
  size: number;
  /** Lissajous path in image fractions: center, amplitude, cycles per episode, phase. */
  path: { cx: number; cy: number; ax: number; ay: number; fx: number; fy: number; phase: number };
};

export type Scene = {
  width: number;
  height: number;
  /** Backdrop in linear 0..255 floats, row-major [height, width, 3]; scaled by the flicker each frame. */
  backdrop: Float32Array;
  movers: Mover[];
  effectorColor: Rgb;
  /** Cameras look at the arm from different sides, so some see it mirrored. */
  mirrored: boolean;
  flicker: { amplitude: number; cycles: number; phase: number };
  noiseSeed: number;
};

export type FrameState = {
  /** Fraction of the episode elapsed, 0 at the first frame. */
  u: number;
  frame: number;
  /** End effector position in image fractions. */
  effector: { x: number; y: number };
  /** Gripper opening, 0 = closed .. 1 = open; drawn as the effector's size. */
  gripper: number;
};

function color(random: Random, min: number, max: number): Rgb {
  return [random.range(min, max), random.range(min, max), random.range(min, max)];
}

function createBackdrop(random: Random, width: number, height: number): Float32Array {
  const wallTop = color(random, 120, 220);
  const wallBottom = color(random, 80, 180);
  const tableNear = color(random, 60, 160);
  const tableFar = color(random, 40, 130);
  const horizon = random.range(0.3, 0.55);
  const backdrop = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const v = y / Math.max(1, height - 1);
    for (let x = 0; x < width; x++) {
      const h = x / Math.max(1, width - 1);
      // A vignette darkens the corners the way cheap wide-angle lenses do.
      const dx = h - 0.5;
      const dy = v - 0.5;
      const vignette = 1 - 0.5 * (dx * dx + dy * dy);
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const value =
          v < horizon
            ? lerp(wallTop[c] ?? 0, wallBottom[c] ?? 0, v / horizon)
            : lerp(tableFar[c] ?? 0, tableNear[c] ?? 0, (v - horizon) / (1 - horizon)) * (0.92 + 0.08 * h);
        backdrop[i + c] = value * vignette;
      }
    }
  }
  return backdrop;
}

function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** One camera's scene; everything that does not change between frames is decided here. */
export function createScene(options: { seed: number; width: number; height: number }): Scene {
  const { seed, width, height } = options;
  const random = createRandom(seed);
  const backdrop = createBackdrop(random, width, height);
  const movers = Array.from({ length: 2 + random.below(3) }, (): Mover => ({
    kind: random.next() < 0.5 ? "disc" : "box",
    color: color(random, 20, 250),
    size: random.range(0.05, 0.12),
    path: {
      cx: random.range(0.25, 0.75),
      cy: random.range(0.5, 0.8),
      ax: random.range(0.05, 0.2),
      ay: random.range(0.02, 0.1),
      fx: random.range(0.3, 1.5),
      fy: random.range(0.3, 1.5),
      phase: random.range(0, 2 * Math.PI),
    },
  }));
  return {
    width,
    height,
    backdrop,
    movers,
    effectorColor: color(random, 30, 90),
    mirrored: random.next() < 0.5,
    flicker: { amplitude: random.range(0.01, 0.04), cycles: random.range(1, 4), phase: random.range(0, 2 * Math.PI) },
    noiseSeed: mix32(seed, 0x6e6f6973),
  };
}

function drawDisc(scene: Scene, out: Uint8ClampedArray, cx: number, cy: number, radius: number, rgb: Rgb): void {
  const { width, height } = scene;
  const x0 = Math.max(0, Math.floor(cx - radius));
  const x1 = Math.min(width - 1, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(height - 1, Math.ceil(cy + radius));
  const r2 = radius * radius;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const d2 = (x - cx) ** 2 + (y - cy) ** 2;
      if (d2 > r2) continue;
      // Darker toward the rim, so a disc reads as a lit ball rather than a flat sticker.
      const shade = 1 - 0.45 * (d2 / r2);
      const i = (y * width + x) * 3;
      out[i] = rgb[0] * shade;
      out[i + 1] = rgb[1] * shade;
      out[i + 2] = rgb[2] * shade;
    }
  }
}

function drawBox(scene: Scene, out: Uint8ClampedArray, cx: number, cy: number, half: number, rgb: Rgb): void {
  const { width, height } = scene;
  const x0 = Math.max(0, Math.round(cx - half));
  const x1 = Math.min(width - 1, Math.round(cx + half));
  const y0 = Math.max(0, Math.round(cy - half));
  const y1 = Math.min(height - 1, Math.round(cy + half));
  for (let y = y0; y <= y1; y++) {
    // Lit from above: the top face is brighter than the bottom.
    const shade = 1.1 - 0.3 * ((y - (cy - half)) / (2 * half));
    for (let x = x0; x <= x1; x++) {
      const i = (y * width + x) * 3;
      out[i] = rgb[0] * shade;
      out[i + 1] = rgb[1] * shade;
      out[i + 2] = rgb[2] * shade;
    }
  }
}

/** Renders one frame into `out` ([height, width, 3]); clamped writes keep every value in 0..255. */
export function renderFrame(scene: Scene, state: FrameState, out: Uint8ClampedArray): void {
  const { width, height, backdrop, flicker } = scene;
  const gain = 1 + flicker.amplitude * Math.sin(2 * Math.PI * flicker.cycles * state.u + flicker.phase);
  for (let i = 0; i < backdrop.length; i++) out[i] = (backdrop[i] ?? 0) * gain;

  const side = Math.min(width, height);
  for (const mover of scene.movers) {
    const p = mover.path;
    const cx = (p.cx + p.ax * Math.sin(2 * Math.PI * p.fx * state.u + p.phase)) * width;
    const cy = (p.cy + p.ay * Math.sin(2 * Math.PI * p.fy * state.u + 2 * p.phase)) * height;
    if (mover.kind === "disc") drawDisc(scene, out, cx, cy, mover.size * side, mover.color);
    else drawBox(scene, out, cx, cy, mover.size * side, mover.color);
  }
  const ex = (scene.mirrored ? 1 - state.effector.x : state.effector.x) * width;
  drawDisc(scene, out, ex, state.effector.y * height, (0.05 + 0.04 * state.gripper) * side, scene.effectorColor);

  // Faint sensor noise: a quarter of the pixels get nudged by -1 or +1 (all channels alike, like
  // luma noise). Frames are never bit-identical, yet gzip still gets about 2.3:1 (3:1 without it).
  let s = mix32(scene.noiseSeed, state.frame) | 1;
  for (let i = 0; i < out.length; i += 3) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const n = NOISE[(s >>> 8) & 7] ?? 0;
    out[i] = (out[i] ?? 0) + n;
    out[i + 1] = (out[i + 1] ?? 0) + n;
    out[i + 2] = (out[i + 2] ?? 0) + n;
  }
}
