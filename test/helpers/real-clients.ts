// Real S3 clients against a test edge: child processes (aws CLI, boto3, rclone, curl, the
// ferry CLI) with a clean environment that never reads the developer's ~/.aws or rclone
// config, plus an AWS SDK v3 client and small helpers to compare bytes and trees.
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import type { TestKey } from "./local-edge.ts";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed. */
  input?: string;
}

/** Runs a command to completion; never throws for a non-zero exit (callers assert on it). */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Like `run`, but a non-zero exit is an error that shows the command's output. */
export async function runOk(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.code}\nstdout: ${result.stdout.slice(-4000)}\nstderr: ${result.stderr.slice(-4000)}`);
  }
  return result;
}

/**
 * The environment for a client process: the caller's PATH and locale, no AWS_* or RCLONE_*
 * settings from outside (AWS_CA_BUNDLE makes rclone refuse plain-HTTP endpoints), config
 * files pointed at /dev/null, credentials from `key`.
 */
export function clientEnv(key: TestKey | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(AWS_|RCLONE_|FERRY_|BOTO_)/.test(name)) continue;
    env[name] = value;
  }
  Object.assign(env, {
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_DEFAULT_REGION: "auto",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
    RCLONE_CONFIG: "/dev/null",
    ...(key ? { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey } : {}),
    ...extra,
  });
  return env;
}

/** Debian's aws CLI v2 (the one a fresh Debian/Ubuntu host has). */
export const AWS_CLI_V2 = "/usr/bin/aws";
/** Debian's Python, which has python3-boto3; independent of any pyenv on PATH. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** How to run aws CLI v1 here, or undefined when it is not installed (common on CI hosts). */
export async function findAwsCliV1(): Promise<{ command: string; prefix: string[] } | undefined> {
  const candidates: Array<{ command: string; prefix: string[] }> = [
    { command: "python3", prefix: ["-m", "awscli"] },
    { command: "aws", prefix: [] },
  ];
  for (const candidate of candidates) {
    try {
      const result = await run(candidate.command, [...candidate.prefix, "--version"], { env: clientEnv(undefined), timeoutMs: 30_000 });
      if (result.code === 0 && /aws-cli\/1\./.test(result.stdout + result.stderr)) return candidate;
    } catch {
      // Not on PATH: try the next one.
    }
  }
  return undefined;
}

/** rclone flags for an S3 remote at the edge; credentials travel in the environment. */
export function rcloneFlags(edgeUrl: string): string[] {
  return ["--config", "/dev/null", "--s3-provider", "Other", "--s3-endpoint", edgeUrl, "--s3-region", "auto", "--s3-force-path-style=true", "--retries", "1", "--low-level-retries", "2"];
}

export function rcloneEnv(key: TestKey): NodeJS.ProcessEnv {
  return clientEnv(undefined, { RCLONE_S3_ACCESS_KEY_ID: key.accessKeyId, RCLONE_S3_SECRET_ACCESS_KEY: key.secretAccessKey });
}

/** The `ferry` CLI as a user runs it from the checkout. */
export function ferry(args: string[], env: Record<string, string>): Promise<RunResult> {
  return run(process.execPath, [join(projectRoot, "bin", "ferry.js"), ...args], { env: clientEnv(undefined, env) });
}

export function s3Client(edgeUrl: string, key: TestKey): S3Client {
  return new S3Client({ endpoint: edgeUrl, region: "auto", forcePathStyle: true, credentials: key, maxAttempts: 1 });
}

/** The S3 error a failed SDK call carries: code (the error's name) and HTTP status. */
export async function failure(call: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await call;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    return { code: e.name ?? "", status: e.$metadata?.httpStatusCode };
  }
  throw new Error("expected the S3 call to fail, and it succeeded");
}

export async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
}

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

/** Relative path → sha256 of every file under `dir`. */
export function treeDigest(dir: string): Record<string, string> {
  const digest: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else digest[relative(dir, path)] = sha256File(path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return digest;
}

/** Writes files (relative path → contents) under `root`, creating folders. */
export function writeTree(root: string, files: Record<string, Uint8Array | string>): void {
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
  }
}

/** The <Code> of an S3 error document, or undefined. */
export function s3ErrorCode(xml: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
}

/** curl GET: status and body; the body is written to `outFile` when given. */
export async function curlGet(url: string, outFile: string): Promise<{ status: number; body: Buffer }> {
  const result = await runOk("curl", ["-sS", "-o", outFile, "-w", "%{http_code}", url]);
  return { status: Number(result.stdout.trim()), body: readFileSync(outFile) };
}

/** curl -T: uploads a file with PUT to a (presigned) URL. */
export async function curlPut(url: string, file: string): Promise<{ status: number; body: string }> {
  const result = await runOk("curl", ["-sS", "-T", file, "-o", "-", "-w", "\n%{http_code}", url]);
  const lines = result.stdout.trimEnd().split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}
