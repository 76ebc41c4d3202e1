"""A llama-architecture GGUF (SmolLM2) written out as an ONNX decoder with a KV cache, in opset-17
ops and onnxruntime's GroupQueryAttention and SimplifiedLayerNormalization, plus the tokenizer and
generation settings its GGUF metadata carries.

The graph has the transformers.js / optimum layout, so any ONNX text-generation runner can use it:

    inputs   input_ids, attention_mask, position_ids        int64 [batch, sequence] / [batch, total]
             past_key_values.{i}.key / .value               float32 [batch, kv_heads, past, head_dim]
    outputs  logits                                         float32 [batch, sequence, vocab]
             present.{i}.key / .value                       float32 [batch, kv_heads, total, head_dim]

Two weight encodings:
- "fp32": every tensor dequantized with the GGUF's own block formats (Q4_1 layers, Q8_0 embedding);
- "q4": the Q4_1 blocks kept exactly, as com.microsoft MatMulNBits (4 bits, block 32). Q4_1
  stores w = d*q + m per block; MatMulNBits computes (q - 8)*d, and the rest, (8d + m) per
  block, is added as that constant times the block's sum of inputs (see `linear`). Nothing is
  re-quantized: onnxruntime's own quantizers broke this model's logits when tried (MODELS.md).
The embedding table is the Q8_0 one dequantized, shared by the input Gather and the tied output
projection (a Gemm with transB), so both files hold it once.

llama.cpp's converter permutes the rows of attn_q/attn_k so that its adjacent-pair RoPE works;
they are permuted back here, so the graph uses the rotate-half RoPE of the original model (and
its KV cache holds the original model's keys). tests/test_generation.py checks both files
against a numpy forward pass over the GGUF's weights as stored, with adjacent-pair RoPE.
"""

from pathlib import Path

import numpy as np

from onnx_graph import Graph

Q4_1_BLOCK = 32
Q4_1_BYTES = 20  # f16 d, f16 m, 16 bytes of nibbles (low nibbles: elements 0-15, high: 16-31)


class Gguf:
    """The parts of a GGUF file the conversion reads: metadata values and tensors by name."""

    def __init__(self, path: Path):
        import gguf

        self.reader = gguf.GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}

    def value(self, key: str):
        return self.reader.fields[key].contents()

    def dequantized(self, name: str) -> np.ndarray:
        import gguf

        t = self.tensors[name]
        return np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)

    def q4_1_blocks(self, name: str):
        """(d, m, codes) of a Q4_1 matrix with rows = output features: d and m [rows, blocks]
        float32, codes [rows, blocks, 32] uint8 in element order."""
        import gguf

        t = self.tensors[name]
        if t.tensor_type != gguf.GGMLQuantizationType.Q4_1:
            raise ValueError(f"{name} is {t.tensor_type.name}, not Q4_1")
        rows = int(t.shape[1])
        raw = np.asarray(t.data).reshape(rows, -1, Q4_1_BYTES)
        d = raw[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        m = raw[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        nibbles = raw[:, :, 4:]
        codes = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)
        return d, m, codes


class Config:
    def __init__(self, g: Gguf):
        arch = g.value("general.architecture")
        if arch != "llama":
            raise ValueError(f"the GGUF's architecture is {arch!r}; this converter writes llama graphs")
        self.layers = int(g.value("llama.block_count"))
        self.hidden = int(g.value("llama.embedding_length"))
        self.heads = int(g.value("llama.attention.head_count"))
        self.kv_heads = int(g.value("llama.attention.head_count_kv"))
        self.head_dim = self.hidden // self.heads
        self.ffn = int(g.value("llama.feed_forward_length"))
        self.eps = float(g.value("llama.attention.layer_norm_rms_epsilon"))
        self.rope_theta = float(g.value("llama.rope.freq_base"))
        self.vocab = int(g.value("llama.vocab_size"))
        self.context = int(g.value("llama.context_length"))
        if int(g.value("llama.rope.dimension_count")) != self.head_dim:
            raise ValueError("partial RoPE is not supported")
        if "output.weight" in g.tensors:
            raise ValueError("the GGUF has an untied output.weight; this converter writes tied embeddings")


def unpermute_rows(rows: np.ndarray, heads: int) -> np.ndarray:
    """Undoes llama.cpp's q/k row permutation (HF rotate-half order -> adjacent pairs), on any
    per-row array (weights, block scales, codes): rows are whole output features."""
    n = rows.shape[0]
    half = n // heads // 2
    return rows.reshape(heads, half, 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def rows_of(weights: Gguf, names: list[tuple[str, int | None]], bits: str):
    """The GGUF matrices `names` (each with the head count whose q/k row permutation to undo, or
    None) stacked along their output rows: one float matrix, or Q4_1's (d, m, codes)."""
    if bits == "fp32":
        parts = [weights.dequantized(n) for n, _ in names]
        return np.concatenate([unpermute_rows(w, h) if h else w for w, (_, h) in zip(parts, names)])
    blocks = [weights.q4_1_blocks(n) for n, _ in names]
    blocks = [tuple(unpermute_rows(a, h) for a in b) if h else b for b, (_, h) in zip(blocks, names)]
    return tuple(np.concatenate(parts) for parts in zip(*blocks))


def linear(g: Graph, x: str, weights: Gguf, names: list[tuple[str, int | None]], bits: str, hint: str) -> str:
    """x [B,S,K] times the GGUF matrices `names` stacked (rows = output features) -> [B,S,N]:
    one MatMul for the q, k and v projections together, and for the gate and up ones."""
    label = names[0][0] if len(names) == 1 else "+".join(n for n, _ in names)
    if bits == "fp32":
        return g.op("MatMul", [x, g.init(label, rows_of(weights, names, bits).T)], hint)
    d, m, codes = rows_of(weights, names, bits)
    rows, blocks, _ = codes.shape
    packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)  # low nibble first along K
    main = g.op(
        "MatMulNBits",
        [x, g.init(label, packed), g.init(f"{label}.scales", d.reshape(rows * blocks))],
        hint,
        domain="com.microsoft",
        K=blocks * Q4_1_BLOCK,
        N=rows,
        bits=4,
        block_size=Q4_1_BLOCK,
    )
    # Without zero points MatMulNBits computes (q - 8)·d, its symmetric default, which every
    # execution provider implements (webgpu's kernel takes no float zero points). Q4_1's
    # w = d·q + m is that plus a per-block constant c = 8·d + m, whose product with x is c times
    # the block's sum of x: a [.., blocks] × [blocks, N] MatMul, 1/32 of the main one's work.
    sums = g.op("ReduceSum", [g.op("Reshape", [x, g.const([0, 0, blocks, Q4_1_BLOCK])], hint), g.const([-1])], hint, keepdims=0)
    correction = g.init(f"{label}.block_offsets", (8 * d + m).astype(np.float32).T)
    return g.op("Add", [main, g.op("MatMul", [sums, correction], hint)], hint)


def rms_norm(g: Graph, x: str, weights: Gguf, name: str, eps: float, hint: str) -> str:
    """RMSNorm as onnxruntime's SimplifiedLayerNormalization (one kernel on every execution
    provider, where the spelled-out Mul/ReduceMean/Add/Sqrt/Reciprocal/Mul/Mul took seven)."""
    weight = g.init(name, weights.dequantized(name))
    return g.op("SimplifiedLayerNormalization", [x, weight], hint, axis=-1, epsilon=eps, stash_type=1)


def build(gguf_path: Path, bits: str):
    """The ONNX model for `bits` ("fp32" or "q4").

    Each layer's attention is onnxruntime's GroupQueryAttention (com.microsoft): the packed
    q/k/v projection in, rotate-half RoPE from cos/sin tables applied inside, the KV cache
    concatenated (present = past + new), causal attention over the 3 KV heads shared by 9
    query heads. Every runtime webaccel drives implements it as a few kernels, where the same
    arithmetic in plain ONNX ops took about 50 nodes a layer; on the CPU-emulated WebGPU adapters
    each node is a dispatch, and the node count bounded the decode rate."""
    from onnx import TensorProto, helper

    weights = Gguf(gguf_path)
    c = Config(weights)
    g = Graph()
    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total_sequence"]),
        # Kept for the transformers.js/optimum layout; GroupQueryAttention takes each token's
        # position from the cache's length (the sequence is never left-padded here).
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, dims),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", c.vocab])]
    for i in range(c.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", c.kv_heads, "past_sequence", c.head_dim]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", c.kv_heads, "total_sequence", c.head_dim]))

    embedding = g.init("token_embd.weight", weights.dequantized("token_embd.weight"))
    x = g.op("Gather", [embedding, "input_ids"], "embed", axis=0)

    # RoPE tables for every position of the context: [context, head_dim / 2].
    inv_freq = 1.0 / (c.rope_theta ** (np.arange(0, c.head_dim, 2, dtype=np.float64) / c.head_dim))
    angles = np.arange(c.context, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = g.init("rope.cos", np.cos(angles).astype(np.float32))
    sin = g.init("rope.sin", np.sin(angles).astype(np.float32))

    # GroupQueryAttention's lengths from the attention mask: the index of each sequence's last
    # token (its length - 1) and the total length, both int32.
    seqlens = g.op("Cast", [g.op("Sub", [g.op("ReduceSum", ["attention_mask", g.const([1])], "lengths", keepdims=0), g.const([1])], "lengths")],
                   "lengths", to=TensorProto.INT32)
    total = g.op("Cast", [g.op("Gather", [g.op("Shape", ["attention_mask"], "lengths"), g.const(1)], "lengths", axis=0)],
                 "lengths", to=TensorProto.INT32)

    for i in range(c.layers):
        h = f"layer{i}"
        normed = rms_norm(g, x, weights, f"blk.{i}.attn_norm.weight", c.eps, h)
        qkv = linear(g, normed, weights, [(f"blk.{i}.attn_q.weight", c.heads), (f"blk.{i}.attn_k.weight", c.kv_heads), (f"blk.{i}.attn_v.weight", None)], bits, h)
        attended = g.op(
            "GroupQueryAttention",
            [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens, total, cos, sin],
            h,
            outputs=3,
            domain="com.microsoft",
            num_heads=c.heads,
            kv_num_heads=c.kv_heads,
            do_rotary=1,
            rotary_interleaved=0,
        )
        context = attended[0]
        g.nodes.append(helper.make_node("Identity", [attended[1]], [f"present.{i}.key"], name=f"{h}/present_key"))
        g.nodes.append(helper.make_node("Identity", [attended[2]], [f"present.{i}.value"], name=f"{h}/present_value"))
        x = g.op("Add", [x, linear(g, context, weights, [(f"blk.{i}.attn_output.weight", None)], bits, h)], h)

        normed = rms_norm(g, x, weights, f"blk.{i}.ffn_norm.weight", c.eps, h)
        both = linear(g, normed, weights, [(f"blk.{i}.ffn_gate.weight", None), (f"blk.{i}.ffn_up.weight", None)], bits, h)
        # Halves by Slice: ORT-web's webgpu Split without split sizes gave halves its binary ops then refused.
        gate = g.op("Slice", [both, g.const([0]), g.const([c.ffn]), g.const([-1])], h)
        up = g.op("Slice", [both, g.const([c.ffn]), g.const([2 * c.ffn]), g.const([-1])], h)
        silu = g.op("Mul", [gate, g.op("Sigmoid", [gate], h)], h)
        x = g.op("Add", [x, linear(g, g.op("Mul", [silu, up], h), weights, [(f"blk.{i}.ffn_down.weight", None)], bits, h)], h)

    x = rms_norm(g, x, weights, "output_norm.weight", c.eps, "head")
    # The tied output projection: a Gemm with transB over the embedding table itself (a
    # transposed copy would hold it twice), on the tokens flattened to 2-D.
    flat = g.op("Reshape", [x, g.const([-1, c.hidden])], "head")
    logits = g.op("Gemm", [flat, embedding], "head", transB=1)
    logits_shape = g.op("Concat", [g.op("Shape", ["input_ids"], "head"), g.const([c.vocab])], "head", axis=0)
    g.nodes.append(helper.make_node("Reshape", [logits, logits_shape], ["logits"], name="head/logits"))

    graph = helper.make_graph(g.nodes, "llama", inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="webaccel scripts/llama_gguf.py")
    model.ir_version = 8
    return model


def write_model(gguf_path: Path, bits: str, dst: Path) -> None:
    import onnx

    onnx.save_model(build(gguf_path, bits), str(dst))


def tokenizer_json(gguf_path: Path) -> dict:
    """A Hugging Face tokenizers file for the GGUF's byte-level BPE ("gpt2" model, "smollm"
    pre-tokenizer: digits one by one, then GPT-2's byte-level split)."""
    g = Gguf(gguf_path)
    if g.value("tokenizer.ggml.model") != "gpt2":
        raise ValueError(f"the GGUF's tokenizer is {g.value('tokenizer.ggml.model')!r}, not byte-level BPE")
    pre = g.value("tokenizer.ggml.pre")
    if pre != "smollm":
        raise ValueError(f"the GGUF's pre-tokenizer is {pre!r}; only smollm's is written here")
    tokens = list(g.value("tokenizer.ggml.tokens"))
    types = list(g.value("tokenizer.ggml.token_type"))
    merges = list(g.value("tokenizer.ggml.merges"))
    control = 3  # llama.cpp's token type for control (special) tokens
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, (t, kind) in enumerate(zip(tokens, types)) if kind == control
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [m.split(" ", 1) for m in merges]},
    }


def generation_json(gguf_path: Path) -> dict:
    """What a generator needs besides the graph: the chat template, special ids, the graph's
    shapes for an empty KV cache, the context limit."""
    g = Gguf(gguf_path)
    c = Config(g)
    fields = g.reader.fields
    return {
        "chat_template": g.value("tokenizer.chat_template") if "tokenizer.chat_template" in fields else None,
        "bos_token_id": int(g.value("tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(g.value("tokenizer.ggml.eos_token_id")),
        "add_bos_token": bool(g.value("tokenizer.ggml.add_bos_token")),
        "layers": c.layers,
        "kv_heads": c.kv_heads,
        "head_dim": c.head_dim,
        "vocab": c.vocab,
        "context_length": c.context,
    }
