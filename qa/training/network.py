"""The reader's torch network for training, its batches as tensors, and the logits of a torch
model or an ONNX file as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from transformers import BertModel

from qa.reader.model import Logits
from qa.training.examples import Feature


def torch_model(base: Path) -> Any:
    class ReaderNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)
            self.head = torch.nn.Linear(self.bert.config.hidden_size, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            logits = self.head(hidden)
            return logits[..., 0], logits[..., 1]

    return ReaderNet()


def batch_tensors(batch: Sequence[Feature], device: str = "cpu") -> tuple[Any, ...]:
    width = max(len(f.ids) for f in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    allowed = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, f in enumerate(batch):
        ids[row, :len(f.ids)] = torch.tensor(f.ids)
        mask[row, :len(f.ids)] = 1
        types[row, f.first:len(f.ids)] = 1
        allowed[row, 0] = True
        allowed[row, f.first:f.first + f.n] = True
    starts = torch.tensor([f.start for f in batch])
    ends = torch.tensor([f.end for f in batch])
    return tuple(t.to(device) for t in (ids, mask, types, allowed, starts, ends))


def torch_logits(model: Any) -> Logits:
    """`model`'s logits as numpy arrays, computed on the device its weights are on."""
    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        device = next(model.parameters()).device
        with torch.inference_mode():
            s, e = model(*(torch.from_numpy(a).to(device) for a in (ids, mask, types)))
        return s.float().cpu().numpy(), e.float().cpu().numpy()

    return run


def onnx_logits(path: Path, threads: int) -> Logits:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options,
                                   providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, e = session.run(["start_logits", "end_logits"],
                           {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return np.asarray(s), np.asarray(e)

    return run
