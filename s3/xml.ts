// S3's XML: a tiny renderer for responses (escaping is the only hard part) and strict
// parsers for the two request documents S3 takes (CompleteMultipartUpload and Delete).
// A request document that is not well-formed, or not of the expected shape, is MalformedXML.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { S3Error } from "./errors.ts";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** Markup rendered elsewhere, placed as it is (its element names are its own). */
export class RawXml {
  readonly xml: string;
  constructor(xml: string) {
    this.xml = xml;
  }
}

/** A node to render: element name → text, number, boolean, child node, ready markup, or a list of them. */
export type XmlValue = string | number | boolean | undefined | RawXml | XmlNode | XmlValue[];
export interface XmlNode {
  [element: string]: XmlValue;
}

const NEEDS_ESCAPE = /[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

export function escapeXml(text: string): string {
  // Most keys need nothing: one test instead of a replace that allocates.
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => {
    switch (c) {
      case "&": return "&amp;";
      case "<": return "&lt;";
      case ">": return "&gt;";
      case '"': return "&quot;";
      case "'": return "&apos;";
      // XML 1.0 cannot carry these at all; S3 escapes them the same way in keys.
      default: return `&#x${c.charCodeAt(0).toString(16)};`;
    }
  });
}

function renderValue(name: string, value: XmlValue): string {
  if (value === undefined) return "";
  if (Array.isArray(value)) return value.map((item) => renderValue(name, item)).join("");
  if (value instanceof RawXml) return value.xml;
  if (typeof value === "object") return `<${name}>${renderChildren(value)}</${name}>`;
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function renderChildren(node: XmlNode): string {
  return Object.entries(node).map(([name, value]) => renderValue(name, value)).join("");
}

/** A full S3 response document with the S3 namespace on its root. */
export function renderXmlDocument(root: string, body: XmlNode, options: { namespace?: boolean } = {}): string {
  const ns = options.namespace === false ? "" : ` xmlns="${S3_XMLNS}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns}>${renderChildren(body)}</${root}>`;
}

export function renderErrorDocument(error: { code: string; message: string; details?: Record<string, string | number | undefined> }, requestId: string): string {
  return renderXmlDocument(
    "Error",
    { Code: error.code, Message: error.message, ...(error.details ?? {}), RequestId: requestId },
    { namespace: false },
  );
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  // Keys may start or end with spaces; only numbers and ETags are trimmed, by hand.
  trimValues: false,
  processEntities: true,
  // Go's encoding/xml (rclone, the Go SDKs) writes quotes in ETags as &#34;.
  htmlEntities: true,
  isArray: (name) => name === "Part" || name === "Object",
});

function parseDocument(text: string, root: string): Record<string, unknown> {
  if (text.trim() === "" || XMLValidator.validate(text) !== true) {
    throw new S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
  }
  const parsed: unknown = parser.parse(text);
  const body = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>)[root] : undefined;
  if (typeof body !== "object" || body === null) {
    throw new S3Error("MalformedXML", `The XML you provided was not well-formed or did not validate against our published schema: expected <${root}>`);
  }
  return body as Record<string, unknown>;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  /** x-amz-checksum-* values the client listed for the part, keyed by algorithm (e.g. CRC32). */
  checksums: Record<string, string>;
}

export function parseCompleteMultipartUpload(xml: string): CompletedPart[] {
  const body = parseDocument(xml, "CompleteMultipartUpload");
  const parts = body["Part"];
  if (!Array.isArray(parts) || parts.length === 0) {
    throw new S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: no Part");
  }
  return parts.map((part: unknown) => {
    const fields = (typeof part === "object" && part !== null ? part : {}) as Record<string, unknown>;
    const partNumber = Number(text(fields["PartNumber"])?.trim());
    const etag = text(fields["ETag"])?.trim();
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000 || etag === undefined) {
      throw new S3Error("MalformedXML", "every Part needs a PartNumber from 1 to 10000 and an ETag");
    }
    const checksums: Record<string, string> = {};
    for (const [name, value] of Object.entries(fields)) {
      const checksum = text(value)?.trim();
      if (name.startsWith("Checksum") && checksum) checksums[name.slice("Checksum".length).toUpperCase()] = checksum;
    }
    return { partNumber, etag, checksums };
  });
}

export interface DeleteRequest {
  quiet: boolean;
  keys: string[];
}

/** S3 takes at most 1000 keys per DeleteObjects. */
export const MAX_DELETE_KEYS = 1000;

export function parseDeleteObjects(xml: string): DeleteRequest {
  const body = parseDocument(xml, "Delete");
  const objects = body["Object"];
  if (!Array.isArray(objects) || objects.length === 0 || objects.length > MAX_DELETE_KEYS) {
    throw new S3Error("MalformedXML", `Delete must list 1 to ${MAX_DELETE_KEYS} Object elements`);
  }
  const keys = objects.map((object: unknown) => {
    const key = text(typeof object === "object" && object !== null ? (object as Record<string, unknown>)["Key"] : undefined);
    if (key === undefined || key === "") throw new S3Error("MalformedXML", "every Object in Delete needs a Key");
    return key;
  });
  return { quiet: text(body["Quiet"])?.trim().toLowerCase() === "true", keys };
}
