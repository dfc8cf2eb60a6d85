"""The reader's weights between torch and ONNX: fp32 export, int8 quantization, and loading an
earlier run's ONNX file back into the torch network to continue training (`--init`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from qa.reader.model import ReaderError
from qa.training.network import onnx_logits, torch_logits
from qa.training.recipe import missing_init

# How far the loaded network's logits may lie from the file's, as a share of the file's largest
# logit: an fp32 export computes the same function; an int8 file quantizes the activations at run
# time too. For the shipped reader (7-bit weights) the probe's logits differ by 0.95 on a largest
# logit of 5.0, and by 0.94 of 6.8 on a 46-token window, with the same best tokens (the 8-bit
# form before it: 0.59 of 5.1). Weights loaded into the wrong places give logits unrelated to the
# file's: measured against the shipped file, 4.7 for the network before loading, 6.5 with layer
# 0's query and key swapped, 5.5 with layer 4's output weights in layer 5.
INIT_LOGIT_GAP = {"fp32": 2e-4, "int8": 0.4}


def load_onnx_weights(model: Any, path: Path) -> None:
    """Set `model`'s weights from an ONNX file of the same network, to train on from there, and
    check that the two compute the same logits: an fp32 export (`export_fp32`), or an int8 one
    (`quantize_int8`), whose linear weights are dequantized (`(q - zero point) * scale`, per
    column or per matrix) and whose embeddings (frozen in training) are the base model's.

    The exporter keeps parameter names, except that each linear layer's weight becomes the
    (transposed) right operand of a MatMul node named after the layer (MatMulInteger, `..._quant`,
    once quantized).

    Raises:
        ReaderError: the file is missing, unreadable, not this network, or disagrees with it.
    """
    if not path.is_file():
        raise ReaderError(missing_init(path))
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises its own DecodeError and OSError
        raise ReaderError(f"Cannot continue training from {path}: onnx cannot read it ({exc}).") from None
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {name: value for name, value in values.items() if not name.startswith("onnx::")}
    quantized = False
    for node in graph.node:
        weight = next((name for name in node.input if name.startswith("onnx::") and name in values), None)
        if node.op_type == "MatMul" and weight is not None:
            layer = node.name.strip("/").removesuffix("/MatMul").replace("/", ".")
            state[f"{layer}.weight"] = values[weight].T
        elif node.op_type == "MatMulInteger" and weight is not None and weight.endswith("_quantized"):
            base = weight.removesuffix("_quantized")
            scale, zero = values.get(f"{base}_scale"), values.get(f"{base}_zero_point")
            if scale is None or zero is None:
                continue  # reported below as a missing weight
            layer = node.name.strip("/").removesuffix("/MatMul_quant").replace("/", ".")
            q = values[weight].astype(np.float32)
            state[f"{layer}.weight"] = ((q - zero.astype(np.float32)) * scale.astype(np.float32)).T
            quantized = True
    expected = model.state_dict()
    if quantized:  # the int8 file stores the (frozen) embedding tables quantized: keep the base's
        state.update({k: v.numpy() for k, v in expected.items() if k.startswith("bert.embeddings.")
                      and ".LayerNorm." not in k})
    wrong = sorted(k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape))
    if wrong:
        raise ReaderError(f"Cannot continue training from {path}: it is not this reader network "
                          f"({len(wrong)} weights missing or of another shape, e.g. {wrong[0]}).")
    model.load_state_dict({k: torch.from_numpy(np.array(state[k])) for k in expected})
    model.eval()
    probe = np.array([[101, 2054, 2106, 1996, 2381, 102, 1996, 2381, 2001, 1037, 2307, 102]], dtype=np.int64)
    mask, types = np.ones_like(probe), (np.arange(probe.shape[1]) > 5).astype(np.int64)[None]
    ours = torch_logits(model)(probe, mask, types)
    theirs = onnx_logits(path, threads=1)(probe, mask, types)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))
    largest = max(float(np.abs(b).max()) for b in theirs)
    if gap > INIT_LOGIT_GAP["int8" if quantized else "fp32"] * max(largest, 5.0):
        raise ReaderError(f"Cannot continue training from {path}: the loaded network's logits differ from the "
                          f"file's by {gap:.2g}.")


def export_fp32(model: Any, path: Path) -> None:
    """torch -> fp32 ONNX (TorchScript exporter, dynamic batch and length)."""
    sample = torch.tensor([[101, 2054, 102, 2023, 2003, 102]])
    torch.onnx.export(
        model, (sample, torch.ones_like(sample), torch.zeros_like(sample)), str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in
                      ("input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits")},
        opset_version=17, dynamo=False)



def quantize_int8(fp32: Path, path: Path, per_channel: bool, reduce_range: bool = False) -> None:
    """Dynamic int8 quantization of the weights (activations are quantized at run time)."""
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range)
