"""Derive the precision variants that models/catalog.toml declares, deterministically.

Every `[[models.files]]` entry with `derive = { from, method }` is made from the model's file
at precision `from` with one of the METHODS below, in the pinned venv (onnx, onnxruntime,
onnx_ir, sympy from tests/requirements.txt). Each result is checked before it is installed:

- it must load in onnxruntime on the CPU;
- a quantized variant must really be quantized: most of the weights of the model's MatMul,
  Conv and Gemm ops must now feed quantized ops. A quantizer that skips the model (its ops sit
  in a subgraph, or are Convs that MatMulNBits does not touch) would otherwise hand back an
  fp32 graph under a "4-bit" name;
- its sha256 must equal the sum pinned in the catalog (the same tools give the same bytes).

Variants that fail are not dropped silently: <models dir>/derived/manifest.json records each
attempt with its status and reason, and webaccel quotes that reason when such a precision is
asked for. A catalog entry without a sha256 declares a variant expected to fail; if it
suddenly succeeds this script says so, so that the sum gets pinned.

Usage: prepare_models.py [--out DIR] [--print-sums]
  --out DIR      write the variants under DIR instead of the models directory (the
                 determinism test prepares twice into two directories and compares bytes)
  --print-sums   print the sums instead of checking them (for pinning new variants)
"""

import argparse
import json
import logging
import sys
import tempfile
import tomllib
from importlib.metadata import version
from pathlib import Path

# The sibling script: one definition of the models directory and of a file's sum.
from fetch_models import default_models_dir, sha256

ROOT = Path(__file__).resolve().parent.parent

# Share of the MatMul/Conv/Gemm weights that must sit in quantized ops for a variant to carry
# the quantized label. Embedding tables (Gather) are deliberately not counted: quantizing them
# costs accuracy (MODELS.md: cosine 0.96 instead of 0.997) and the catalog says they stay fp32.
MIN_QUANTIZED_SHARE = 0.5

QUANTIZED_OPS = {"MatMulInteger", "ConvInteger", "MatMulNBits", "QLinearMatMul", "QLinearConv"}
FLOAT_WEIGHT_OPS = {"MatMul", "Conv", "Gemm"}


def half(model, keep_io_types: bool, op_block_list: list[str] | None = None):
    """A graph through onnxruntime's own fp16 converter (the onnxconverter_common one gives
    graphs that fail to load), as the OnnxModel wrapper that saves it."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(model)
    options = {"op_block_list": op_block_list} if op_block_list else {}
    wrapped.convert_float_to_float16(keep_io_types=keep_io_types, **options)
    return wrapped


def fp16(keep_io_types: bool):
    def convert(src: Path, dst: Path) -> None:
        import onnx

        half(onnx.load(str(src)), keep_io_types).save_model_to_file(str(dst))

    return convert


def int8_dynamic(op_types: list[str], weight_type: str, per_channel: bool):
    def convert(src: Path, dst: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=getattr(QuantType, weight_type),
            per_channel=per_channel,
            op_types_to_quantize=op_types,
        )

    return convert


def int4_matmulnbits(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=32, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst))


def gguf_llama(bits: str):
    """A llama GGUF as ONNX (scripts/llama_gguf.py): "fp32", "q4", or "fp16", the fp32 graph
    through onnxruntime's own fp16 converter with float32 at its edges (the KV cache included,
    so every runtime feeds the same inputs) and in attention."""

    def convert(src: Path, dst: Path) -> None:
        import llama_gguf

        if bits != "fp16":
            llama_gguf.write_model(src, bits, dst)
            return
        model = llama_gguf.build(src, "fp32")
        declared = list(model.graph.input)
        # Attention stays fp32, so the KV cache goes in and out as it is: ORT-web 1.30's WebGPU
        # GroupQueryAttention in fp16 failed every generation here ("Shape mismatch attempting
        # to re-use buffer" on present.*), on lavapipe, with shader-f16.
        wrapped = half(model, keep_io_types=True, op_block_list=["GroupQueryAttention"])
        # The converter drops inputs no node reads (position_ids, which GroupQueryAttention does
        # without); the file keeps the layout every runtime feeds.
        kept = {i.name for i in wrapped.model.graph.input}
        for index, given in enumerate(declared):
            if given.name not in kept:
                wrapped.model.graph.input.insert(index, given)
        wrapped.save_model_to_file(str(dst))

    return convert


def whisper(graph: str, bits: str):
    """One of a CTranslate2 Whisper's graphs (scripts/whisper_ct2.py); fp16 through onnxruntime's
    own converter, float32 at the graph's edges (the caches and features stay float32)."""

    def convert(src: Path, dst: Path) -> None:
        import whisper_ct2

        model = getattr(whisper_ct2, f"build_{graph}")(src)
        if bits == "fp16":
            half(model, keep_io_types=True).save_model_to_file(str(dst))
        else:
            import onnx

            onnx.save_model(model, str(dst))

    return convert


def whisper_settings(src: Path, dst: Path) -> None:
    import whisper_ct2

    dst.write_text(json.dumps(whisper_ct2.settings_json(src), ensure_ascii=False, separators=(",", ":")) + "\n")


def gguf_json(make):
    """A sidecar file of a GGUF's metadata (tokenizer, generation settings), as stable JSON."""

    def convert(src: Path, dst: Path) -> None:
        import llama_gguf

        dst.write_text(json.dumps(getattr(llama_gguf, make)(src), ensure_ascii=False, separators=(",", ":")) + "\n")

    return convert


# method name (as the catalog spells it) -> (converter, whether it quantizes weights)
METHODS = {
    "fp16-keep-io": (fp16(keep_io_types=True), False),
    "fp16": (fp16(keep_io_types=False), False),
    # Per-channel int8 on MatMul only: quantizing the embedding Gather too is much lossier.
    "int8-dynamic-matmul": (int8_dynamic(["MatMul"], "QInt8", per_channel=True), True),
    # ConvInteger takes uint8 weights in onnxruntime's CPU kernels.
    "int8-dynamic-conv": (int8_dynamic(["Conv", "MatMul"], "QUInt8", per_channel=False), True),
    "int4-matmulnbits": (int4_matmulnbits, True),
    # A llama GGUF written out as ONNX (scripts/llama_gguf.py): dequantized, or its own Q4_1
    # blocks as MatMulNBits (never re-quantized).
    "gguf-llama-fp32": (gguf_llama("fp32"), False),
    "gguf-llama-q4": (gguf_llama("q4"), True),
    "gguf-llama-fp16": (gguf_llama("fp16"), False),
    # A CTranslate2 Whisper written out as ONNX (scripts/whisper_ct2.py): encoder and decoder.
    "ct2-whisper-encoder-fp32": (whisper("encoder", "fp32"), False),
    "ct2-whisper-decoder-fp32": (whisper("decoder", "fp32"), False),
    "ct2-whisper-encoder-fp16": (whisper("encoder", "fp16"), False),
    "ct2-whisper-decoder-fp16": (whisper("decoder", "fp16"), False),
}

# Sidecar files a generation model's processing names, made from its `source` (suffix .json).
SIDECARS = {
    "gguf-tokenizer": gguf_json("tokenizer_json"),
    "gguf-settings": gguf_json("generation_json"),
    "ct2-whisper-settings": whisper_settings,
}


def quantized_share(path: Path) -> tuple[float, int, int, bool]:
    """(share, quantized weights, float weights, whether the graph has subgraphs) over the
    top-level ops that carry weight matrices."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    sizes = {t.name: numpy_helper.to_array(t).size for t in model.graph.initializer}
    quantized = floating = 0
    for node in model.graph.node:
        weight = node.input[1] if len(node.input) > 1 else None
        if weight not in sizes:
            continue
        if node.op_type in QUANTIZED_OPS:
            # MatMulNBits packs two 4-bit weights per byte.
            quantized += sizes[weight] * (2 if node.op_type == "MatMulNBits" else 1)
        elif node.op_type in FLOAT_WEIGHT_OPS:
            floating += sizes[weight]
    total = quantized + floating
    nested = any(node.op_type in ("If", "Loop", "Scan") for node in model.graph.node)
    return (quantized / total if total else 0.0), quantized, floating, nested


def check(path: Path, quantizes: bool | None, method: str) -> str | None:
    """Why the variant at `path` must not be installed, or None when it is good. A sidecar
    (quantizes None) must be JSON."""
    import onnxruntime

    if quantizes is None:
        try:
            json.loads(path.read_text())
        except ValueError as e:
            return f"{method} wrote a file that is not JSON: {e}"
        return None
    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types per failure
        return f"onnxruntime {onnxruntime.__version__} cannot load it: {e}"
    if quantizes:
        share, quantized, floating, nested = quantized_share(path)
        if share < MIN_QUANTIZED_SHARE:
            if quantized == 0:
                where = (
                    "its ops sit inside If/Loop subgraphs, where the quantizer does not look"
                    if nested
                    else "it has no MatMul/Conv with an initializer weight"
                )
                return f"{method} quantized no op ({where}), so the result would be the fp32 graph under a new name"
            return (
                f"{method} quantized only {share:.1%} of the weight-carrying ops' weights "
                f"({quantized} of {quantized + floating}); the rest stay fp32, so the file would not "
                "be the precision its name claims"
            )
    return None


def packaged_path(models_dir: Path, catalog: dict, f: dict) -> Path:
    version = catalog["packages"][f["package"]]["version"]
    path = models_dir / f["package"] / version / f["path"]
    if sha256(path) != f["sha256"]:
        raise SystemExit(f"prepare: {path} does not match its pinned sha256; run fetch_models.py")
    return path


def source_file(models_dir: Path, catalog: dict, model: dict, precision: int | None) -> Path:
    """The file a variant is derived from: the model's packaged file at `precision`, or, with
    none, the model's `source` (a GGUF, say)."""
    if precision is None:
        if "source" not in model:
            raise SystemExit(f"prepare: {model['name']} derives a file from neither a precision nor a source")
        return packaged_path(models_dir, catalog, model["source"])
    for f in model["files"]:
        if f["precision"] == precision and "package" in f:
            return packaged_path(models_dir, catalog, f)
    raise SystemExit(f"prepare: {model['name']} has no packaged {precision}-bit file to derive from")


def jobs(catalog: dict):
    """Every file to derive: (model, method, the precision it is made from or None for the
    model's source, pinned sha256, manifest entry, (converter, quantizes), suffix)."""
    for model in catalog["models"]:
        # A speech model's encoder graphs are derived like its (decoder) files.
        for f in model["files"] + model.get("encoder_files", []):
            derive = f.get("derive")
            if derive:
                entry = {"model": model["name"], "precision": f["precision"], "method": derive["method"], "mixed": f["mixed"]}
                yield model, derive["method"], derive.get("from"), f.get("sha256"), entry, METHODS[derive["method"]], ".onnx"
        processing = model.get("processing", {})
        if processing.get("kind") in ("generation", "speech"):
            for role in ("tokenizer", "settings"):
                side = processing[role]
                if "method" not in side:
                    continue  # a packaged file, fetched as it is
                entry = {"model": model["name"], "sidecar": role, "method": side["method"]}
                yield model, side["method"], None, side.get("sha256"), entry, (SIDECARS[side["method"]], None), ".json"


def tool_versions() -> dict:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "gguf": version("gguf")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--print-sums", action="store_true")
    args = parser.parse_args()
    # The quantizers log every node they skip.
    logging.disable(logging.WARNING)

    models_dir = default_models_dir()
    out_root = args.out or models_dir / "derived"
    catalog = tomllib.loads((ROOT / "models" / "catalog.toml").read_text())
    manifest_path = out_root / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest = {"tools": tool_versions(), "variants": {}}
    failures = []

    for model, method, source, pinned, entry, (convert, quantizes), suffix in jobs(catalog):
        key = f"{model['name']}/{method}"
        dst = out_root / model["name"] / f"{method}{suffix}"
        previous = old.get("variants", {}).get(key)
        # Already prepared with the same tools and matching its pin: nothing to do.
        if (
            not args.print_sums
            and previous
            and old.get("tools") == manifest["tools"]
            and (previous["status"] == "unavailable" and not pinned
                 or previous["status"] == "ok" and dst.is_file() and sha256(dst) == pinned)
        ):
            manifest["variants"][key] = previous
            print(f"prepare: {key} {previous['status']}")
            continue

        src = source_file(models_dir, catalog, model, source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
            staged = Path(tmp) / dst.name
            try:
                convert(src, staged)
                reason = check(staged, quantizes, method)
            except Exception as e:  # a converter can fail in many ways; each is a recorded reason
                reason = f"{method} failed: {type(e).__name__}: {e}"
            if reason:
                entry.update(status="unavailable", reason=reason)
                dst.unlink(missing_ok=True)
                if pinned and not args.print_sums:
                    failures.append(f"{key}: the catalog pins a file but preparation failed: {reason}")
            else:
                got = sha256(staged)
                entry.update(status="ok", sha256=got)
                if args.print_sums:
                    print(f"{key} {got}")
                elif not pinned:
                    failures.append(f"{key}: prepared fine ({got}) but the catalog expects it to fail; pin it")
                elif got != pinned:
                    failures.append(f"{key}: produced {got}, the catalog pins {pinned}; the tools are not the pinned ones or preparation is not deterministic")
                if args.print_sums or got == pinned:
                    # A rename: no reader ever sees a half-written model.
                    staged.rename(dst)
        manifest["variants"][key] = entry
        print(f"prepare: {key} {entry['status']}" + (f" ({entry['reason']})" if "reason" in entry else ""))

    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out_root, delete=False, suffix=".json") as tmp:
        json.dump(manifest, tmp, indent=2, sort_keys=True)
    Path(tmp.name).rename(manifest_path)
    for f in failures:
        print(f"prepare: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
