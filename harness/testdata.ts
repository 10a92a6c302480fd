/**
 * The data sets of Autobahn's compression groups (12 and 13), generated.
 * Autobahn sends slices of five files: a JSON document, a 512x512 grayscale
 * bitmap, Goethe's Faust as German prose, an HTML page and a PDF. These are
 * stand-ins of the same kinds and byte sizes, built from a seeded PRNG (pure,
 * deterministic, each built once), so they compress about as the files do:
 * the text sets well, the bitmap moderately, the PDF's binary streams not at all.
 *
 * The sets sent as text are ASCII, so every slice a case cuts, wherever it
 * starts and ends, is valid UTF-8. The prose is sent as binary, as Autobahn
 * sends its Faust, and keeps its umlauts.
 */

/** A data set, by what it stands for. */
export type TestDataName = "json" | "bitmap" | "faust" | "html" | "pdf";

export interface TestDataSet {
  /** What the set is, for titles. */
  title: string;
  /** Sent in binary messages; else in text messages. */
  binary: boolean;
  /** Bytes: those of Autobahn's file (its reports' subgroup titles give them). */
  size: number;
}

/** The sets, in the order of Autobahn's subgroups 12.1-12.5. */
export const TEST_DATA_SETS: Readonly<Record<TestDataName, TestDataSet>> = {
  json: { title: "a large JSON document", binary: false, size: 194056 },
  bitmap: { title: "a 512x512 8-bit grayscale bitmap", binary: true, size: 263222 },
  faust: { title: "German verse drama with umlauts", binary: true, size: 222218 },
  html: { title: "a large HTML page", binary: false, size: 263527 },
  pdf: { title: "a PDF mixing text and compressed streams", binary: true, size: 1042328 },
};

/** The sets' names, in Autobahn's subgroup order. */
export const TEST_DATA_NAMES = Object.keys(TEST_DATA_SETS) as readonly TestDataName[];

/** Each set once built; callers must not write to it (slices are views). */
const built = new Map<TestDataName, Uint8Array<ArrayBuffer>>();

/** The bytes of a data set, built on first use. */
export function testData(name: TestDataName): Uint8Array<ArrayBuffer> {
  let bytes = built.get(name);
  if (!bytes) {
    bytes = GENERATORS[name](TEST_DATA_SETS[name].size);
    built.set(name, bytes);
  }
  return bytes;
}

/**
 * `length` bytes of a data set from `offset`, wrapping around its end (as
 * Autobahn's sendOne slices its file): a view where it does not wrap.
 */
export function testDataSlice(
  name: TestDataName,
  offset: number,
  length: number,
): Uint8Array<ArrayBuffer> {
  const data = testData(name);
  const start = offset % data.length;
  if (start + length <= data.length) return data.subarray(start, start + length);
  const out = new Uint8Array(length);
  for (let filled = 0, at = start; filled < length; at = 0) {
    const piece = data.subarray(at, at + Math.min(data.length - at, length - filled));
    out.set(piece, filled);
    filled += piece.length;
  }
  return out;
}

const GENERATORS: Record<TestDataName, (size: number) => Uint8Array<ArrayBuffer>> = {
  json: jsonDocument,
  bitmap: grayscaleBitmap,
  faust: germanVerse,
  html: htmlPage,
  pdf: pdfFile,
};

// ---- building blocks ------------------------------------------------------

/** mulberry32: a small PRNG with a fixed seed, so each set is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** One of `items`, the first ones likelier (about as word frequencies fall off). */
function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * random() * items.length)];
}

const int = (random: () => number, below: number) => Math.floor(random() * below);

const encoder = new TextEncoder();

/**
 * Exactly `size` bytes: `head`, then pieces while they fit before `tail`, the
 * rest filled with `pad`, then `tail`. `piece` gets the room left and may
 * return undefined to stop.
 */
function assemble(
  size: number,
  head: string,
  tail: string,
  piece: (room: number) => Uint8Array | string | undefined,
  pad = 0x20,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  const headBytes = encoder.encode(head), tailBytes = encoder.encode(tail);
  out.set(headBytes);
  let at = headBytes.length;
  const end = size - tailBytes.length;
  for (;;) {
    const next = piece(end - at);
    if (next === undefined) break;
    const bytes = typeof next === "string" ? encoder.encode(next) : next;
    if (bytes.length > end - at) break;
    out.set(bytes, at);
    at += bytes.length;
  }
  out.fill(pad, at, end);
  out.set(tailBytes, end);
  return out;
}

// ---- the sets -------------------------------------------------------------

const AGENTS = ["AutobahnPython/0.6.0", "Chrome/29.0", "Firefox/24.0", "ws/8.23.0", "Deno/2.9.6"];
const VERDICTS = ["OK", "OK", "OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"];

/** A test report's index as JSON: one record per case and agent, indented. */
function jsonDocument(size: number): Uint8Array<ArrayBuffer> {
  const random = seeded(0x4a534f4e);
  let n = 0;
  return assemble(size, '{\n  "generator": "wsconform",\n  "results": [', "\n  ]\n}\n", () => {
    const id = `${1 + int(random, 13)}.${1 + int(random, 9)}.${1 + int(random, 18)}`;
    const agent = pick(random, AGENTS);
    const file = `${agent.split("/")[0].toLowerCase()}_case_${id.replaceAll(".", "_")}.json`;
    const record = [
      `"id": "${id}"`,
      `"agent": "${agent}"`,
      `"behavior": "${pick(random, VERDICTS)}"`,
      `"behaviorClose": "${pick(random, VERDICTS)}"`,
      `"duration": ${int(random, 2000)}`,
      `"remoteCloseCode": ${pick(random, [1000, 1000, 1002, 1007, null])}`,
      `"compressionRatio": ${(random() * 0.9 + 0.05).toFixed(4)}`,
      `"reportfile": "${file}"`,
    ].map((field) => `\n      ${field}`).join(",");
    return `${n++ === 0 ? "" : ","}\n    {${record}\n    }`;
  });
}

/** A BMP of 512x512 pixels, 8 bits each, gray palette: smooth shapes with sensor noise. */
function grayscaleBitmap(size: number): Uint8Array<ArrayBuffer> {
  const random = seeded(0x424d5000);
  const width = 512, height = 512, paletteBytes = 256 * 4, headerBytes = 14 + 40;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(encoder.encode("BM"));
  view.setUint32(2, size, true);
  view.setUint32(10, headerBytes + paletteBytes, true);
  view.setUint32(14, 40, true); // BITMAPINFOHEADER
  view.setInt32(18, width, true);
  view.setInt32(22, height, true);
  view.setUint16(26, 1, true); // planes
  view.setUint16(28, 8, true); // bits per pixel
  view.setUint32(34, width * height, true);
  view.setUint32(38, 2835, true); // 72 dpi
  view.setUint32(42, 2835, true);
  view.setUint32(46, 256, true);
  for (let level = 0; level < 256; level++) {
    out.fill(level, headerBytes + level * 4, headerBytes + level * 4 + 3);
  }
  // Value noise at two scales, bilinearly interpolated: a photo's smooth regions and edges.
  const octaves = [{ cell: 64, amplitude: 150 }, { cell: 16, amplitude: 60 }].map((o) => {
    const side = width / o.cell + 1;
    return { ...o, side, lattice: Float64Array.from({ length: side * side }, random) };
  });
  let at = headerBytes + paletteBytes;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let value = 20;
      for (const { cell, amplitude, side, lattice } of octaves) {
        const gx = Math.floor(x / cell), gy = Math.floor(y / cell);
        const fx = (x % cell) / cell, fy = (y % cell) / cell;
        const corner = (dx: number, dy: number) => lattice[(gy + dy) * side + gx + dx];
        const top = corner(0, 0) * (1 - fx) + corner(1, 0) * fx;
        const bottom = corner(0, 1) * (1 - fx) + corner(1, 1) * fx;
        value += amplitude * (top * (1 - fy) + bottom * fy);
      }
      value += (random() - 0.5) * 10;
      out[at++] = Math.max(0, Math.min(255, Math.round(value)));
    }
  }
  return out;
}

const SPEAKERS = ["FAUST", "MEPHISTOPHELES", "WAGNER", "MARGARETE", "MARTHE", "CHOR", "SCHÜLER"];
/** Common words first: pick() favours them. */
const GERMAN_WORDS = (
  "und der die das ich du nicht ist mit so wie mein dein ein zu in was auf es sich doch noch " +
  "mir dich wenn nur schon hier wohl mehr über für müssen können hören sehen Herz Geist Welt " +
  "Nacht Himmel Erde Licht Seele Zeit Tag Wort Kraft Leben Liebe Natur Wissen Glück Gefühl " +
  "Träume Blüte süß schön Größe Mädchen Tür König Äther Öde Übel heißt weiß Straße fröhlich " +
  "Bücher Brüder Hände Lüfte Flügel Glocken Quellen Sterne Wälder Mühe Freude Schmerz Blick " +
  "ewig tief hoch still wild heiß kühl müde rührt führt grüßt strömt blüht glüht flüstert"
).split(" ");

/** A verse drama in German: speakers' names, then lines of verse, with umlauts and ß. */
function germanVerse(size: number): Uint8Array<ArrayBuffer> {
  const random = seeded(0x46415553);
  const line = () => {
    const words = Array.from({ length: 4 + int(random, 6) }, () => pick(random, GERMAN_WORDS));
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    return `${words.join(" ")}${pick(random, [",", ",", ".", "!", "?", ";", ""])}\n`;
  };
  return assemble(size, "FAUST\nEine Tragödie\n\n", "\nENDE\n", () => {
    const verses = Array.from({ length: 2 + int(random, 10) }, line).join("");
    return `${pick(random, SPEAKERS)}:\n${verses}\n`;
  });
}

const ENGLISH_WORDS = (
  "the of and to a in is that for it as with was on by case server client frame message close " +
  "handshake verdict report agent echo payload compression window bits context takeover " +
  "fragment ping pong"
).split(" ");

/** A report page: a styled table of results, with paragraphs between its sections. */
function htmlPage(size: number): Uint8Array<ArrayBuffer> {
  const random = seeded(0x48544d4c);
  const head = '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n' +
    "<title>WebSocket test report</title>\n<style>\n" +
    "td.ok { background: #0a0; } td.failed { background: #900; } td.case { text-align: left; }\n" +
    '</style>\n</head>\n<body>\n<table class="results">\n';
  return assemble(size, head, "</table>\n</body>\n</html>\n", () => {
    if (random() < 0.05) {
      const words = Array.from({ length: 20 + int(random, 40) }, () => pick(random, ENGLISH_WORDS));
      return `<tr><td colspan="3"><p class="note">${words.join(" ")}.</p></td></tr>\n`;
    }
    const id = `${1 + int(random, 13)}.${1 + int(random, 9)}.${1 + int(random, 18)}`;
    const agent = pick(random, AGENTS).split("/")[0].toLowerCase();
    const verdict = pick(random, VERDICTS);
    const cls = verdict === "FAILED" ? "failed" : "ok";
    return `  <tr class="result">\n` +
      `    <td class="case"><a href="#case_${id.replaceAll(".", "_")}">Case ${id}</a></td>\n` +
      `    <td class="${cls}"><a href="${agent}_case_${id.replaceAll(".", "_")}.html">` +
      `${verdict}</a></td>\n` +
      `    <td class="close ${cls}"><span class="code">${pick(random, [1000, 1002, 1007])}</span>` +
      `</td>\n  </tr>\n`;
  });
}

/**
 * A PDF's layout: objects of page text (drawing operators, compressible) and
 * of compressed streams (images, fonts: random bytes, which no compressor shrinks).
 */
function pdfFile(size: number): Uint8Array<ArrayBuffer> {
  const random = seeded(0x25504446);
  let object = 0;
  return assemble(
    size,
    "%PDF-1.4\n%\u00e2\u00e3\n",
    "trailer\n<< /Root 1 0 R >>\n%%EOF\n",
    (room) => {
      object++;
      if (random() < 0.35) {
        const lines = Array.from({ length: 10 + int(random, 40) }, (_, i) => {
          const words = Array.from(
            { length: 6 + int(random, 8) },
            () => pick(random, ENGLISH_WORDS),
          );
          return `BT /F1 10 Tf 72 ${720 - i * 12} Td (${words.join(" ")}) Tj ET\n`;
        }).join("");
        return `${object} 0 obj\n<< /Length ${lines.length} >>\nstream\n${lines}endstream\nendobj\n`;
      }
      const wrapper = (length: number) => [
        encoder.encode(`${object} 0 obj\n<< /Length ${length} /Filter /FlateDecode >>\nstream\n`),
        encoder.encode("\nendstream\nendobj\n"),
      ];
      // The last stream is cut to the room left, so the file ends without much padding.
      const overhead = wrapper(room).reduce((n, part) => n + part.length, 0);
      const length = Math.min(1024 + int(random, 24 * 1024), room - overhead);
      if (length < 64) return undefined;
      const [open, close] = wrapper(length);
      const bytes = new Uint8Array(open.length + length + close.length);
      bytes.set(open);
      for (let i = 0; i < length; i++) bytes[open.length + i] = int(random, 256);
      bytes.set(close, open.length + length);
      return bytes;
    },
  );
}
