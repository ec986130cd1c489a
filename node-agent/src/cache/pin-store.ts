// Pins (bucket + key prefix) persisted in the cache dir, with, per pin, the hashes of the
// keys it is known to cover. The start-up scan sees only hashes (file names), so it marks
// blocks pinned through those key sets without reading any block file.
// Invariants: pins.json is replaced atomically (temp + fsync + rename); a key hash is
// appended to a pin's set before the block that needs it is renamed into place, so a
// crash can leave an extra hash (harmless) but a surviving block is never left unpinned
// by a process crash.
import { appendFile, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { hash } from "node:crypto";
import { CacheFaultError } from "./block-cache.ts";
import { decodeHeader, headerObject } from "./block-format.ts";
import { readFileHead } from "./block-files.ts";
import { readWholeHeaderBytes } from "./whole-files.ts";

export const PINS_DIR = "pins-v1";
const PINS_FILE = "pins.json";
/** Header reads in flight while finding which cached objects a new pin covers. */
const RESOLVE_CONCURRENCY = 16;
/** Enough for the header of any usual key; a longer header is read again whole. */
const HEADER_PROBE_BYTES = 4096;

export interface Pin {
  bucket: string;
  prefix: string;
}

interface PinState extends Pin {
  /** File stem of this pin's key set. */
  id: string;
  /** 16-hex key hashes of the keys known to be under the pin. */
  keys: Set<string>;
}

function pinId(bucket: string, prefix: string): string {
  return hash("sha256", JSON.stringify([bucket, prefix]), "hex").slice(0, 16);
}

function isPinList(v: unknown): v is { version: 1; pins: Pin[] } {
  if (typeof v !== "object" || v === null) return false;
  const { version, pins } = v as { version?: unknown; pins?: unknown };
  return (
    version === 1 &&
    Array.isArray(pins) &&
    pins.every((p: unknown) => {
      if (typeof p !== "object" || p === null) return false;
      const { bucket, prefix } = p as { bucket?: unknown; prefix?: unknown };
      return typeof bucket === "string" && typeof prefix === "string";
    })
  );
}

export class PinStore {
  private readonly dir: string;
  private readonly list: PinState[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Loads the pins under `cacheDir` (none if never written); a damaged pins file is a fault. */
  static async load(cacheDir: string): Promise<PinStore> {
    const store = new PinStore(join(cacheDir, PINS_DIR));
    await mkdir(store.dir, { recursive: true });
    const file = join(store.dir, PINS_FILE);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return store;
      throw new CacheFaultError(`cannot read pins: ${file}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CacheFaultError(`pins file is not valid JSON: ${file}`, { cause: err });
    }
    if (!isPinList(parsed)) throw new CacheFaultError(`pins file has an unknown shape: ${file}`);
    for (const p of parsed.pins) {
      const id = pinId(p.bucket, p.prefix);
      store.list.push({ bucket: p.bucket, prefix: p.prefix, id, keys: await store.readKeys(id) });
    }
    return store;
  }

  pins(): Pin[] {
    return this.list.map((p) => ({ bucket: p.bucket, prefix: p.prefix }));
  }

  get size(): number {
    return this.list.length;
  }

  get keyCount(): number {
    return this.list.reduce((n, p) => n + p.keys.size, 0);
  }

  /** Whether a key hash is in any pin's key set (the scan's test). */
  hasKey(keyHex: string): boolean {
    for (const p of this.list) if (p.keys.has(keyHex)) return true;
    return false;
  }

  /** Whether any pin covers bucket/key by prefix. */
  covers(bucket: string, key: string): boolean {
    return this.list.some((p) => p.bucket === bucket && key.startsWith(p.prefix));
  }

  /**
   * Records that bucket/key (hash keyHex) is under every pin that covers it; returns whether
   * any does. Resolves once the hash is appended to each set that lacked it.
   */
  async record(bucket: string, key: string, keyHex: string): Promise<boolean> {
    let pinned = false;
    const added: PinState[] = [];
    for (const p of this.list) {
      if (p.bucket !== bucket || !key.startsWith(p.prefix)) continue;
      pinned = true;
      if (p.keys.has(keyHex)) continue;
      // Added before the append resolves, so concurrent blocks of one object append once.
      p.keys.add(keyHex);
      added.push(p);
    }
    try {
      await Promise.all(added.map((p) => appendFile(join(this.dir, `${p.id}.keys`), `${keyHex}\n`)));
    } catch (err) {
      for (const p of added) p.keys.delete(keyHex);
      throw new CacheFaultError(`cannot record pinned key: ${bucket}/${key}`, { cause: err });
    }
    return pinned;
  }

  /**
   * For a new pin: block files know their key only in their header, so read one header per
   * cached object (given as one block file each) and record the keys the pin covers.
   */
  async recordCached(pin: Pin, files: Array<{ path: string; keyHex: string }>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let f = files[next++]; f !== undefined; f = files[next++]) {
        const obj = await readHeaderObject(f.path);
        if (obj !== undefined && obj.bucket === pin.bucket && obj.key.startsWith(pin.prefix)) await this.record(obj.bucket, obj.key, f.keyHex);
      }
    };
    await Promise.all(Array.from({ length: RESOLVE_CONCURRENCY }, worker));
  }

  /** Adds a pin (no-op if present) and persists it; false if it already existed. */
  async add(bucket: string, prefix: string): Promise<boolean> {
    if (this.list.some((p) => p.bucket === bucket && p.prefix === prefix)) return false;
    const id = pinId(bucket, prefix);
    // A key set left by an earlier pin of this prefix (a crash during unpin) may be stale: start empty.
    await rm(join(this.dir, `${id}.keys`), { force: true });
    this.list.push({ bucket, prefix, id, keys: new Set() });
    await this.save();
    return true;
  }

  async remove(bucket: string, prefix: string): Promise<boolean> {
    const i = this.list.findIndex((p) => p.bucket === bucket && p.prefix === prefix);
    const pin = this.list[i];
    if (pin === undefined) return false;
    this.list.splice(i, 1);
    await this.save();
    await rm(join(this.dir, `${pin.id}.keys`), { force: true });
    return true;
  }

  private async readKeys(id: string): Promise<Set<string>> {
    const keys = new Set<string>();
    let text = "";
    try {
      text = await readFile(join(this.dir, `${id}.keys`), "latin1");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new CacheFaultError(`cannot read pinned keys: ${id}`, { cause: err });
    }
    // A torn last line (crash during an append) is skipped; its block is re-recorded when read.
    for (const line of text.split("\n")) if (/^[0-9a-f]{16}$/.test(line)) keys.add(line);
    return keys;
  }

  private async save(): Promise<void> {
    const file = join(this.dir, PINS_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    const body = JSON.stringify({ version: 1, pins: this.pins() }, null, 2);
    try {
      const fh = await open(tmp, "w");
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new CacheFaultError(`cannot write pins: ${file}`, { cause: err });
    }
  }
}

/** The bucket and key in a block file's header; undefined if unreadable or bad (such a block stays unpinned, and a get drops it). */
async function readHeaderObject(path: string): Promise<{ bucket: string; key: string } | undefined> {
  try {
    // A whole-object file holds data from its first byte and its header in an xattr; a block file has none.
    const whole = readWholeHeaderBytes(path);
    if (typeof whole !== "string") return headerObject(whole);
    let head = await readFileHead(path, HEADER_PROBE_BYTES);
    if (head === undefined) return undefined;
    const check = decodeHeader(head);
    if (!check.ok && check.defect === "truncated" && head.length === HEADER_PROBE_BYTES) head = await readFileHead(path, head.readUInt16LE(6));
    return head === undefined ? undefined : headerObject(head);
  } catch {
    return undefined; // a read fault here only leaves the block unpinned; gets report faults
  }
}
