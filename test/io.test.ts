/**
 * @file `ad.io` safetensors: byte-exact fixtures built by hand from the format's specification
 * (8-byte little-endian header length, compact JSON header with `__metadata__` first and tensors
 * ordered by dtype alignment then name, padded with spaces to 8 bytes, raw little-endian data),
 * round trips of nested trees in every dtype (special values included), files written by other
 * tools (other integer dtypes, whitespace), and a typed `SafetensorsError` (an `AdError`) for
 * each kind of corrupt file.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const bytes = (...parts: number[][]) => Uint8Array.from(parts.flat());
/** A file from a header string and data bytes (the header padded with spaces to 8 bytes). */
function file(header: string, data: number[], pad = (8 - (header.length % 8)) % 8): Uint8Array {
  const n = header.length + pad;
  const len = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, 0, 0, 0, 0];
  return bytes(len, ascii(header), new Array(pad).fill(0x20), data);
}

describe("byte-exact fixtures", () => {
  test("one float32 tensor: {w: [1, −2]}", () => {
    const header = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes
    const want = bytes(
      [56, 0, 0, 0, 0, 0, 0, 0], // header length 54 + 2 spaces of padding, u64 little-endian
      ascii(header),
      [0x20, 0x20],
      [0x00, 0x00, 0x80, 0x3f], // 1.0f
      [0x00, 0x00, 0x00, 0xc0], // -2.0f
    );
    const got = ad.io.saveSafetensors({ w: ad.tensor([1, -2]) });
    assert.deepEqual(Array.from(got), Array.from(want));
    assert.equal(got.length, 72);
    const back = ad.io.loadSafetensors<{ w: ad.Tensor }>(want);
    assert.equal(back.w.dtype, "float32");
    assert.deepEqual(back.w.toArray(), [1, -2]);
  });

  test("five dtypes, a nested name and metadata: alignment order, then names; __metadata__ first", () => {
    const tree = {
      b: ad.tensor([1, -2], { dtype: "float16" }),
      a: ad.tensor([true, false, true], { dtype: "bool" }),
      c: ad.scalar(2.5, { dtype: "float64" }),
      d: { e: ad.tensor([1, -1], { dtype: "int32" }) },
      f: ad.tensor([1.5], { dtype: "bfloat16" }),
    };
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"F64","shape":[],"data_offsets":[0,8]},' +
      '"d.e":{"dtype":"I32","shape":[2],"data_offsets":[8,16]},' +
      '"f":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},' +
      '"b":{"dtype":"F16","shape":[2],"data_offsets":[18,22]},' +
      '"a":{"dtype":"BOOL","shape":[3],"data_offsets":[22,25]}}'; // 307 bytes
    const want = bytes(
      [0x38, 0x01, 0, 0, 0, 0, 0, 0], // 312 = 307 + 5 spaces
      ascii(header),
      [0x20, 0x20, 0x20, 0x20, 0x20],
      [0, 0, 0, 0, 0, 0, 0x04, 0x40], // 2.5 (float64)
      [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // int32 1, -1
      [0xc0, 0x3f], // bfloat16 1.5 = 0x3fc0
      [0x00, 0x3c, 0x00, 0xc0], // float16 1 = 0x3c00, -2 = 0xc000
      [1, 0, 1], // bool
    );
    const got = ad.io.saveSafetensors(tree, { metadata: { format: "pt" } });
    assert.deepEqual(Array.from(got), Array.from(want));
    const { tensors, metadata } = ad.io.parseSafetensors(want);
    assert.deepEqual(metadata, { format: "pt" });
    assert.deepEqual(Object.keys(tensors), ["c", "d.e", "f", "b", "a"]);
    assert.deepEqual(
      Object.values(tensors).map((t) => t.dtype),
      ["float64", "int32", "bfloat16", "float16", "bool"],
    );
    const back = ad.io.loadSafetensors<typeof tree>(want);
    assert.equal(back.c.item(), 2.5);
    assert.deepEqual(back.c.shape, []);
    assert.deepEqual(back.d.e.toArray(), [1, -1]);
    assert.deepEqual(back.f.toArray(), [1.5]);
    assert.deepEqual(back.b.toArray(), [1, -2]);
    assert.deepEqual(back.a.toArray(), [true, false, true]);
  });

  test("a flat state dict keeps its names; arrays give index paths", () => {
    const got = ad.io.parseSafetensors(
      ad.io.saveSafetensors({
        layers: [{ weight: ad.ones([1]) }, { weight: ad.zeros([1]) }],
        "0.bias": ad.ones([1]),
      }),
    );
    assert.deepEqual(Object.keys(got.tensors), ["0.bias", "layers.0.weight", "layers.1.weight"]);
    assert.equal(got.metadata, null);
  });
});

describe("round trips", () => {
  test("nested trees with arrays, numbers and every dtype, special values included", () => {
    const tree = {
      layers: [
        {
          weight: ad.tensor([
            [1.5, -0.25],
            [1e-30, 3e38],
          ]),
          bias: ad.tensor([Math.PI], { dtype: "float64" }),
        },
        { weight: ad.tensor([[Infinity, -Infinity, Number.NaN, -0]]) },
      ],
      half: ad.tensor([65504, -65504, 2 ** -24, Infinity, -0, 0.1, Number.NaN], { dtype: "float16" }),
      brain: ad.tensor([3e38, 1e-38, -1.5, 0.1, -Infinity, Number.NaN], { dtype: "bfloat16" }),
      ints: ad.tensor([[2147483647, -2147483648, 0]], { dtype: "int32" }),
      mask: ad.tensor([[true], [false]], { dtype: "bool" }),
      empty: ad.zeros([0, 3]),
      step: 42,
    };
    const back = ad.io.loadSafetensors<Record<string, unknown>>(ad.io.saveSafetensors(tree)) as unknown as {
      layers: { weight: ad.Tensor; bias?: ad.Tensor }[];
      half: ad.Tensor;
      brain: ad.Tensor;
      ints: ad.Tensor;
      mask: ad.Tensor;
      empty: ad.Tensor;
      step: ad.Tensor;
    };
    assert.ok(Array.isArray(back.layers));
    const same = (a: ad.Tensor, b: ad.Tensor) => {
      assert.equal(a.dtype, b.dtype);
      assert.deepEqual(a.shape, b.shape);
      const x = Array.from(a.data(), Number);
      const y = Array.from(b.data(), Number);
      x.forEach((v, i) => assert.ok(Object.is(v, y[i]), `${v} vs ${y[i]}`));
    };
    same(back.layers[0]!.weight, tree.layers[0]!.weight);
    same(back.layers[0]!.bias!, tree.layers[0]!.bias!);
    same(back.layers[1]!.weight, tree.layers[1]!.weight);
    same(back.half, tree.half);
    same(back.brain, tree.brain);
    same(back.ints, tree.ints);
    same(back.mask, tree.mask);
    same(back.empty, tree.empty);
    assert.equal(back.step.dtype, "float64");
    assert.equal(back.step.item(), 42);
  });

  test("a module's state dict through bytes into another module", () => {
    const a = new ad.nn.Sequential(new ad.nn.Linear(3, 4, { key: ad.random.key(1) }), new ad.nn.LayerNorm(4));
    const b = new ad.nn.Sequential(new ad.nn.Linear(3, 4, { key: ad.random.key(2) }), new ad.nn.LayerNorm(4));
    b.loadStateDict(ad.io.loadSafetensors(ad.io.saveSafetensors(a.stateDict())));
    const x = ad.random.normal(ad.random.key(3), [2, 3]);
    assert.deepEqual(b.forward(x).toArray(), a.forward(x).toArray());
  });

  test('a top-level array: names "0", "1.0"; loading restores the arrays', () => {
    const bytesOut = ad.io.saveSafetensors([ad.ones([2]), [ad.zeros([1])]]);
    assert.deepEqual(Object.keys(ad.io.parseSafetensors(bytesOut).tensors), ["0", "1.0"]);
    const back = ad.io.loadSafetensors<ad.Tensor[][]>(bytesOut);
    assert.ok(Array.isArray(back) && Array.isArray(back[1]));
  });
});

describe("files from other writers", () => {
  test("other integer dtypes load as int32; whitespace in the header; unordered offsets", () => {
    const header =
      '{ "big": {"dtype": "I64", "shape": [2], "data_offsets": [3, 19]},\n  "u": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]} }';
    const data = [
      1,
      2,
      255,
      ...[5, 0, 0, 0, 0, 0, 0, 0],
      ...[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ];
    const t = ad.io.parseSafetensors(file(header, data)).tensors;
    assert.deepEqual(Object.keys(t), ["big", "u"]);
    assert.equal(t.u!.dtype, "int32");
    assert.deepEqual(t.u!.toArray(), [1, 2, 255]);
    assert.deepEqual(t.big!.toArray(), [5, -2]);
    const tooBig = file('{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', [0, 0, 0, 0, 1, 0, 0, 0]);
    assert.throws(
      () => ad.io.parseSafetensors(tooBig),
      (e: Error) => e instanceof ad.io.SafetensorsError && e.code === "InvalidDType",
    );
  });
});

describe("corrupt files are SafetensorsErrors (AdErrors) naming the problem", () => {
  const ok = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const eight = [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0];
  const cases: [string, Uint8Array, ad.io.SafetensorsErrorCode][] = [
    ["fewer than 8 bytes", Uint8Array.of(1, 2, 3), "HeaderTooSmall"],
    ["a header length past the end", bytes([200, 0, 0, 0, 0, 0, 0, 0], ascii("{}")), "InvalidHeaderLength"],
    ["a header length over 100 MB", bytes([0, 0, 0, 0, 0, 0, 0, 1]), "HeaderTooLarge"],
    ["a header that is not JSON", file('{"w":', []), "InvalidHeaderDeserialization"],
    ["a header that does not start with {", file('["w"]', []), "InvalidHeaderStart"],
    [
      "invalid UTF-8",
      bytes([8, 0, 0, 0, 0, 0, 0, 0], [0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20]),
      "InvalidHeader",
    ],
    ["an unknown dtype", file(ok.replace("F32", "F31"), eight), "InvalidDType"],
    ["a bad shape", file(ok.replace("[2]", "[-2]"), eight), "InvalidShape"],
    ["bad offsets", file(ok.replace("[0,8]", "[0]"), eight), "InvalidOffset"],
    ["offsets with a gap", file(ok.replace("[0,8]", "[4,12]"), [...eight, 0, 0, 0, 0]), "InvalidOffset"],
    ["a size that does not match the shape", file(ok.replace("[2]", "[3]"), eight), "TensorInvalidInfo"],
    ["truncated data", file(ok, eight.slice(0, 6)), "MetadataIncompleteBuffer"],
    ["trailing bytes", file(ok, [...eight, 1]), "MetadataIncompleteBuffer"],
    ["metadata that is not strings", file('{"__metadata__":{"a":1}}', []), "InvalidHeaderDeserialization"],
  ];
  for (const [name, b, code] of cases)
    test(name, () => {
      assert.throws(
        () => ad.io.loadSafetensors(b),
        (e: Error) =>
          e instanceof ad.io.SafetensorsError &&
          e instanceof ad.AdError &&
          e.code === code &&
          e.message.includes(code),
      );
    });

  test("names that cannot nest: a tensor that is also a group", () => {
    const h =
      '{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a.b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}';
    const b = file(h, eight);
    assert.equal(Object.keys(ad.io.parseSafetensors(b).tensors).length, 2); // flat parsing is fine
    assert.throws(
      () => ad.io.loadSafetensors(b),
      (e: Error) => e instanceof ad.io.SafetensorsError && e.code === "InvalidName",
    );
  });

  test("saving: non-tensor leaves, a reserved name, duplicate names, bad metadata", () => {
    assert.throws(() => ad.io.saveSafetensors({ a: "x" }), ad.io.SafetensorsError);
    assert.throws(() => ad.io.saveSafetensors(ad.ones([2])), ad.io.SafetensorsError);
    assert.throws(() => ad.io.saveSafetensors({ __metadata__: ad.ones([1]) }), ad.io.SafetensorsError);
    assert.throws(
      () => ad.io.saveSafetensors({ "a.b": ad.ones([1]), a: { b: ad.ones([1]) } }),
      ad.io.SafetensorsError,
    );
    assert.throws(
      () => ad.io.saveSafetensors({ a: ad.ones([1]) }, { metadata: { v: 1 as unknown as string } }),
      ad.io.SafetensorsError,
    );
  });
});
