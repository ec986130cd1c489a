// `ferry` command dispatch: picks the subcommand, runs it, and turns errors into a
// one-line message and a non-zero exit. Subcommands are loaded lazily so that
// `ferry sample` does not pay for the AWS SDK.
import { CliError, UsageError } from "./cli-error.ts";

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

const commands: Record<string, Command> = {
  keys: { summary: "create, list and revoke edge keys", load: () => import("./keys.ts") },
  share: { summary: "print a presigned URL for an object", load: () => import("./share.ts") },
  sample: { summary: "write a synthetic dataset (HDF5 trajectories, MLPerf shapes)", load: () => import("./sample.ts") },
  replicate: { summary: "copy a dataset from GCS, S3 or a folder into R2, verified", load: () => import("./replicate.ts") },
  agent: { summary: "run the node agent (NVMe cache, local S3 endpoint, POSIX view)", load: () => import("./agent.ts") },
  warm: { summary: "load a prefix into the agent's cache (optionally pinned)", load: () => import("./warm.ts") },
  status: { summary: "show the agent's cache, hit ratio and warm jobs", load: () => import("./status.ts") },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ["usage: ferry <command> [options]", "", "commands:", ...lines, "", "Run `ferry <command> --help` for a command's options."].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage() + "\n");
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command: ${name} (run \`ferry --help\`)`);
  const module = await command.load();
  await module.run(rest);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof CliError) {
    process.stderr.write(`ferry: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`ferry: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`ferry: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
