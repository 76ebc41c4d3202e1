"""A small ONNX graph builder shared by the converters that write whole models from weights
(scripts/llama_gguf.py, scripts/whisper_ct2.py)."""

import numpy as np


class Graph:
    """A small builder over onnx.helper: named nodes, initializers, constants."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type: str, inputs: list[str], hint: str, outputs: int = 1, domain: str = "", **attrs):
        from onnx import helper

        names = [self.name(f"{hint}/{op_type}") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=self.name(hint), domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        # (np.ascontiguousarray would turn a scalar into shape [1].)
        self.inits.append(numpy_helper.from_array(np.array(array, order="C", copy=True), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        return self.init(self.name("const"), np.array(value, dtype=dtype))
