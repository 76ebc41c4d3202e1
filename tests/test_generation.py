"""Text generation (SmolLM2-135M-Instruct): the converted graphs against an independent numpy
forward pass over the packaged GGUF, and greedy generation in the browsers against native
onnxruntime on the same file.

The numpy reference reads the GGUF's tensors as stored, dequantized by the `gguf` package's own
code, and follows llama.cpp's arithmetic: adjacent-pair RoPE on the rows as llama.cpp's
converter permuted them, no KV cache (every step recomputes the whole sequence). The ONNX
graphs undo the permutation, use rotate-half RoPE and carry a KV cache, so agreement checks the
conversion, the cache and the 4-bit block mapping at once.
"""

import json

import numpy as np
import pytest

import reference
from conftest import last_json_line

MODEL = "smollm2-135m-instruct"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
]
# Logits span about ±30. fp32 in a different order of summation differs by ~1e-4; the 4-bit
# file computes (q - 8)·d plus (8d + m)·Σx per block instead of d·q + m: a few roundings apart.
LOGIT_TOLERANCE = {32: 2e-3, 4: 5e-3}


def gguf_path():
    return reference.packaged_path(reference.spec(MODEL)["source"])


class NumpyLlama:
    """llama.cpp's forward pass over the GGUF as stored, in float32."""

    def __init__(self, path):
        import gguf

        r = gguf.GGUFReader(str(path))
        field = lambda k: r.fields[k].contents()  # noqa: E731
        self.w = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32) for t in r.tensors}
        self.layers = int(field("llama.block_count"))
        self.heads = int(field("llama.attention.head_count"))
        self.kv_heads = int(field("llama.attention.head_count_kv"))
        self.dim = int(field("llama.embedding_length")) // self.heads
        self.eps = float(field("llama.attention.layer_norm_rms_epsilon"))
        self.theta = float(field("llama.rope.freq_base"))

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x):
        """x [S, H, D], adjacent pairs (2i, 2i+1) rotated by pos·θ^(-2i/D)."""
        s = x.shape[0]
        freqs = self.theta ** (-np.arange(0, self.dim, 2, dtype=np.float64) / self.dim)
        angles = np.arange(s, dtype=np.float64)[:, None] * freqs[None]
        cos, sin = np.cos(angles)[:, None, :].astype(np.float32), np.sin(angles)[:, None, :].astype(np.float32)
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def logits(self, ids):
        w, s = self.w, len(ids)
        x = w["token_embd.weight"][ids]
        causal = np.triu(np.full((s, s), -np.inf, dtype=np.float32), 1)
        group = self.heads // self.kv_heads
        for i in range(self.layers):
            h = self.norm(x, w[f"blk.{i}.attn_norm.weight"])
            q = self.rope((h @ w[f"blk.{i}.attn_q.weight"].T).reshape(s, self.heads, self.dim))
            k = self.rope((h @ w[f"blk.{i}.attn_k.weight"].T).reshape(s, self.kv_heads, self.dim))
            v = (h @ w[f"blk.{i}.attn_v.weight"].T).reshape(s, self.kv_heads, self.dim)
            out = np.empty_like(q)
            for head in range(self.heads):
                kv = head // group
                scores = q[:, head] @ k[:, kv].T / np.sqrt(self.dim) + causal
                p = np.exp(scores - scores.max(axis=-1, keepdims=True))
                out[:, head] = (p / p.sum(axis=-1, keepdims=True)) @ v[:, kv]
            x = x + out.reshape(s, -1) @ w[f"blk.{i}.attn_output.weight"].T
            h = self.norm(x, w[f"blk.{i}.ffn_norm.weight"])
            gate = h @ w[f"blk.{i}.ffn_gate.weight"].T
            up = h @ w[f"blk.{i}.ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w[f"blk.{i}.ffn_down.weight"].T
        return self.norm(x, w["output_norm.weight"]) @ w["token_embd.weight"].T

    def greedy(self, ids, n, eos):
        ids, out = list(ids), []
        for _ in range(n):
            token = int(np.argmax(self.logits(ids)[-1]))
            out.append(token)
            if token == eos:
                break
            ids.append(token)
        return out


@pytest.fixture(scope="module")
def numpy_llama():
    return NumpyLlama(gguf_path())


@pytest.mark.parametrize("precision", [32, 4])
def test_converted_graph_matches_a_numpy_forward_pass_over_the_gguf(numpy_llama, precision):
    ids = reference.prompt_ids(MODEL, PROMPTS[0])
    settings = json.loads(reference.sidecar(MODEL, "settings").read_text())
    session = reference._session(str(reference.model_path(MODEL, precision)), 2)
    feeds = {
        "input_ids": np.array([ids]),
        "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        "position_ids": np.arange(len(ids))[None],
    }
    for i in range(settings["layers"]):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{i}.{kind}"] = np.zeros((1, settings["kv_heads"], 0, settings["head_dim"]), np.float32)
    got = session.run(["logits"], feeds)[0][0]
    want = numpy_llama.logits(ids)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < LOGIT_TOLERANCE[precision], np.abs(got - want).max()
    # The KV-cache path (onnxruntime, token by token) against full recomputation (numpy).
    assert reference.greedy(MODEL, ids, 8, precision, threads=2) == numpy_llama.greedy(ids, 8, settings["eos_token_id"])


def test_the_tokenizer_and_chat_template_agree_with_hugging_face(run_script):
    """webaccel's prompt (minijinja + tokenizers in Rust) is the one Jinja2 + HF tokenizers
    make: the native greedy run from webaccel's ids equals the one from Python's ids."""
    code = "\n".join(
        f'let r = accelerate("{MODEL}", {json.dumps(p)}, #{{platform: "native", max_new_tokens: 6, runs: 1, warmup: 0, warmup_s: 0, accuracy: false}});'
        "\nprint(#{tokens: r.tokens, text: r.output, prompt: r.details.prompt}.to_json());"
        for p in PROMPTS[:2]
    )
    out = run_script(code).stdout.strip().splitlines()
    for prompt, line in zip(PROMPTS, out):
        got = json.loads(line)
        ids = reference.prompt_ids(MODEL, prompt)
        assert got["tokens"] == reference.greedy(MODEL, ids, 6), prompt
        assert got["prompt"].startswith(f"{len(ids)} tokens, through the model's chat template")
        assert got["text"] and isinstance(got["text"], str)


def generations(run_script, cells, prompts, max_new_tokens, extra=""):
    """Runs each (platform, browser, precision) cell on each prompt in one `webaccel run` (each
    browser starts once); returns {(platform, browser, precision, prompt): result}."""
    lines = []
    for platform, browser, precision in cells:
        for prompt in prompts:
            lines.append(
                f'let r = accelerate("{MODEL}", {json.dumps(prompt)}, #{{platform: "{platform}", browser: "{browser}", '
                f"precision: {precision}, max_new_tokens: {max_new_tokens}, runs: 1, warmup: 0, warmup_s: 0, "
                f"precompile_shaders: false, accuracy: false{extra}}});\n"
                f'print(#{{key: ["{platform}", "{browser}", {precision}, {json.dumps(prompt)}], tokens: r.tokens, '
                "ttft: r.ttft_ms, decode: r.decode_tokens_per_s, per_token: r.per_token_ms, platform: r.platform, "
                "nodes_on_ep: r.nodes_on_ep, nodes_total: r.nodes_total}.to_json());"
            )
    out = run_script("\n".join(lines), timeout=1800).stdout.strip().splitlines()
    return {tuple(r["key"]): r for r in map(json.loads, out)}


def test_greedy_generation_in_the_browsers_equals_native_onnxruntime(run_script):
    """16 tokens of three prompts on wasm (fp32, fp16 and the 4-bit file) and webnn
    (headless-shell), token for token as onnxruntime's greedy decoding on the same file."""
    cells = [("wasm", "chromium", 32), ("wasm", "chromium", 16), ("wasm", "chromium", 4), ("webnn", "headless-shell", 32)]
    got = generations(run_script, cells, PROMPTS, 16)
    for platform, browser, precision in cells:
        for prompt in PROMPTS:
            r = got[(platform, browser, precision, prompt)]
            want = reference.greedy(MODEL, reference.prompt_ids(MODEL, prompt), 16, precision)
            assert r["tokens"] == want, (platform, precision, prompt, r["tokens"], want)
            assert r["platform"] == platform and r["ttft"] > 0
            assert len(want) < 2 or (r["decode"] > 0 and r["per_token"]["p50"] > 0)
            if platform == "webnn":
                # The KV cache's growing shapes keep most nodes off WebNN; the row says how many.
                assert 0 < r["nodes_on_ep"] < r["nodes_total"], r


def test_a_seeded_sampled_generation_repeats_and_matches_native(run_script):
    """temperature/top_k/seed: the page and native onnxruntime draw the same tokens."""
    prompt = PROMPTS[1]
    extra = ", temperature: 0.8, top_k: 40, seed: 7"
    got = generations(run_script, [("wasm", "chromium", 32), ("native", "auto", 32)], [prompt], 12, extra)
    wasm, native = got[("wasm", "chromium", 32, prompt)], got[("native", "auto", 32, prompt)]
    greedy = reference.greedy(MODEL, reference.prompt_ids(MODEL, prompt), 12)
    assert wasm["tokens"] == native["tokens"] and wasm["tokens"] != greedy


def test_compare_across_platforms_in_chromium_and_firefox_gives_ttft_and_decode_rates_per_cell(run_script, db_path):
    """One grid: SmolLM2 at 32 and 4 bits on wasm, webnn and webgpu, each platform in the
    browser webaccel picks for it (Chromium; headless-shell for webnn) and in Firefox; then fp16
    on webgpu in the browser webaccel picks (Firefox: Chromium's adapter lacks shader-f16). Every
    cell that runs has TTFT and decode tokens/s with their intervals; Firefox's webnn cells are
    rows that say why not. On webgpu (here the CPU-emulated adapters, SwiftShader and lavapipe:
    minutes per generation, so one timed generation per cell, whose intervals are null) the 8
    fp32 tokens are native onnxruntime's, token for token, and so are the 4-bit and fp16 files'
    for this prompt. (fp16 has its own small grid: in the big one, Firefox's fp16 webgpu cell
    ran twice, picked and named, minutes each; wasm's fp16 is in the greedy test.)"""
    proc = run_script(
        f"""
        let g = compare(#{{models: ["{MODEL}"], platforms: ["wasm", "webnn", "webgpu"], browsers: ["auto", "firefox"],
                          precisions: [32, 4], max_new_tokens: 8, runs: 1, warmup: 0, warmup_s: 0,
                          precompile_shaders: false}});
        let h = compare(#{{models: ["{MODEL}"], platforms: ["webgpu"], precisions: [16], max_new_tokens: 8, runs: 1,
                          warmup: 0, warmup_s: 0, precompile_shaders: false}});
        print(#{{rows: g.rows() + h.rows(), plots: g.plots.len()}}.to_json());
        """,
        timeout=2400,
    )
    grid = last_json_line(proc.stdout)
    ran = {(b, p, bits) for b in ("chromium", "firefox") for p in ("wasm", "webgpu") for bits in (32, 4)}
    ran |= {("headless-shell", "webnn", bits) for bits in (32, 4)} | {("firefox", "webgpu", 16)}
    measured = [c for c in grid["rows"] if c.get("n")]
    assert ran == {(c["browser"], c["platform"], c["precision"]) for c in measured}, grid["rows"]
    assert sum(c["n"] for c in measured) == len(ran), measured
    for c in measured:
        assert c["ttft_ms"] > 0 and c["decode_tokens_per_s"] > 0, c
        if c["n"] >= 2:
            assert c["decode_tokens_per_s_ci_low"] <= c["decode_tokens_per_s"] <= c["decode_tokens_per_s_ci_high"], c
            assert c["ttft_ms_ci_low"] <= c["ttft_ms"] <= c["ttft_ms_ci_high"], c
        else:
            # One sample has no interval, and the frame says so rather than inventing one.
            assert c["decode_tokens_per_s_ci_low"] is None and c["ttft_ms_ci_high"] is None, c
        # The default prompt's 8 tokens, each as native fp32 chose it (measured here for every
        # precision; a lower precision that drifted would show here as fewer leading tokens).
        assert c["accuracy_tokens_leading"] == 8 and c["accuracy_tokens_share"] == 1.0, c
    assert grid["plots"] >= 3, "latency, decode rate and TTFT"
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    samples = con.execute("select len(ttfts_ms), len(decode_rates) from runs where status = 'ok'").fetchall()
    assert len(samples) == len(ran) and all(s == (1, 1) for s in samples), samples
    refused = con.execute("select browser, platform, error from runs where status = 'error'").fetchall()
    assert len(refused) == 2 and all(b == "firefox" and p == "webnn" and "lacks webnn" in e for b, p, e in refused), refused
    picked = con.execute("select selection_reason from runs where platform = 'webgpu' and precision = 16 and selection_reason is not null").fetchall()
    assert any("shader-f16" in r[0] for r in picked), picked
    adapters = con.execute("select distinct adapter_software from runs where platform = 'webgpu'").fetchall()
    assert adapters == [(True,)], "every WebGPU figure here is from a CPU-emulated adapter, and says so"


def test_bad_generation_requests_say_what_to_do(run_script):
    """Errors before anything runs: generation options on a model that does not generate, a
    prompt that is not a string, a prompt past the context, and sampling options out of range."""
    cases = {
        'accelerate("all-minilm-l6-v2", "hi", #{max_new_tokens: 4})': "applies only to text-generation and speech models",
        f'accelerate("{MODEL}", ["a", "b"], #{{platform: "native"}})': "must be a prompt (a string)",
        f'accelerate("{MODEL}", {json.dumps("word " * 9000)}, #{{platform: "native", chat: false}})': "past the model's context of 8192",
        f'accelerate("{MODEL}", "hi", #{{temperature: -1}})': "between 0 and 100",
        f'accelerate("{MODEL}", "hi", #{{max_new_tokens: 0}})': "between 1 and 4096",
    }
    code = "\n".join(f"try {{ {call}; print(\"no error\"); }} catch (e) {{ print(`${{e}}`); }}" for call in cases)
    out = run_script(code).stdout.strip().splitlines()
    assert len(out) == len(cases), out
    for (call, expected), line in zip(cases.items(), out):
        assert expected in line, (call, line)
