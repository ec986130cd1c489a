// The single byte range S3 serves. A header S3 would ignore (bad syntax, several ranges)
// means "whole object"; a range that starts past the end is unsatisfiable (416 InvalidRange).
import { S3Error } from "./errors.ts";

export interface ByteRange {
  offset: number;
  length: number;
}

export type RangeRequest =
  | { kind: "first"; first: number; last?: number }
  | { kind: "suffix"; length: number };

/** Parses `bytes=a-b`, `bytes=a-` or `bytes=-n`; undefined when the header is to be ignored. */
export function parseRangeHeader(header: string | null | undefined): RangeRequest | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, first = "", last = ""] = m;
  if (first === "" && last === "") return undefined;
  if (first === "") return { kind: "suffix", length: Number(last) };
  const start = Number(first);
  if (last === "") return { kind: "first", first: start };
  const end = Number(last);
  if (end < start) return undefined;
  return { kind: "first", first: start, last: end };
}

/** The bytes to send for a range against an object of `size` bytes; throws InvalidRange. */
export function resolveRange(range: RangeRequest, size: number): ByteRange {
  if (range.kind === "suffix") {
    if (range.length === 0 || size === 0) throw invalidRange(size);
    const length = Math.min(range.length, size);
    return { offset: size - length, length };
  }
  if (range.first >= size) throw invalidRange(size);
  const last = Math.min(range.last ?? size - 1, size - 1);
  return { offset: range.first, length: last - range.first + 1 };
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`;
}

function invalidRange(size: number): S3Error {
  return new S3Error("InvalidRange", "The requested range is not satisfiable", { details: { ActualObjectSize: size } });
}
