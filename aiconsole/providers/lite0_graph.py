"""EfficientNet-Lite0 as an ONNX graph, built with onnx.helper from a state dict (no torch).

The architecture follows the reference the weights were converted for, the `efficientnet_lite_pytorch`
package (ML Illustrated's Lite variant of lukemelas' EfficientNet-PyTorch; its layer names are the state
dict's keys): a 3x3 stride-2 stem of 32 channels, 16 MBConv blocks in 7 stages without squeeze-and-excite,
ReLU6 everywhere, a 1x1 head of 1280 channels, global average pooling and a 1000-way linear layer. The stem
and head are not scaled (Lite's fixed stem/head). Convolutions pad like TensorFlow's "SAME" (the extra pixel,
if any, after), computed for the fixed 224 x 224 input as the reference's static padding does. Batch norms
(epsilon 1e-3) are folded into the preceding convolutions, so the graph holds only Conv, Clip, Add,
GlobalAveragePool, Flatten, Gemm and Softmax. Output: softmax probabilities over the ImageNet-1k classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INPUT_SIZE = 224
BN_EPSILON = 1e-3
OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# (repeats, kernel, stride, expand ratio, input channels, output channels) per stage: efficientnet_lite_builder's
# 'r1_k3_s11_e1_i32_o16', ..., 'r1_k3_s11_e6_i192_o320' (Lite0: width and depth multipliers 1.0).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


class _Graph:
    """Collects nodes and initializers; names are unique by a running number."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import numpy_helper

        self.weights = weights
        self.nodes: list[Any] = []
        self.initializers = [numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"),
                             numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max")]
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, prefix: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(prefix)
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int, groups: int, side: int,
                relu6: bool) -> tuple[str, int]:
        """Conv `conv` with batch norm `bn` folded in (and ReLU6); returns the output and its spatial side."""
        w = self.weights[f"{conv}.weight"].astype(np.float64)
        gamma, beta, mean, var = (self.weights[f"{bn}.{k}"].astype(np.float64)
                                  for k in ("weight", "bias", "running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPSILON)
        kernel = w.shape[-1]
        out_side = -(-side // stride)
        pad = max((out_side - 1) * stride + kernel - side, 0)
        before, after = pad // 2, pad - pad // 2
        y = self.node("Conv", [x, self.constant("w", w * scale[:, None, None, None]),
                               self.constant("b", beta - mean * scale)], "conv",
                      kernel_shape=[kernel, kernel], strides=[stride, stride], group=groups,
                      pads=[before, before, after, after])
        if relu6:
            y = self.node("Clip", [y, "relu6_min", "relu6_max"], "relu6")
        return y, out_side


def build_model(weights: dict[str, np.ndarray]) -> Any:
    """The checked ONNX ModelProto of EfficientNet-Lite0 with these weights (input NCHW float 224 x 224)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(weights)
    x, side = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", stride=2, groups=1, side=INPUT_SIZE, relu6=True)
    index = 0
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            block, inputs = f"_blocks.{index}", x
            channels_in = cin if r == 0 else cout
            hidden = channels_in * expand
            if expand != 1:
                x, _ = g.conv_bn(x, f"{block}._expand_conv", f"{block}._bn0", stride=1, groups=1, side=side,
                                 relu6=True)
            step = stride if r == 0 else 1
            if weights[f"{block}._depthwise_conv.weight"].shape != (hidden, 1, kernel, kernel):
                raise ValueError(f"{block} does not have a {kernel}x{kernel} depthwise convolution of {hidden}")
            x, side = g.conv_bn(x, f"{block}._depthwise_conv", f"{block}._bn1", stride=step, groups=hidden,
                                side=side, relu6=True)
            x, _ = g.conv_bn(x, f"{block}._project_conv", f"{block}._bn2", stride=1, groups=1, side=side,
                             relu6=False)
            if step == 1 and channels_in == cout:  # identity skip (no drop-connect at inference)
                x = g.node("Add", [x, inputs], "skip")
            index += 1
    if f"_blocks.{index}._project_conv.weight" in weights:
        raise ValueError(f"the weights have more than the {index} blocks of EfficientNet-Lite0")
    x, _ = g.conv_bn(x, "_conv_head", "_bn1", stride=1, groups=1, side=side, relu6=True)
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x], "pool")], "features")
    logits = g.node("Gemm", [x, g.constant("fc_w", weights["_fc.weight"]), g.constant("fc_b", weights["_fc.bias"])],
                    "logits", transB=1)
    g.nodes.append(helper.make_node("Softmax", [logits], [OUTPUT_NAME], axis=1))
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", weights["_fc.bias"].shape[0]])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="aiconsole", doc_string=__doc__.splitlines()[0] if __doc__ else "")
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases older than the onnx package
    onnx.checker.check_model(model)
    return model
