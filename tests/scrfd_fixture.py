"""Tiny random-weight ONNX model laid out like insightface's SCRFD face detectors.

Tests use it so that insightface's real detection path (``model_zoo.get_model`` ->
``SCRFD.prepare`` -> ``SCRFD.detect``, or ``FaceAnalysis`` on a folder holding the file) runs
offline, without the buffalo_l ``det_10g.onnx`` weights. The graph copies the layout of
``det_10g.onnx`` / ``scrfd_10g_bnkps``: one NCHW float input ``input.1`` (height and width
dynamic unless ``input_size`` is given) and nine unbatched outputs in insightface's order
(scores for strides 8/16/32, then boxes, then keypoints), shaped ``(n, 1)``, ``(n, 4)`` and
``(n, 10)`` with ``n = (H / stride) * (W / stride) * 2`` (two anchors per location). Nine
outputs are what make ``get_model`` pick ``SCRFD``.

The weights are random and detect nothing real. Each score map is standardised per image
(InstanceNormalization), so about 1% of the anchors of an ordinary photo score above 0.5:
some 60-160 boxes after NMS at 640x640. The first convolution is edge-padded and zero-mean
and the trunk has no biases, so flat regions give exactly zero features: an all-black or
uniform square image yields no detections (a uniform non-square one is letterboxed, and its
border with the black padding can fire). Box distances lie between 1 and 4 strides, so
every box has x1 < x2 and y1 < y2 (boxes near the image edge may extend past it, as with
the real model); keypoints stay within 2 strides of their anchor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
INPUT_NAME = "input.1"
WIDTHS = {"score": 1, "bbox": 4, "kps": 10}  # per-anchor values in each output kind
_SCORE_GAIN = 4.0  # logit = gain * (z - cutoff): z >= cutoff => score >= 0.5
_SCORE_CUTOFF = 3.5  # z-score cutoff: ~1% of anchors on photos (the maps are right-skewed)


def build_random_scrfd(path: str | Path, *, seed: int = 0, input_size: int | None = None) -> Path:
    """Write a random SCRFD-layout detector (about 45 KB) to ``path`` and return the path.

    ``input_size=None`` gives dynamic height/width like det_10g.onnx; an int fixes a square
    input of that size (it must be a multiple of 32) and the output shapes with it.
    """
    if input_size is not None and (input_size <= 0 or input_size % 32):
        raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
    rng = np.random.default_rng(seed)
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: object, dtype: type = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def conv(name: str, x: str, c_in: int, c_out: int, k: int, stride: int, kind: str = "") -> str:
        w = rng.normal(0.0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k))
        b = np.zeros(c_out) if kind else rng.normal(0.0, 0.05, c_out)
        pads = [k // 2] * 4
        if kind == "highpass":  # edge-padded, zero-mean kernels: flat input -> exactly 0
            w -= w.mean(axis=(2, 3), keepdims=True)
            edge = const(f"{name}.pads", [0, 0, k // 2, k // 2] * 2, np.int64)
            x, pads = op("Pad", [x, edge], f"{name}.pad", mode="edge"), [0] * 4
        elif kind == "nonneg":
            w = np.abs(w)
        attrs = {"kernel_shape": [k, k], "strides": [stride, stride], "pads": pads}
        ins = [x, const(f"{name}.w", w), const(f"{name}.b", b)]
        nodes.append(helper.make_node("Conv", ins, [name], name=name, **attrs))
        return name

    def op(op_type: str, ins: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op_type, ins, [out], name=out, **attrs))
        return out

    # Trunk: five stride-2 convolutions; stages 3/4/5 are the stride 8/16/32 feature maps.
    # Bias-free ReLU after a high-pass first layer, so flat regions stay exactly 0 throughout.
    x, c_in, feats = INPUT_NAME, 3, []
    for i, c_out in enumerate((8, 16, 16, 16, 16)):
        kind = "highpass" if i == 0 else "nobias"
        x = op("Relu", [conv(f"trunk{i}", x, c_in, c_out, 3, 2, kind)], f"trunk{i}.relu")
        c_in = c_out
        if i >= 2:
            feats.append(x)

    scale = const("score.gain", np.full(NUM_ANCHORS, _SCORE_GAIN))
    shift = const("score.shift", np.full(NUM_ANCHORS, -_SCORE_GAIN * _SCORE_CUTOFF))
    half_dist, mid_dist = const("box.half", 1.5), const("box.mid", 2.5)
    kps_gain = const("kps.gain", 2.0)
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for stride, feat in zip(STRIDES, feats, strict=True):
        s = f"s{stride}"
        logit = conv(f"{s}.cls", feat, c_in, NUM_ANCHORS, 1, 1, "nonneg")  # flat -> 0 = min
        normed = op("InstanceNormalization", [logit, scale, shift], f"{s}.cls.in", epsilon=1e-3)
        box = op("Tanh", [conv(f"{s}.box", feat, c_in, NUM_ANCHORS * 4, 1, 1)], f"{s}.box.t")
        box = op("Mul", [box, half_dist], f"{s}.box.mul")
        kps = op("Tanh", [conv(f"{s}.kps", feat, c_in, NUM_ANCHORS * 10, 1, 1)], f"{s}.kps.t")
        heads = {
            "score": op("Sigmoid", [normed], f"{s}.cls.sig"),
            # tanh in [-1, 1] -> distance in [1, 4] strides (SCRFD multiplies by the stride).
            "bbox": op("Add", [box, mid_dist], f"{s}.box.dist"),
            "kps": op("Mul", [kps, kps_gain], f"{s}.kps.off"),
        }
        for kind, tensor in heads.items():
            # (1, A*k, h, w) -> (1, h, w, A*k) -> (h*w*A, k): anchor-minor, as SCRFD decodes.
            nhwc = op("Transpose", [tensor], f"{s}.{kind}.nhwc", perm=[0, 2, 3, 1])
            shape = const(f"{s}.{kind}.shape", [-1, WIDTHS[kind]], np.int64)
            outputs[kind].append(op("Reshape", [nhwc, shape], f"{kind}_{stride}"))

    graph_outputs = []
    for kind in ("score", "bbox", "kps"):
        for stride, name in zip(STRIDES, outputs[kind], strict=True):
            rows: int | str = f"anchors_{stride}"
            if input_size is not None:
                rows = (input_size // stride) ** 2 * NUM_ANCHORS
            graph_outputs.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, [rows, WIDTHS[kind]])
            )
    side: list[int | str] = ["height", "width"] if input_size is None else [input_size, input_size]
    graph_input = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, *side])
    graph = helper.make_graph(nodes, "random_scrfd", [graph_input], graph_outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="scrfd_fixture"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out))
    return out
