// Talking to a running agent's admin routes (/_ferry/…): where it is, and JSON calls with
// one-line errors.
import { CliError } from "./cli-error.ts";

export { formatBytes } from "../common/units.ts";

export const DEFAULT_AGENT_URL = "http://127.0.0.1:8788";

export function agentUrl(flag: string | undefined): URL {
  const raw = flag ?? process.env["FERRY_AGENT_URL"] ?? DEFAULT_AGENT_URL;
  try {
    return new URL(raw);
  } catch {
    throw new CliError(`--agent (or FERRY_AGENT_URL) is not a URL: ${raw}`, { exitCode: 2 });
  }
}

export async function agentJson(base: URL, path: string, init: RequestInit = {}): Promise<unknown> {
  const url = new URL(path, base);
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new CliError(`cannot reach the agent at ${url.origin} (${reason}); is \`ferry agent\` running? (--agent URL)`);
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = (body as { error?: { message?: string } } | undefined)?.error;
    throw new CliError(`agent refused ${path}: ${response.status} ${error?.message ?? ""}`.trim());
  }
  return body;
}
