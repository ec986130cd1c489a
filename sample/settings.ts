// The knobs of the sample generator: their defaults, bounds and validation. Kept apart from
// the writer so that callers (the CLI's flag parsing) need not load the HDF5 WebAssembly module.

/** What the dataset looks like. Every field is a whole number. */
export type SampleSettings = {
  /** Episode files to write. Default 8. */
  episodes: number;
  /** Time steps per episode. Default 40. */
  frames: number;
  /** Cameras per episode (`cam0`, `cam1`, ...). Default 2. */
  cameras: number;
  /** Seed for everything; same seed and settings give the same bytes. Default 0. */
  seed: number;
  /** Image height in pixels. Default 96. */
  height: number;
  /** Image width in pixels. Default 128. */
  width: number;
};

export const SAMPLE_DEFAULTS: Readonly<SampleSettings> = Object.freeze({
  episodes: 8,
  frames: 40,
  cameras: 2,
  seed: 0,
  height: 96,
  width: 128,
});

/** Inclusive bounds; the seed is stored as a uint32 attribute, hence its range. */
export const SAMPLE_LIMITS: Readonly<Record<keyof SampleSettings, { min: number; max: number }>> = Object.freeze({
  episodes: { min: 1, max: 100_000 },
  frames: { min: 1, max: 100_000 },
  cameras: { min: 1, max: 16 },
  seed: { min: 0, max: 4_294_967_295 },
  height: { min: 8, max: 4096 },
  width: { min: 8, max: 4096 },
});

/** A setting out of range; `option` names it so a caller can point at its own flag. */
export class SampleOptionError extends RangeError {
  override readonly name = "SampleOptionError";
  readonly option: keyof SampleSettings;

  constructor(option: keyof SampleSettings, message: string) {
    super(message);
    this.option = option;
  }
}

/** Defaults filled in and every setting checked against SAMPLE_LIMITS. */
export function resolveSampleSettings(options: Partial<SampleSettings>): Readonly<SampleSettings> {
  const settings: SampleSettings = { ...SAMPLE_DEFAULTS };
  for (const key of Object.keys(SAMPLE_DEFAULTS) as (keyof SampleSettings)[]) {
    const value = options[key] ?? SAMPLE_DEFAULTS[key];
    const { min, max } = SAMPLE_LIMITS[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new SampleOptionError(key, `${key} must be a whole number from ${min} to ${max} (got ${value})`);
    }
    settings[key] = value;
  }
  return Object.freeze(settings);
}
