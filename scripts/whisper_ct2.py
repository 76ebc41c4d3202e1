"""A Whisper model in CTranslate2's format (faster-whisper's `model.bin`) written out as two ONNX
graphs in standard opset-17 ops, plus the settings a transcriber needs.

    encoder  input_features                       float32 [batch, n_mels, 3000]
             -> cross_key_values.{i}.key / .value  float32 [batch, heads, 1500, head_dim]
    decoder  input_ids, attention_mask, position_ids, past_key_values.{i}.key / .value (as the
             language models' layout, scripts/llama_gguf.py), cross_key_values.{i}.* from the
             encoder -> logits, present.{i}.key / .value

The encoder ends with every decoder layer's cross-attention keys and values, so the decoder never
recomputes them per token and the page hands the encoder's outputs to the decoder by name. The
decoder's self-attention cache has the same names and shapes as the language models', so one
generation loop (web/runtime.js, native-runtime/src/generate.rs) runs both.

CTranslate2's file is a flat list of named arrays (its `model_spec.py` writes it): a version, the
spec's name and revision, then per variable a name, rank, dims, type and raw bytes, then aliases.
The weights are stored in float16 here; "fp32" widens them exactly. Attention projections are
fused (self-attention q|k|v, cross-attention k|v); they are split into separate MatMuls here, so
no Split op is needed (ORT-web's webgpu Split without sizes misbehaved for the llama graph).
tests/test_speech.py checks the graphs' greedy transcript against ctranslate2's on the same
features.
"""

import json
import struct
from pathlib import Path

import numpy as np

from onnx_graph import Graph

# CTranslate2's DataType order (include/ctranslate2/types.h).
CT2_TYPES = [np.float32, np.int8, np.int16, np.int32, np.float16, None]  # bfloat16 unsupported here
LN_EPS = 1e-5
FRAMES = 3000  # 30 s of 10 ms hops: the encoder's fixed input length


class Ct2Model:
    """The named arrays of a CTranslate2 model file."""

    def __init__(self, path: Path):
        data = Path(path).read_bytes()
        self.offset = 0

        def take(fmt):
            (v,) = struct.unpack_from(fmt, data, self.offset)
            self.offset += struct.calcsize(fmt)
            return v

        def text():
            n = take("H")
            s = data[self.offset:self.offset + n - 1].decode()
            self.offset += n
            return s

        self.version = take("I")
        if self.version < 5:
            raise ValueError(f"CTranslate2 binary version {self.version} is older than this reader knows")
        self.spec = text()
        if self.spec != "WhisperSpec":
            raise ValueError(f"the model is a {self.spec}, not a WhisperSpec")
        self.revision = take("I")
        self.arrays = {}
        for _ in range(take("I")):
            name = text()
            dims = [take("I") for _ in range(take("B"))]
            kind = take("B")
            size = take("I")
            dtype = CT2_TYPES[kind] if kind < len(CT2_TYPES) else None
            if dtype is None:
                raise ValueError(f"{name} has CTranslate2 type {kind}, which this reader does not support")
            self.arrays[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=self.offset).reshape(dims)
            self.offset += size
        for _ in range(take("I")):
            alias, target = text(), text()
            self.arrays[alias] = self.arrays[target]

    def f32(self, name: str) -> np.ndarray:
        return np.ascontiguousarray(self.arrays[name], dtype=np.float32)

    def scalar(self, name: str) -> int:
        return int(self.arrays[name].reshape(-1)[0])


class Config:
    def __init__(self, m: Ct2Model):
        self.heads = m.scalar("encoder/num_heads")
        if m.scalar("decoder/num_heads") != self.heads:
            raise ValueError("encoder and decoder head counts differ")
        self.hidden = m.arrays["encoder/conv1/weight"].shape[0]
        self.mels = m.arrays["encoder/conv1/weight"].shape[1]
        self.head_dim = self.hidden // self.heads
        self.encoder_layers = sum(1 for k in m.arrays if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/weight"))
        self.decoder_layers = sum(1 for k in m.arrays if k.startswith("decoder/layer_") and k.endswith("ffn/linear_0/weight"))
        self.vocab = m.arrays["decoder/embeddings/weight"].shape[0]
        self.max_length = m.arrays["decoder/position_encodings/encodings"].shape[0]
        self.audio_ctx = m.arrays["encoder/position_encodings/encodings"].shape[0]
        if self.audio_ctx * 2 != FRAMES:
            raise ValueError(f"the encoder takes {self.audio_ctx} positions; Whisper's is {FRAMES // 2}")


class Builder:
    """Whisper's blocks over a Graph, reading weights from the CTranslate2 model."""

    def __init__(self, m: Ct2Model, c: Config):
        self.m, self.c, self.g = m, c, Graph()
        g = self.g
        self.scale = g.const(1.0 / np.sqrt(c.head_dim), np.float32)
        self.half = g.const(0.5, np.float32)
        self.one = g.const(1.0, np.float32)
        self.root2 = g.const(np.sqrt(2.0), np.float32)

    def weight(self, name: str, rows: slice | None = None) -> np.ndarray:
        w = self.m.f32(name)
        return w[rows] if rows is not None else w

    def linear(self, x: str, prefix: str, hint: str, rows: slice | None = None, bias: bool = True) -> str:
        """x [.., K] times `prefix`/weight (rows = outputs; `rows` picks part of a fused one)."""
        g = self.g
        tag = "" if rows is None else f"[{rows.start}:{rows.stop}]"
        w = g.init(f"{prefix}/weight{tag}", self.weight(f"{prefix}/weight", rows).T)
        y = g.op("MatMul", [x, w], hint)
        if not bias:
            return y
        return g.op("Add", [y, g.init(f"{prefix}/bias{tag}", self.weight(f"{prefix}/bias", rows))], hint)

    def norm(self, x: str, prefix: str, hint: str) -> str:
        g = self.g
        gamma, beta = g.init(f"{prefix}/gamma", self.weight(f"{prefix}/gamma")), g.init(f"{prefix}/beta", self.weight(f"{prefix}/beta"))
        return g.op("LayerNormalization", [x, gamma, beta], hint, axis=-1, epsilon=LN_EPS)

    def gelu(self, x: str, hint: str) -> str:
        # Whisper's exact GELU (erf); opset 17 has no Gelu op.
        g = self.g
        erf = g.op("Erf", [g.op("Div", [x, self.root2], hint)], hint)
        return g.op("Mul", [g.op("Mul", [x, self.half], hint), g.op("Add", [erf, self.one], hint)], hint)

    def heads(self, x: str, hint: str) -> str:
        """[B,S,hidden] -> [B,H,S,D]."""
        g = self.g
        shaped = g.op("Reshape", [x, g.const([0, 0, self.c.heads, self.c.head_dim])], hint)
        return g.op("Transpose", [shaped], hint, perm=[0, 2, 1, 3])

    def attend(self, q: str, keys: str, values: str, bias: str | None, hint: str) -> str:
        """softmax(q·kᵀ/√d + bias)·v over [B,H,*,D], back to [B,S,hidden]."""
        g = self.g
        scores = g.op("MatMul", [g.op("Mul", [q, self.scale], hint), g.op("Transpose", [keys], hint, perm=[0, 1, 3, 2])], hint)
        if bias:
            scores = g.op("Add", [scores, bias], hint)
        context = g.op("MatMul", [g.op("Softmax", [scores], hint, axis=-1), values], hint)
        merged = g.op("Transpose", [context], hint, perm=[0, 2, 1, 3])
        return g.op("Reshape", [merged, g.const([0, 0, self.c.hidden])], hint)

    def ffn(self, x: str, prefix: str, hint: str) -> str:
        h = self.norm(x, f"{prefix}/ffn/layer_norm", hint)
        h = self.linear(self.gelu(self.linear(h, f"{prefix}/ffn/linear_0", hint), hint), f"{prefix}/ffn/linear_1", hint)
        return self.g.op("Add", [x, h], hint)

    def thirds(self, i: int) -> tuple[slice, slice, slice]:
        d = self.c.hidden
        return slice(0, d), slice(d, 2 * d), slice(2 * d, 3 * d)


def model(g: Graph, name: str, inputs, outputs):
    import onnx
    from onnx import helper

    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="webaccel scripts/whisper_ct2.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def build_encoder(path: Path):
    from onnx import TensorProto, helper

    m = Ct2Model(path)
    c = Config(m)
    b = Builder(m, c)
    g = b.g
    inputs = [helper.make_tensor_value_info("input_features", TensorProto.FLOAT, ["batch", c.mels, FRAMES])]
    outputs = []
    x = "input_features"
    for conv, stride in (("conv1", 1), ("conv2", 2)):
        w = g.init(f"encoder/{conv}/weight", m.f32(f"encoder/{conv}/weight"))
        bias = g.init(f"encoder/{conv}/bias", m.f32(f"encoder/{conv}/bias"))
        x = b.gelu(g.op("Conv", [x, w, bias], conv, kernel_shape=[3], pads=[1, 1], strides=[stride]), conv)
    x = g.op("Transpose", [x], "embed", perm=[0, 2, 1])
    x = g.op("Add", [x, g.init("encoder/position_encodings", m.f32("encoder/position_encodings/encodings"))], "embed")
    for i in range(c.encoder_layers):
        p, h = f"encoder/layer_{i}", f"enc{i}"
        normed = b.norm(x, f"{p}/self_attention/layer_norm", h)
        qs, ks, vs = b.thirds(i)
        fused = f"{p}/self_attention/linear_0"
        q, k, v = (b.heads(b.linear(normed, fused, h, rows), h) for rows in (qs, ks, vs))
        x = g.op("Add", [x, b.linear(b.attend(q, k, v, None, h), f"{p}/self_attention/linear_1", h)], h)
        x = b.ffn(x, p, h)
    x = b.norm(x, "encoder/layer_norm", "final")
    for i in range(c.decoder_layers):
        fused = f"decoder/layer_{i}/attention/linear_1"
        for kind, rows in (("key", slice(0, c.hidden)), ("value", slice(c.hidden, 2 * c.hidden))):
            out = f"cross_key_values.{i}.{kind}"
            g.nodes.append(helper.make_node("Identity", [b.heads(b.linear(x, fused, f"cross{i}", rows), f"cross{i}")], [out], name=f"cross{i}/{kind}"))
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", c.heads, c.audio_ctx, c.head_dim]))
    return model(g, "whisper-encoder", inputs, outputs)


def build_decoder(path: Path):
    from onnx import TensorProto, helper

    m = Ct2Model(path)
    c = Config(m)
    b = Builder(m, c)
    g = b.g
    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total_sequence"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, dims),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", c.vocab])]
    for i in range(c.decoder_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", c.heads, "past_sequence", c.head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", c.heads, "total_sequence", c.head_dim]))
    for i in range(c.decoder_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"cross_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", c.heads, "audio_frames", c.head_dim]))

    embedding = g.init("decoder/embeddings/weight", m.f32("decoder/embeddings/weight"))
    positions = g.init("decoder/position_encodings", m.f32("decoder/position_encodings/encodings"))
    x = g.op("Add", [g.op("Gather", [embedding, "input_ids"], "embed", axis=0), g.op("Gather", [positions, "position_ids"], "embed", axis=0)], "embed")

    # The additive self-attention mask [B,1,S,T]: causal over absolute positions, and padding.
    seq = g.op("Gather", [g.op("Shape", ["input_ids"], "mask"), g.const(1)], "mask", axis=0)
    total = g.op("Gather", [g.op("Shape", ["attention_mask"], "mask"), g.const(1)], "mask", axis=0)
    past = g.op("Sub", [total, seq], "mask")
    query_pos = g.op("Unsqueeze", [g.op("Range", [past, total, g.const(1)], "mask"), g.const([1])], "mask")
    key_pos = g.op("Unsqueeze", [g.op("Range", [g.const(0), total, g.const(1)], "mask"), g.const([0])], "mask")
    causal = g.op("LessOrEqual", [key_pos, query_pos], "mask")
    kept = g.op("Unsqueeze", [g.op("Equal", ["attention_mask", g.const(1)], "mask"), g.const([1, 2])], "mask")
    allowed = g.op("And", [causal, kept], "mask")
    bias = g.op("Where", [allowed, g.const(0.0, np.float32), g.const(np.finfo(np.float32).min, np.float32)], "mask")

    for i in range(c.decoder_layers):
        p, h = f"decoder/layer_{i}", f"dec{i}"
        normed = b.norm(x, f"{p}/self_attention/layer_norm", h)
        qs, ks, vs = b.thirds(i)
        fused = f"{p}/self_attention/linear_0"
        q, k, v = (b.heads(b.linear(normed, fused, h, rows), h) for rows in (qs, ks, vs))
        keys = g.op("Concat", [f"past_key_values.{i}.key", k], h, axis=2)
        values = g.op("Concat", [f"past_key_values.{i}.value", v], h, axis=2)
        g.nodes.append(helper.make_node("Identity", [keys], [f"present.{i}.key"], name=f"{h}/present_key"))
        g.nodes.append(helper.make_node("Identity", [values], [f"present.{i}.value"], name=f"{h}/present_value"))
        x = g.op("Add", [x, b.linear(b.attend(q, keys, values, bias, h), f"{p}/self_attention/linear_1", h)], h)

        normed = b.norm(x, f"{p}/attention/layer_norm", h)
        q = b.heads(b.linear(normed, f"{p}/attention/linear_0", h), h)
        cross = b.attend(q, f"cross_key_values.{i}.key", f"cross_key_values.{i}.value", None, h)
        x = g.op("Add", [x, b.linear(cross, f"{p}/attention/linear_2", h)], h)
        x = b.ffn(x, p, h)

    x = b.norm(x, "decoder/layer_norm", "head")
    flat = g.op("Reshape", [x, g.const([-1, c.hidden])], "head")
    logits = g.op("Gemm", [flat, embedding], "head", transB=1)
    g.nodes.append(helper.make_node("Reshape", [logits, g.op("Concat", [g.op("Slice", [g.op("Shape", ["input_ids"], "head"), g.const([0]), g.const([2])], "head"), g.const([c.vocab])], "head", axis=0)], ["logits"], name="head/logits"))
    return model(g, "whisper-decoder", inputs, outputs)


def write_encoder(path: Path, dst: Path) -> None:
    import onnx

    onnx.save_model(build_encoder(path), str(dst))


def write_decoder(path: Path, dst: Path) -> None:
    import onnx

    onnx.save_model(build_decoder(path), str(dst))


def settings_json(path: Path) -> dict:
    """What a transcriber needs besides the graphs, from the model and its package's
    config.json and tokenizer.json: the prompt's special ids, the end of text, the ids
    CTranslate2 suppresses (always, and at the first step), the cache shapes, the front end."""
    m = Ct2Model(path)
    c = Config(m)
    folder = Path(path).parent
    config = json.loads((folder / "config.json").read_text())
    vocab = json.loads((folder / "tokenizer.json").read_text())["added_tokens"]
    special = {t["content"]: t["id"] for t in vocab}
    languages = {t["content"][2:-2]: t["id"] for t in vocab if t["id"] in set(config.get("lang_ids", [])) and t["content"] in special}
    # Whisper's English-only models have a 51864-token vocabulary, the multilingual ones 51865+.
    multilingual = c.vocab >= 51865
    return {
        "multilingual": multilingual,
        "start_of_transcript": special["<|startoftranscript|>"],
        "transcribe": special["<|transcribe|>"] if multilingual else None,
        "no_timestamps": special["<|notimestamps|>"],
        "end_of_text": special["<|endoftext|>"],
        "languages": languages if multilingual else {},
        "suppress_ids": config["suppress_ids"],
        "suppress_ids_begin": config["suppress_ids_begin"],
        "layers": c.decoder_layers,
        "kv_heads": c.heads,
        "head_dim": c.head_dim,
        "vocab": c.vocab,
        "max_length": c.max_length,
        "n_mels": c.mels,
        "frames": FRAMES,
    }
