"""Digests of an ONNX model that survive tf2onnx's generated names: its weights (each
initializer's bytes, order- and name-free) and its operators in graph order.

Two conversions of the same graph give the same weights and operators but may name
nodes differently, so the file's SHA-256 identifies the shipped file while these
identify what it computes. Prints ``weights <hex>`` and ``operators <hex>``.
"""

from __future__ import annotations

import hashlib
import sys

import onnx
from onnx import numpy_helper


def _tensor_digest(tensor: onnx.TensorProto) -> str:
    array = numpy_helper.to_array(tensor)
    head = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(head + array.tobytes()).hexdigest()


def digests(path: str) -> tuple[str, str]:
    model = onnx.load(path)
    weights = sorted(_tensor_digest(t) for t in model.graph.initializer)
    operators = ",".join(f"{n.domain}:{n.op_type}" for n in model.graph.node)
    return (hashlib.sha256("\n".join(weights).encode()).hexdigest(),
            hashlib.sha256(operators.encode()).hexdigest())


if __name__ == "__main__":
    weights, operators = digests(sys.argv[1])
    print(f"weights {weights}")
    print(f"operators {operators}")
