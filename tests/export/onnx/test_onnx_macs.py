"""ONNX MAC counting from the file alone: ViT-B/16-shaped graph and small hand-counted graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx.macs import OnnxMacsError, count_onnx_macs

F = TensorProto.FLOAT


def _const(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _vit_b16(n_blocks: int = 12) -> tuple[onnx.ModelProto, list[str]]:
    """ViT-B/16 at 224²: weights are graph inputs (shared by all blocks), so the file is tiny."""
    d, n, h, hd, mlp = 768, 197, 12, 64, 3072
    weights = {
        "w_patch": [d, 3, 16, 16],
        "cls": [1, 1, d],
        "ln_s": [d],
        "wq": [d, d],
        "wk": [d, d],
        "wv": [d, d],
        "wo": [d, d],
        "w1": [d, mlp],
        "w2": [mlp, d],
        "w_head": [d, 1000],
    }
    inputs = [helper.make_tensor_value_info("image", F, ["batch", 3, 224, 224])]
    inputs += [helper.make_tensor_value_info(k, F, s) for k, s in weights.items()]
    inits = [
        _const("s_tok", [-1, d, 196]),
        _const("s_heads", [-1, n, h, hd]),
        _const("s_merge", [-1, n, d]),
        _const("idx0", [0]),
    ]
    mk = helper.make_node
    nodes = [
        mk("Conv", ["image", "w_patch"], ["p"], strides=[16, 16], kernel_shape=[16, 16]),
        mk("Reshape", ["p", "s_tok"], ["p2"]),
        mk("Transpose", ["p2"], ["p3"], perm=[0, 2, 1]),
        mk("Gather", ["p3", "idx0"], ["first"], axis=1),  # [B, 1, D]: the batch size as a shape
        mk("Mul", ["first", "zero"], ["first0"]),
        mk("Add", ["first0", "cls"], ["cls_b"]),  # cls broadcast to [B, 1, D]
        mk("Concat", ["cls_b", "p3"], ["x0"], axis=1),
    ]
    inits.append(numpy_helper.from_array(np.zeros(1, np.float32), "zero"))
    x = "x0"
    for i in range(n_blocks):
        b = f"b{i}_"
        nodes += [
            mk("LayerNormalization", [x, "ln_s"], [b + "ln"], axis=-1),
            *[mk("MatMul", [b + "ln", w], [b + w]) for w in ("wq", "wk", "wv")],
            *[mk("Reshape", [b + w, "s_heads"], [b + w + "r"]) for w in ("wq", "wk", "wv")],
            mk("Transpose", [b + "wqr"], [b + "q"], perm=[0, 2, 1, 3]),
            mk("Transpose", [b + "wkr"], [b + "kt"], perm=[0, 2, 3, 1]),
            mk("Transpose", [b + "wvr"], [b + "v"], perm=[0, 2, 1, 3]),
            mk("MatMul", [b + "q", b + "kt"], [b + "s"]),
            mk("Softmax", [b + "s"], [b + "a"], axis=-1),
            mk("MatMul", [b + "a", b + "v"], [b + "o"]),
            mk("Transpose", [b + "o"], [b + "ot"], perm=[0, 2, 1, 3]),
            mk("Reshape", [b + "ot", "s_merge"], [b + "om"]),
            mk("MatMul", [b + "om", "wo"], [b + "proj"]),
            mk("Add", [x, b + "proj"], [b + "x1"]),
            mk("MatMul", [b + "x1", "w1"], [b + "h"]),
            mk("Relu", [b + "h"], [b + "hr"]),
            mk("MatMul", [b + "hr", "w2"], [b + "m"]),
            mk("Add", [b + "x1", b + "m"], [b + "x2"]),
        ]
        x = b + "x2"
    nodes += [
        mk("Gather", [x, "idx0"], ["cls_tok"], axis=1),
        mk("MatMul", ["cls_tok", "w_head"], ["logits"]),
    ]
    out = helper.make_tensor_value_info("logits", F, ["batch", 1, 1000])
    graph = helper.make_graph(nodes, "vit_b16", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, list(weights)


def test_vit_b16_macs_match_digest_hand_count() -> None:
    model, weights = _vit_b16()
    onnx.checker.check_model(model)
    macs = count_onnx_macs(model, dims={"batch": 1}, static_inputs=weights)
    # patch embed 196·768·(3·16·16) = 115,605,504; per block 12·N·D² + 2·N²·D with N=197,
    # D=768: 1,394,343,936 + 59,610,624 = 1,453,954,560; ×12 = 17,447,454,720; head 768·1000.
    assert macs.total == 17_563_828_224
    assert macs.act_x_act == 12 * 59_610_624  # QKᵀ and AV only
    assert macs.bias_adds == 0
    assert dict(macs.other_ops)["LayerNormalization"] == 12
    # Batch 2 doubles every count (the file is counted for the batch it is fixed to).
    assert count_onnx_macs(model, dims={"batch": 2}, static_inputs=weights).total == (
        2 * 17_563_828_224
    )


def test_vit_weights_as_inputs_are_activations_unless_declared() -> None:
    model, _ = _vit_b16(n_blocks=1)
    macs = count_onnx_macs(model, dims={"batch": 1})
    # Undeclared weight inputs look like activations: every MatMul is then act×act.
    assert macs.act_x_act == sum(n.macs for n in macs.nodes if n.op_type == "MatMul")


def _single(node: onnx.NodeProto, ins: dict, out: str, inits=()) -> onnx.ModelProto:
    vis = [helper.make_tensor_value_info(k, F, s) for k, s in ins.items()]
    graph = helper.make_graph(
        [node], "g", vis, [helper.make_tensor_value_info(out, F, None)], initializer=list(inits)
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_small_graphs_hand_counts() -> None:
    w = numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(6, np.float32), "bias")
    conv = helper.make_node(
        "Conv", ["x", "w", "bias"], ["y"], group=2, pads=[1, 1, 1, 1], strides=[2, 2]
    )
    c = count_onnx_macs(_single(conv, {"x": [1, 4, 7, 7]}, "y", [w, bias]))
    # out 6×4×4 = 96 elements, each 2 input channels · 9 taps = 18 MACs → 1728; 96 bias adds
    assert (c.total, c.bias_adds, c.act_x_act) == (1728, 96, 0)
    gemm = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1)
    g = count_onnx_macs(_single(gemm, {"a": [5, 3], "b": [4, 5], "c": [4]}, "y"))
    assert (g.total, g.bias_adds) == (3 * 4 * 5, 12)  # A ᵀ: M=3, K=5; Bᵀ: N=4
    mm = helper.make_node("MatMul", ["a", "b"], ["y"])
    m = count_onnx_macs(_single(mm, {"a": [2, 1, 3, 5], "b": [4, 5, 7]}, "y"))
    assert m.total == 2 * 4 * 3 * 7 * 5 and m.act_x_act == m.total  # broadcast batch 2·4
    vec = count_onnx_macs(_single(mm, {"a": [5], "b": [3, 5, 7]}, "y"))
    assert vec.total == 3 * 7 * 5  # 1-D left operand: M = 1
    ein = helper.make_node("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")
    e = count_onnx_macs(_single(ein, {"a": [2, 3, 4], "b": [2, 4, 5]}, "y"))
    assert e.total == 2 * 3 * 4 * 5


def test_errors_name_the_problem() -> None:
    mm = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = _single(mm, {"a": ["n", 3], "b": [3, 2]}, "y")
    with pytest.raises(OnnxMacsError, match="'n'"):
        count_onnx_macs(model)
    assert count_onnx_macs(model, dims={"n": 4}).total == 24
