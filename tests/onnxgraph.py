"""Checks on ONNX files the project writes."""
from __future__ import annotations

from pathlib import Path


def assert_every_conv_reads_int8(path: Path) -> None:
    """Every convolution of the graph at ``path`` reads int8 weights and quantised activations, and
    no weight is float16 (a statically quantised QDQ graph, as ``ml.modelfiles.quantize_int8`` writes)."""
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {init.name: init.data_type for init in graph.initializer}
    dequantized = {node.output[0]: weights.get(node.input[0])
                   for node in graph.node if node.op_type == "DequantizeLinear"}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert convs and all(dequantized.get(node.input[1]) == onnx.TensorProto.INT8 for node in convs)
    assert all(node.input[0] in dequantized for node in convs)
    assert onnx.TensorProto.FLOAT16 not in weights.values()
