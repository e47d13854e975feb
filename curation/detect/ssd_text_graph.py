"""Companion text graph that lets OpenCV DNN run a TF Object Detection API SSD frozen graph.

Why: a frozen TF-OD SSD graph (e.g. ``ssdlite_mobilenet_v2_coco``) builds anchors, decodes boxes
and runs NMS (``MultipleGridAnchorGenerator``, ``Postprocessor``) with dynamic shapes and
TensorArray while-loops that OpenCV's TensorFlow importer cannot import, so
``cv2.dnn.readNetFromTensorflow(pb)`` alone fails (``parseBias`` on ``.../add_18``). OpenCV's
documented route (sample ``tf_text_graph_ssd.py``; this is an independent re-implementation) is
a companion ``.pbtxt`` giving only the topology: the ``writeTextGraph`` dump minus constants,
``Identity`` nodes, the resize loop, anchor generator and postprocessor (the kept feature
extractor and ``BoxPredictor_i`` convolutions still read their weights from the ``.pb``), plus
OpenCV ``PriorBox`` layers (TF's SSD anchors), sigmoid scores and a ``DetectionOutput`` (NMS)::

    write_ssd_text_graph(pb, pbtxt)
    net = cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))
    net.setInput(cv2.dnn.blobFromImage(img_bgr, size=(300, 300), swapRB=True))
    dets = net.forward()  # [1, 1, N, 7]: image_id, class_id, score, x1, y1, x2, y2 in 0..1

No scale/mean in ``blobFromImage``: the graph keeps the model's own ``x * 2/255 - 1``.
``class_id`` follows the model's label map (COCO: 1 = person; background 0 is never reported).
OpenCV pads the output to N = 100 rows of zeros: filter rows on score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import cv2

# Protobuf text format: ordered (field, value) pairs; a value is a raw scalar token (strings
# keep their quotes) or a nested message.
Message: TypeAlias = list[tuple[str, "str | Message"]]
Anchors: TypeAlias = list[tuple[float, float]]  # (width, height) per grid cell, in pixels

# fmt: off
_KEEP_OPS = frozenset({
    "Placeholder", "Conv2D", "DepthwiseConv2dNative", "BiasAdd", "FusedBatchNorm",
    "FusedBatchNormV3", "Relu", "Relu6", "Add", "AddV2", "Sub", "Mul", "ConcatV2", "MaxPool",
    "AvgPool", "Mean", "Pad", "ResizeNearestNeighbor",
})
_DROP_PREFIXES = ("MultipleGridAnchorGenerator/", "Concatenate/", "Postprocessor/",
                  "Preprocessor/map")
_DROP_ATTRS = frozenset({"T", "Tshape", "N", "Tidx", "Tdim", "Tperm", "Tpaddings", "Index",
                         "use_cudnn_on_gpu", "is_training"})
# The configs' batch_non_max_suppression (iou 0.6, 100 boxes per class and in total), but with a
# 0.01 score floor instead of 1e-8, which would only pad the output with junk boxes.
_DETECTION_OUTPUT: dict[str, bool | float | str] = {
    "share_location": True, "background_label_id": 0, "code_type": "CENTER_SIZE",
    "nms_threshold": 0.6, "confidence_threshold": 0.01, "top_k": 100, "keep_top_k": 100,
}
# fmt: on
_VARIANCE = (0.1, 0.1, 0.2, 0.2)  # 1 / faster_rcnn_box_coder scales x, y, w, h = 10, 10, 5, 5
_OUTPUT = "detection_out"
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]|[^\s{}"]+')


def _parse(tokens: Iterator[str]) -> Message:
    """Parse text-format tokens up to the brace closing the current message."""
    msg: Message = []
    for tok in tokens:
        if tok == "}":
            break
        if tok.endswith(":"):
            msg.append((tok[:-1], next(tokens)))
        else:  # a message field: `name {`
            next(tokens)
            msg.append((tok, _parse(tokens)))
    return msg


def _dump(msg: Message, depth: int = 0) -> Iterator[str]:
    pad = "  " * depth
    for key, value in msg:
        if isinstance(value, str):
            yield f"{pad}{key}: {value}"
        else:
            yield from (f"{pad}{key} {{", *_dump(value, depth + 1), f"{pad}}}")


def _field(msg: str | Message | None, *path: str) -> str | Message | None:
    """First value along ``path`` of nested field names, or None."""
    for key in path:
        msg = None if not isinstance(msg, list) else next((v for k, v in msg if k == key), None)
    return msg


def _unquote(value: str | Message | None) -> str:
    return value.strip('"') if isinstance(value, str) else ""


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Message] = field(default_factory=dict)  # attr key -> AttrValue message

    @classmethod
    def from_message(cls, msg: Message) -> _Node:
        node = cls(_unquote(_field(msg, "name")), _unquote(_field(msg, "op")))
        node.inputs = [_unquote(v) for k, v in msg if k == "input"]
        for key, attr in msg:
            value = _field(attr, "value")
            if key == "attr" and isinstance(value, list):
                node.attrs[_unquote(_field(attr, "key"))] = value
        return node

    def to_message(self) -> Message:
        msg: Message = [("name", f'"{self.name}"'), ("op", f'"{self.op}"')]
        msg += [("input", f'"{inp}"') for inp in self.inputs]
        msg += [("attr", [("key", f'"{k}"'), ("value", v)]) for k, v in self.attrs.items()]
        return msg


def _base(inp: str) -> str:
    """Node name of an input reference (drops a ``^`` control mark and a ``:k`` output index)."""
    return inp.lstrip("^").split(":")[0]


def _const(name: str, values: Sequence[int]) -> _Node:
    return _Node(name, "Const", attrs={"dtype": [("type", "DT_INT32")], **_attrs(value=values)})


def _attrs(**values: bool | int | float | str | Sequence[float]) -> dict[str, Message]:
    """AttrValue messages from Python values (a sequence becomes an int32 or float tensor)."""
    out: dict[str, Message] = {}
    for key, v in values.items():
        if isinstance(v, str):
            out[key] = [("s", f'"{v}"')]
        elif isinstance(v, Sequence):  # 1-D tensor
            ints = all(type(x) is int for x in v)
            body: Message = [("dtype", "DT_INT32" if ints else "DT_FLOAT")]
            body += [("tensor_shape", [("dim", [("size", str(len(v)))])])]
            out[key] = [
                ("tensor", body + [("int_val" if ints else "float_val", repr(x)) for x in v])
            ]
        else:  # test bool first: it is an int subclass
            kind = "b" if isinstance(v, bool) else "i" if isinstance(v, int) else "f"
            out[key] = [(kind, str(v).lower() if kind == "b" else repr(v))]
    return out


def _const_length(nodes: dict[str, _Node], name: str) -> int | None:
    """Element count of a 1-D weight (writeTextGraph drops the values but keeps the shape)."""
    value = nodes[name].attrs.get("value") if name in nodes else None
    size = _field(value, "tensor", "tensor_shape", "dim", "size")
    return int(size) if isinstance(size, str) else None


def _strip_to_backbone(nodes: list[_Node], image: _Node) -> list[_Node]:
    """Keep the convolutional body, rewired to read the network input directly."""
    alias = {n.name: n.inputs[0] for n in nodes if n.op in ("Identity", "IdentityN")}

    def resolve(inp: str) -> str:
        while _base(inp) in alias:
            inp = alias[_base(inp)]
        return _base(inp)

    kept = [n for n in nodes if n.op in _KEEP_OPS and not n.name.startswith(_DROP_PREFIXES)]
    skip = {n.name for n in kept} | {n.name for n in nodes if n.op == "Const"} | alias.keys()
    removed = {n.name for n in nodes if n.name not in skip}
    # The dropped preprocessing (uint8->float cast, per-image resize loop): its kept consumer,
    # normally ``Preprocessor/mul`` (x * 2/255 - 1), is fed the input blob instead.
    preproc = {name for name in removed if name.startswith("Preprocessor/")}
    preproc |= {n.name for n in nodes if n.name in removed and image.name in map(resolve, n.inputs)}
    for n in kept:
        inputs = [resolve(i) for i in n.inputs if not i.startswith("^")]
        n.inputs = [image.name] * bool(preproc.intersection(inputs))
        n.inputs += [i for i in inputs if i not in removed]
        n.attrs = {k: v for k, v in n.attrs.items() if k not in _DROP_ATTRS}
    return kept


def _anchor_sizes(layer: int, scales: list[float], ratios: Sequence[float], size: int) -> Anchors:
    """Anchor (width, height) in pixels, in the order of TF's SSD anchor generator."""
    if layer == 0:  # reduce_boxes_in_lowest_layer: true
        specs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
    else:
        specs = [(scales[layer], ar) for ar in ratios]
        specs.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
    return [(s * math.sqrt(ar) * size, s / math.sqrt(ar) * size) for s, ar in specs]


def _ssd_head(
    nodes: dict[str, _Node], image: str, classes: int, anchors: list[Anchors]
) -> list[_Node]:
    """OpenCV layers replacing TF's anchor generator, box decoder and NMS."""
    axis = "concat/axis_flatten"
    head = [_const(axis, [-1])]
    for label in ("ClassPredictor", "BoxEncodingPredictor"):
        flats = [f"BoxPredictor_{i}/{label}/BiasAdd/Flatten" for i in range(len(anchors))]
        head += [_Node(f, "Flatten", [f.removesuffix("/Flatten")]) for f in flats]
        head.append(_Node(f"{label}/concat", "ConcatV2", [*flats, axis]))

    priors = []
    for i, sizes in enumerate(anchors):
        prefix = f"BoxPredictor_{i}/BoxEncodingPredictor"
        conv = nodes.get(f"{prefix}/Conv2D") or nodes.get(f"{prefix}/convolution")
        if conv is None:
            raise ValueError(f"{prefix} convolution not found; check num_layers")
        if _const_length(nodes, f"{prefix}/biases") not in (None, 4 * len(sizes)):
            raise ValueError(f"{prefix} does not predict {len(sizes)} anchors; check aspect_ratios")
        conv.attrs |= _attrs(loc_pred_transposed=True)  # TF encodes (y, x, h, w)
        widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
        attrs = _attrs(flip=False, clip=False, width=widths, height=heights, variance=_VARIANCE)
        priors.append(_Node(f"PriorBox_{i}", "PriorBox", [f"{prefix}/BiasAdd", image], attrs))
    head += [*priors, _Node("PriorBox/concat", "ConcatV2", [p.name for p in priors] + [axis])]

    # TF-OD SSD scores every class (column 0 = background) with an independent sigmoid.
    logits, scores = "ClassPredictor/concat3d", "ClassPredictor/concat/sigmoid"
    inputs = ["BoxEncodingPredictor/concat", f"{scores}/Flatten", "PriorBox/concat"]
    attrs = _attrs(num_classes=classes + 1, **_DETECTION_OUTPUT)
    return head + [
        _const(f"{logits}/shape", [0, -1, classes + 1]),
        _Node(logits, "Reshape", ["ClassPredictor/concat", f"{logits}/shape"]),
        _Node(scores, "Sigmoid", [logits]),
        _Node(f"{scores}/Flatten", "Flatten", [scores]),
        _Node(_OUTPUT, "DetectionOutput", inputs, attrs),
    ]


def write_ssd_text_graph(
    pb_path: str | Path,
    out_path: str | Path,
    *,
    num_classes: int | None = None,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    num_layers: int = 6,
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333),
    image_size: int = 300,
) -> None:
    """Write the OpenCV companion ``.pbtxt`` for the TF-OD SSD frozen graph at ``pb_path``.

    The keyword arguments mirror the model's ``pipeline.config`` (``num_classes``, the
    ``ssd_anchor_generator`` and the fixed-shape resizer size); the defaults are those of
    ``ssdlite_mobilenet_v2_coco``, with ``reduce_boxes_in_lowest_layer: true`` assumed.
    ``num_classes=None`` reads it off the class head (90 for COCO, 1 for a person-only model);
    an explicit value that contradicts the graph raises ``ValueError``.
    """
    if num_layers < 2:
        raise ValueError("num_layers must be >= 2")
    out_path = Path(out_path)
    cv2.dnn.writeTextGraph(str(pb_path), str(out_path))
    graph = _parse(iter(_TOKEN.findall(out_path.read_text())))
    nodes = [_Node.from_message(v) for k, v in graph if k == "node" and isinstance(v, list)]
    by_name = {n.name: n for n in nodes}
    image = next((n for n in nodes if n.op == "Placeholder"), None)
    if image is None:
        raise ValueError("graph has no Placeholder input")
    dims = [("dim", [("size", str(d))]) for d in (-1, image_size, image_size, 3)]
    image.attrs["shape"] = [("shape", dims)]
    n_box = _const_length(by_name, "BoxPredictor_0/BoxEncodingPredictor/biases")
    n_cls = _const_length(by_name, "BoxPredictor_0/ClassPredictor/biases")
    found = n_cls // (n_box // 4) - 1 if n_box and n_cls else None
    if num_classes is None:
        if found is None:
            raise ValueError("cannot read the class count from the graph; pass num_classes")
        num_classes = found
    elif found not in (None, num_classes):
        raise ValueError(f"the graph's class head has {found} classes, not {num_classes}")

    step = (max_scale - min_scale) / (num_layers - 1)
    scales = [min_scale + step * i for i in range(num_layers)] + [1.0]
    anchors = [_anchor_sizes(i, scales, aspect_ratios, image_size) for i in range(num_layers)]
    nodes = _strip_to_backbone(nodes, image)
    nodes += _ssd_head(by_name, image.name, num_classes, anchors)
    while True:  # drop what nothing consumes (e.g. the old box/score concat for Postprocessor)
        consumed = {_base(i) for n in nodes for i in n.inputs} | {_OUTPUT}
        if all(n.name in consumed for n in nodes):
            break
        nodes = [n for n in nodes if n.name in consumed]
    out_path.write_text("\n".join(_dump([("node", n.to_message()) for n in nodes])) + "\n")
