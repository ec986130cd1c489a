// ArrivingBytes: parts of a range are readable as soon as they have arrived, in any order of
// asking; a failure reaches every reader still waiting; more bytes than the range holds is an
// error, never a silent overwrite.
import { expect, test } from "vitest";
import { ArrivingBytes } from "./arriving-bytes.ts";

const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

test("a slice resolves once its bytes are in, before the rest arrive", async () => {
  const arriving = new ArrivingBytes(1000);
  const late = arriving.slice(500, 1000);
  const early = arriving.slice(0, 100);
  let lateDone = false;
  void late.then(() => (lateDone = true));
  arriving.push(bytes(300));
  expect([...(await early)]).toEqual([...bytes(100)]);
  expect(lateDone).toBe(false);
  expect(arriving.arrived).toBe(300);
  // next(): what has arrived from a position on, at least one byte.
  expect((await arriving.next(250)).length).toBe(50);
  arriving.push(bytes(700, 300));
  expect([...(await late)]).toEqual([...bytes(500, 500)]);
  expect([...(await arriving.done)]).toEqual([...bytes(1000)]);
});

test("a failure reaches every waiting reader and done, but not reads of bytes already in", async () => {
  const arriving = new ArrivingBytes(100);
  arriving.push(bytes(40));
  const waiting = arriving.slice(0, 80);
  arriving.fail(new Error("connection reset"));
  await expect(waiting).rejects.toThrow("connection reset");
  await expect(arriving.done).rejects.toThrow("connection reset");
  expect((await arriving.slice(0, 40)).length).toBe(40);
  await expect(arriving.slice(0, 41)).rejects.toThrow("connection reset");
});

test("more bytes than the range holds fail it; asking outside the range is an error", async () => {
  const arriving = new ArrivingBytes(10);
  arriving.push(bytes(8));
  arriving.push(bytes(8));
  await expect(arriving.done).rejects.toThrow(/more than the 10 bytes/);
  await expect(arriving.slice(5, 11)).rejects.toThrow(RangeError);
});

test("from(): an origin that cannot stream delivers all at once, and a short answer fails", async () => {
  expect((await ArrivingBytes.from(3, Promise.resolve(bytes(3))).done).length).toBe(3);
  await expect(ArrivingBytes.from(4, Promise.resolve(bytes(3))).done).rejects.toThrow(/expected 4 bytes, got 3/);
});
