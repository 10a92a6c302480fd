/**
 * The generated data sets of groups 12 and 13 (harness/testdata.ts): Autobahn's
 * sizes and kinds, the same bytes on every run, valid UTF-8 in every slice a
 * text case sends, and compressibility ordered as Autobahn's files are.
 *
 *   deno test tests/testdata_test.ts
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { deflateRawSync } from "node:zlib";
import {
  TEST_DATA_NAMES,
  TEST_DATA_SETS,
  testData,
  type TestDataName,
  testDataSlice,
} from "../harness/testdata.ts";
import type { MessageSeries } from "../harness/case.ts";
import { ALL_CASES } from "../fixtures/mod.ts";

const text = new TextDecoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

Deno.test("test data: Autobahn's five sets, in its subgroup order, kinds and byte sizes", () => {
  assert.deepEqual(TEST_DATA_NAMES, ["json", "bitmap", "faust", "html", "pdf"]);
  const sizes = Object.fromEntries(TEST_DATA_NAMES.map((n) => [n, testData(n).length]));
  // Autobahn's reports: 12.1 JSON (utf8, 194056 bytes), 12.2 bitmap (binary, 263222),
  // 12.3 Faust (binary, 222218), 12.4 HTML (utf8, 263527), 12.5 PDF (binary, 1042328).
  assert.deepEqual(sizes, {
    json: 194056,
    bitmap: 263222,
    faust: 222218,
    html: 263527,
    pdf: 1042328,
  });
  const binary = TEST_DATA_NAMES.filter((n) => TEST_DATA_SETS[n].binary);
  assert.deepEqual(binary, ["bitmap", "faust", "pdf"]);

  const json = testData("json");
  assert.equal(typeof JSON.parse(text.decode(json)), "object");
  const html = text.decode(testData("html"));
  assert.ok(html.startsWith("<!DOCTYPE html>") && html.endsWith("</html>\n"));
  const pdf = testData("pdf");
  assert.ok(
    text.decode(pdf.subarray(0, 8)) === "%PDF-1.4" && text.decode(pdf.subarray(-6)) === "%%EOF\n",
  );

  // A BMP file header and BITMAPINFOHEADER: 512x512, 8 bits, a 256-entry gray palette.
  const bmp = testData("bitmap");
  const view = new DataView(bmp.buffer, bmp.byteOffset);
  assert.equal(text.decode(bmp.subarray(0, 2)), "BM");
  assert.equal(view.getUint32(2, true), bmp.length);
  assert.equal(view.getUint32(10, true), 14 + 40 + 256 * 4);
  assert.deepEqual([view.getInt32(18, true), view.getInt32(22, true)], [512, 512]);
  assert.equal(view.getUint16(28, true), 8);
  assert.equal(bmp.length - view.getUint32(10, true), 512 * 512);
  assert.deepEqual([...bmp.subarray(54 + 200 * 4, 54 + 201 * 4)], [200, 200, 200, 0]);

  // German prose with its umlauts: valid UTF-8 as a whole, multi-byte characters in it.
  const faust = strictUtf8.decode(testData("faust"));
  for (const letter of ["ä", "ö", "ü", "ß", "Ä", "Ö", "Ü"]) {
    assert.ok(faust.includes(letter), letter);
  }
});

/** SHA-256 of each set, pinned: a change to a generator changes what every case sends. */
const PINNED_DIGESTS: Record<TestDataName, string> = {
  json: "9cff819c55ae99e516f67afd3ce76a9a90e483b4c84c6e8109877ec2ab7cf254",
  bitmap: "57b7a27c8905da8dc4ff6857ad1b9e1db401ed8e55d1750bf1cae0045d17376c",
  faust: "3583882f84040248425d541a13e1353885d3a6d19cceb6dc070ef9b20ba5a718",
  html: "09f9f183fcdc3e575035ddea63c591266c915383bc15f50b1b02b1476c5c2584",
  pdf: "a9b3bac9bb261fa65d756404058941db572e6c364250ee5ae45886081d4862bf",
};

Deno.test("test data: the same bytes on every run, each set built once", async () => {
  const digests = Object.fromEntries(
    await Promise.all(TEST_DATA_NAMES.map(async (name) => {
      assert.equal(testData(name), testData(name), `${name} is cached`);
      const hash = await crypto.subtle.digest("SHA-256", testData(name));
      return [name, new Uint8Array(hash).toHex()];
    })),
  );
  assert.deepEqual(digests, PINNED_DIGESTS);
});

Deno.test("testDataSlice: a view where the slice fits, Autobahn's wrap-around where it does not", () => {
  const data = testData("json");
  const inside = testDataSlice("json", 1000, 64);
  assert.equal(inside.buffer, data.buffer, "a view, not a copy");
  assert.deepEqual(inside, data.slice(1000, 1064));
  // From 10 bytes before the end: those 10, then the first 54 (Autobahn's sendOne).
  const wrapped = testDataSlice("json", data.length - 10, 64);
  assert.deepEqual(wrapped, new Uint8Array([...data.slice(-10), ...data.slice(0, 54)]));
  // Offsets past the end count from the start again.
  assert.deepEqual(testDataSlice("json", 3 * data.length + 5, 16), data.slice(5, 21));
});

/** The messages of a series as Autobahn's sendOne cuts them, written out independently. */
function autobahnSlices({ data, size, count }: MessageSeries): Uint8Array[] {
  const file = testData(data);
  const out: Uint8Array[] = [];
  let pointer = 0;
  for (let i = 0; i < count; i++) {
    const to = (pointer + size) % file.length;
    out.push(
      to > pointer
        ? file.slice(pointer, to)
        : Buffer.concat([file.slice(pointer), file.slice(0, to)]),
    );
    pointer = to;
  }
  return out;
}

/** Every series the catalog's cases send. */
function catalogSeries(): MessageSeries[] {
  return ALL_CASES.flatMap((c) =>
    c.steps.flatMap((s) => s.kind === "messageRoundTrips" ? [s.messageRoundTrips] : [])
  );
}

/** The distinct (data, size, count) among series: 13.x repeats 12.1's. */
function distinct(series: MessageSeries[]): MessageSeries[] {
  const seen = new Map<string, MessageSeries>();
  for (const s of series) seen.set(`${s.data} ${s.size} ${s.count} ${s.binary}`, s);
  return [...seen.values()];
}

/** The messages of `series` that are not valid UTF-8, by index. */
function invalidUtf8(series: MessageSeries): number[] {
  return autobahnSlices(series).flatMap((bytes, i) => {
    try {
      strictUtf8.decode(bytes);
      return [];
    } catch {
      return [i];
    }
  });
}

Deno.test("test data: every text message a case sends is valid UTF-8, wherever its slice falls", () => {
  const textSeries = distinct(catalogSeries().filter((s) => !s.binary));
  assert.deepEqual([...new Set(textSeries.map((s) => s.data))].sort(), ["html", "json"]);
  for (const series of textSeries) {
    assert.deepEqual(invalidUtf8(series), [], `${series.data}, ${series.size} bytes`);
  }
  // The check finds a split character: the German prose, cut the same way, splits some
  // (Autobahn sends it as binary, as these cases do).
  const prose = distinct(catalogSeries().filter((s) => s.data === "faust"));
  assert.ok(prose.every((s) => s.binary));
  assert.ok(prose.some((s) => invalidUtf8({ ...s, binary: false }).length > 0));
});

Deno.test("test data: the text sets compress well, the bitmap moderately, the PDF hardly", () => {
  const ratio = (name: TestDataName) =>
    deflateRawSync(testData(name)).length / testData(name).length;
  const ratios = Object.fromEntries(TEST_DATA_NAMES.map((n) => [n, ratio(n)]));
  for (const name of ["json", "html", "faust"] as const) assert.ok(ratios[name] < 0.4, name);
  assert.ok(ratios.bitmap > 0.5 && ratios.bitmap < 0.9, `bitmap ${ratios.bitmap}`);
  assert.ok(ratios.pdf > 0.9, `pdf ${ratios.pdf}`);
  assert.ok(Math.max(ratios.json, ratios.html, ratios.faust) < ratios.bitmap);
  assert.ok(ratios.bitmap < ratios.pdf);
});
