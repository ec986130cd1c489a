// The agent's configuration: flags beat FERRY_* environment variables, which beat one JSON
// config file. Parsed once at start into a frozen object; every problem is reported with
// the flag or variable that caused it and how to fix it.
import { parseByteSize } from "../../common/units.ts";

export interface AgentConfig {
  edge: URL;
  credentials: { accessKeyId: string; secretAccessKey: string };
  cacheDir: string;
  cacheSizeBytes: number;
  /** Keep at least this share of the cache's filesystem free (0..0.9). */
  minFreeRatio: number;
  listen: { host: string; port: number };
  mount?: string;
  /** How the mount talks to the kernel: its own /dev/fuse connection (root; passthrough for large cached files), libfuse, or whichever works. */
  mountDriver: "auto" | "kernel" | "libfuse";
  /**
   * How the kernel driver opens files: `passthrough` asks the agent at every open and hands the
   * kernel the cached file to read itself; `page-cache` lets the kernel open files without
   * asking (FUSE no-open) and keep their pages, for small-file data sets that fit in memory.
   */
  mountMode: "passthrough" | "page-cache";
  /**
   * Disk the kernel driver may spend on copies of cached objects it passes through that the
   * cache cannot keep as whole-object files (about 3.7 GiB or more, or no xattrs); 0 turns
   * passthrough off. The cache's own whole-object files need none of it.
   */
  passthroughBudgetBytes: number;
  /** Memory for small whole objects the S3 endpoint serves again (hot-objects.ts); 0 turns it off. */
  memoryCacheBytes: number;
  /** Seconds metadata is trusted, or "indefinite". */
  metadataTtl: number | "indefinite";
  blockSizeBytes: number;
  localKey?: { accessKeyId: string; secretAccessKey: string };
  fillConcurrency: number;
  readAheadBlocks: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Set when the agent pools its cache with a cluster (--cluster or --peers). */
  pool?: PoolConfig;
}

export interface PoolConfig {
  /** Membership from the edge's object for this cluster; absent with a static list. */
  cluster?: string;
  /** Static membership (HOST:PORT of every member, this node included). */
  peers?: string[];
  /** Where the peer listener binds (the cluster network). */
  listen: { host: string; port: number };
  /** HOST:PORT peers reach this node at; its member id. */
  advertise: string;
  heartbeatMs: number;
  /** Bound on one peer request before the next owner is tried. */
  peerTimeoutMs: number;
  /** Static mode only: the shared secret peers sign with (FERRY_CLUSTER_SECRET). */
  clusterSecret?: string;
  /** Bytes of blocks owned by other members this node may keep as local copies (--near-cache). */
  nearCacheBytes: number;
  /** Owners per block for warmed or pinned data (--replicas). */
  replicas: number;
  /** On SIGTERM, copy pinned blocks to their next owners (--handoff) within handoffDeadlineMs. */
  handoff: boolean;
  handoffDeadlineMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Raw settings by name, as they come from flags, env or the file. */
export type RawSettings = Partial<Record<SettingName, string>>;

const SETTINGS = {
  edge: { flag: "--edge", env: "FERRY_EDGE_URL" },
  "cache-dir": { flag: "--cache-dir", env: "FERRY_CACHE_DIR" },
  "cache-size": { flag: "--cache-size", env: "FERRY_CACHE_SIZE" },
  "min-free": { flag: "--min-free", env: "FERRY_MIN_FREE" },
  listen: { flag: "--listen", env: "FERRY_LISTEN" },
  mount: { flag: "--mount", env: "FERRY_MOUNT" },
  "mount-driver": { flag: "--mount-driver", env: "FERRY_MOUNT_DRIVER" },
  "mount-mode": { flag: "--mount-mode", env: "FERRY_MOUNT_MODE" },
  "passthrough-budget": { flag: "--passthrough-budget", env: "FERRY_PASSTHROUGH_BUDGET" },
  "memory-cache": { flag: "--memory-cache", env: "FERRY_MEMORY_CACHE" },
  "metadata-ttl": { flag: "--metadata-ttl", env: "FERRY_METADATA_TTL" },
  "block-size": { flag: "--block-size", env: "FERRY_BLOCK_SIZE" },
  "local-key": { flag: "--local-key", env: "FERRY_LOCAL_KEY" },
  "fill-concurrency": { flag: "--fill-concurrency", env: "FERRY_FILL_CONCURRENCY" },
  "read-ahead": { flag: "--read-ahead", env: "FERRY_READ_AHEAD" },
  "log-level": { flag: "--log-level", env: "FERRY_LOG_LEVEL" },
  cluster: { flag: "--cluster", env: "FERRY_CLUSTER" },
  peers: { flag: "--peers", env: "FERRY_PEERS" },
  "peer-listen": { flag: "--peer-listen", env: "FERRY_PEER_LISTEN" },
  "peer-advertise": { flag: "--peer-advertise", env: "FERRY_PEER_ADVERTISE" },
  heartbeat: { flag: "--heartbeat", env: "FERRY_HEARTBEAT" },
  "peer-timeout": { flag: "--peer-timeout", env: "FERRY_PEER_TIMEOUT" },
  "near-cache": { flag: "--near-cache", env: "FERRY_NEAR_CACHE" },
  replicas: { flag: "--replicas", env: "FERRY_REPLICAS" },
  handoff: { flag: "--handoff", env: "FERRY_HANDOFF" },
  "handoff-deadline": { flag: "--handoff-deadline", env: "FERRY_HANDOFF_DEADLINE" },
  "cluster-secret": { flag: "(env only)", env: "FERRY_CLUSTER_SECRET" },
  "access-key-id": { flag: "(env only)", env: "FERRY_ACCESS_KEY_ID" },
  "secret-access-key": { flag: "(env only)", env: "FERRY_SECRET_ACCESS_KEY" },
} as const;

export type SettingName = keyof typeof SETTINGS;
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

function where(name: SettingName): string {
  const s = SETTINGS[name];
  return s.flag.startsWith("--") ? `${s.flag} (or ${s.env})` : s.env;
}

/** `500GiB`, `4MiB`, `1.5TB`, `1048576` → bytes. */
export function parseBytes(text: string, name: SettingName): number {
  const bytes = parseByteSize(text);
  if (bytes === undefined) throw new ConfigError(`${where(name)} must be a size like 500GiB, 4MiB or 1TB, got "${text}"`);
  return bytes;
}

function parseInteger(text: string, name: SettingName, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new ConfigError(`${where(name)} must be a whole number from ${min} to ${max}, got "${text}"`);
  return n;
}

function parseHostPort(text: string, name: SettingName): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text.trim());
  if (!m?.[1] || Number(m[2]) > 65535) throw new ConfigError(`${where(name)} must be HOST:PORT, e.g. 10.0.0.5:8789, got "${text}"`);
  return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

function parseMillis(text: string, name: SettingName, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : 1000) : Number.NaN;
  if (!(ms >= minMs && ms <= maxMs)) throw new ConfigError(`${where(name)} must be a duration like 5s or 500ms, from ${minMs}ms to ${maxMs / 1000}s, got "${text}"`);
  return Math.round(ms);
}

/** A size, or a percentage of the cache size (`--near-cache`, `--passthrough-budget`). */
function parseShareOfCache(text: string, cacheSizeBytes: number, name: SettingName): number {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (percent) {
    if (Number(percent[1]) > 100) throw new ConfigError(`${where(name)} must be at most 100%, got "${text}"`);
    return Math.floor((cacheSizeBytes * Number(percent[1])) / 100);
  }
  const bytes = parseBytes(text, name);
  if (bytes > cacheSizeBytes) throw new ConfigError(`${where(name)} (${text}) cannot exceed the cache size`);
  return bytes;
}

/** The pool settings, or undefined when neither --cluster nor --peers is given. */

function parseSwitch(text: string | undefined, name: SettingName): boolean {
  if (text === undefined || text === "" ) return false;
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new ConfigError(`${where(name)} must be true or false, got "${text}"`);
}

function resolvePool(get: (name: SettingName) => string | undefined, cacheSizeBytes: number): PoolConfig | undefined {
  const cluster = get("cluster");
  const peersText = get("peers");
  if (!cluster && !peersText) return undefined;
  if (cluster && peersText) throw new ConfigError(`${where("cluster")} and ${where("peers")} exclude each other: membership comes from the edge or from a static list`);
  if (cluster && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(cluster)) throw new ConfigError(`${where("cluster")} must be lower-case letters, digits, ".", "_" or "-", got "${cluster}"`);
  const listenText = get("peer-listen");
  if (!listenText) throw new ConfigError(`missing ${where("peer-listen")}: the pool needs a peer listener on the cluster network, e.g. --peer-listen 10.0.0.5:8789`);
  const listen = parseHostPort(listenText, "peer-listen");
  const advertise = get("peer-advertise") ?? (listen.host === "0.0.0.0" || listen.host === "::" ? undefined : `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`);
  if (!advertise) throw new ConfigError(`${where("peer-advertise")} is needed when ${where("peer-listen")} binds every interface`);
  parseHostPort(advertise, "peer-advertise");
  const peers = peersText ? peersText.split(",").map((p) => p.trim()).filter(Boolean) : undefined;
  for (const p of peers ?? []) parseHostPort(p, "peers");
  if (peers && !peers.includes(advertise)) throw new ConfigError(`${where("peers")} must include this node's own address ${advertise}`);
  const clusterSecret = get("cluster-secret");
  if (peers && (!clusterSecret || clusterSecret.length < 16)) throw new ConfigError("FERRY_CLUSTER_SECRET (16+ characters, the same on every node) is needed with --peers");
  return {
    ...(cluster ? { cluster } : {}),
    ...(peers ? { peers } : {}),
    listen,
    advertise,
    heartbeatMs: parseMillis(get("heartbeat") ?? "3s", "heartbeat", 200, 60_000),
    peerTimeoutMs: parseMillis(get("peer-timeout") ?? "10s", "peer-timeout", 100, 120_000),
    ...(peers && clusterSecret ? { clusterSecret } : {}),
    nearCacheBytes: parseShareOfCache(get("near-cache") ?? "10%", cacheSizeBytes, "near-cache"),
    replicas: parseInteger(get("replicas") ?? "1", "replicas", 1, 8),
    handoff: parseSwitch(get("handoff"), "handoff"),
    handoffDeadlineMs: parseMillis(get("handoff-deadline") ?? "30s", "handoff-deadline", 100, 600_000),
  };
}

function parseKeyPair(text: string, name: SettingName): { accessKeyId: string; secretAccessKey: string } {
  const colon = text.indexOf(":");
  if (colon < 1 || colon === text.length - 1) throw new ConfigError(`${where(name)} must be ACCESS_KEY_ID:SECRET`);
  return { accessKeyId: text.slice(0, colon), secretAccessKey: text.slice(colon + 1) };
}

/** Merges sources (flags first) and validates. */
export function resolveConfig(sources: { flags: RawSettings; env: NodeJS.ProcessEnv; file: RawSettings }): Readonly<AgentConfig> {
  const get = (name: SettingName): string | undefined => sources.flags[name] ?? sources.env[SETTINGS[name].env] ?? sources.file[name];
  const required = (name: SettingName): string => {
    const value = get(name);
    if (value === undefined || value === "") throw new ConfigError(`missing ${where(name)}${name === "access-key-id" || name === "secret-access-key" ? " (the node's key: `ferry keys create --grant read,list:BUCKET`)" : ""}`);
    return value;
  };
  let edge: URL;
  try {
    edge = new URL(required("edge"));
    if (edge.protocol !== "http:" && edge.protocol !== "https:") throw new TypeError("scheme");
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${where("edge")} must be an http(s) URL, got "${get("edge") ?? ""}"`);
  }
  const listenText = get("listen") ?? "127.0.0.1:8788";
  const listen = /^(.*):(\d{1,5})$/.exec(listenText);
  if (!listen?.[1] || Number(listen[2]) > 65535) throw new ConfigError(`${where("listen")} must be HOST:PORT, e.g. 127.0.0.1:8788, got "${listenText}"`);
  const minFreeText = get("min-free") ?? "5%";
  const minFree = /^(\d+(?:\.\d+)?)%$/.exec(minFreeText.trim());
  if (!minFree || Number(minFree[1]) > 90) throw new ConfigError(`${where("min-free")} must be a percentage from 0% to 90%, got "${minFreeText}"`);
  const ttlText = get("metadata-ttl") ?? "60";
  const ttl = ttlText === "indefinite" ? "indefinite" : Number(ttlText.replace(/s$/, ""));
  if (ttl !== "indefinite" && (!Number.isFinite(ttl) || ttl < 0)) throw new ConfigError(`${where("metadata-ttl")} must be seconds (e.g. 60) or "indefinite", got "${ttlText}"`);
  const blockSizeBytes = parseBytes(get("block-size") ?? "4MiB", "block-size");
  if (blockSizeBytes < 64 * 1024 || blockSizeBytes > 64 * 2 ** 20) throw new ConfigError(`${where("block-size")} must be between 64KiB and 64MiB`);
  const logLevel = get("log-level") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new ConfigError(`${where("log-level")} must be debug, info, warn or error`);
  const localKey = get("local-key");
  const mount = get("mount");
  const mountDriver = get("mount-driver") ?? "auto";
  if (!["auto", "kernel", "libfuse"].includes(mountDriver)) throw new ConfigError(`${where("mount-driver")} must be auto, kernel or libfuse, got "${mountDriver}"`);
  const mountMode = get("mount-mode") ?? "passthrough";
  if (!["passthrough", "page-cache"].includes(mountMode)) throw new ConfigError(`${where("mount-mode")} must be passthrough or page-cache, got "${mountMode}"`);
  // The kernel would keep a changed object's old pages: nothing asks the agent at open.
  if (mountMode === "page-cache" && ttl !== "indefinite") throw new ConfigError(`${where("mount-mode")} page-cache needs ${where("metadata-ttl")} indefinite: the kernel keeps files' pages without asking the agent, so the objects must never change`);
  const cacheSizeBytes = parseBytes(get("cache-size") ?? "500GiB", "cache-size");
  const pool = resolvePool(get, cacheSizeBytes);
  return Object.freeze({
    edge,
    credentials: { accessKeyId: required("access-key-id"), secretAccessKey: required("secret-access-key") },
    cacheDir: required("cache-dir"),
    cacheSizeBytes,
    minFreeRatio: Number(minFree[1]) / 100,
    listen: { host: listen[1].replace(/^\[(.*)\]$/, "$1"), port: Number(listen[2]) },
    ...(mount ? { mount } : {}),
    mountDriver: mountDriver as AgentConfig["mountDriver"],
    mountMode: mountMode as AgentConfig["mountMode"],
    passthroughBudgetBytes: parseShareOfCache(get("passthrough-budget") ?? "10%", cacheSizeBytes, "passthrough-budget"),
    memoryCacheBytes: parseBytes(get("memory-cache") ?? "256MiB", "memory-cache"),
    metadataTtl: ttl,
    blockSizeBytes,
    ...(localKey ? { localKey: parseKeyPair(localKey, "local-key") } : {}),
    fillConcurrency: parseInteger(get("fill-concurrency") ?? "16", "fill-concurrency", 1, 256),
    readAheadBlocks: parseInteger(get("read-ahead") ?? "2", "read-ahead", 0, 64),
    logLevel: logLevel as AgentConfig["logLevel"],
    ...(pool ? { pool } : {}),
  });
}

/** The effective configuration for the start-up log line, secrets redacted. */
export function describeConfig(config: AgentConfig): Record<string, unknown> {
  return {
    edge: config.edge.origin,
    accessKeyId: config.credentials.accessKeyId,
    cacheDir: config.cacheDir,
    cacheSizeBytes: config.cacheSizeBytes,
    minFreeRatio: config.minFreeRatio,
    listen: `${config.listen.host}:${config.listen.port}`,
    mount: config.mount ?? null,
    mountDriver: config.mountDriver,
    mountMode: config.mountMode,
    passthroughBudgetBytes: config.passthroughBudgetBytes,
    memoryCacheBytes: config.memoryCacheBytes,
    metadataTtl: config.metadataTtl,
    blockSizeBytes: config.blockSizeBytes,
    localKey: config.localKey ? `${config.localKey.accessKeyId}:[redacted]` : null,
    fillConcurrency: config.fillConcurrency,
    readAheadBlocks: config.readAheadBlocks,
    pool: config.pool ? { ...config.pool, clusterSecret: config.pool.clusterSecret ? "[redacted]" : undefined } : null,
  };
}
