"""Encoder runtimes: one transformer run by torch (float32 or bfloat16) or by ONNX Runtime (float32 or int8).

A runtime takes a padded batch of model inputs (int64 numpy arrays: `input_ids`, `attention_mask` and, for
models that have them, `token_type_ids`) and returns every token's output embedding as float32 numpy.
Tokenizing, batching, pooling and span sums stay in `index.embedding.Embedder`, so every runtime feeds the
same code. The ONNX file is exported from the torch model by `export_onnx` (torch's own exporter, no
network); sentence-transformers' `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 and
cannot be installed beside sentence-transformers 6.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

import numpy as np

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SMALL_BATCH_TOKENS = 1024
"""Padded batches up to this size (a question, a few words) run torch on one thread: on these small
inputs waking a second OpenMP thread for every operator costs more than it gains."""
STALE_PARTIAL_SECONDS = 3600.0
"""A half-written cache file this old was left by a killed process (an export takes a minute at most)."""


class Runtime(Protocol):
    name: str
    inputs: tuple[str, ...]

    def token_embeddings(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """(texts, tokens, dimension) float32 output embeddings of a padded batch."""
        ...


class TorchRuntime:
    """The model's transformer in torch (`transformers.AutoModel`), float32 or bfloat16."""

    def __init__(self, model_path: Path, bfloat16: bool = False) -> None:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        self.model = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()
        if bfloat16:
            self.model.to(torch.bfloat16)
        self.name = "torch-bfloat16" if bfloat16 else "torch-float32"
        accepted = inspect.signature(self.model.forward).parameters
        self.inputs = tuple(name for name in MODEL_INPUTS if name in accepted)

    def token_embeddings(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        features = {name: torch.from_numpy(batch[name]) for name in self.inputs}
        with _torch_threads(1 if batch["input_ids"].size <= SMALL_BATCH_TOKENS else None), torch.inference_mode():
            return self.model(**features).last_hidden_state.float().numpy()


class OnnxRuntime:
    """The exported transformer in ONNX Runtime on the CPU: float32, or int8 when the file is `quantize_onnx`'s.
    `threads`: intra-op threads, by default one per physical core (`bot.entailment` runs its int8 model, one short
    pair at a time, on one: faster there as measured, while the float32 encoder embeds even one question faster on
    two)."""

    def __init__(self, model_file: Path, name: str = "onnxruntime-float32", threads: int | None = None) -> None:
        import onnxruntime

        self.name = name

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        names = {node.name for node in self.session.get_inputs()}
        self.inputs = tuple(name for name in MODEL_INPUTS if name in names)

    def token_embeddings(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["token_embeddings"], {name: batch[name] for name in self.inputs})[0]


def export_onnx(runtime: TorchRuntime, target: Path) -> None:
    """Write the float32 torch model as ONNX (dynamic batch and sequence axes) to `target`, atomically."""
    import torch

    if runtime.name != "torch-float32":
        raise ValueError("export from the float32 model")
    names = runtime.inputs

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    example = tuple(torch.ones((2, 8), dtype=torch.int64) if name != "token_type_ids"
                    else torch.zeros((2, 8), dtype=torch.int64) for name in names)
    axes = {name: {0: "texts", 1: "tokens"} for name in (*names, "token_embeddings")}
    with replaced_on_success(target) as partial, warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")  # the exporter warns about every traced shape expression
        # an eval-mode wrapper: the exporter restores the wrapper's mode afterwards, and a wrapper left in
        # training mode would switch dropout on in the torch model it shares
        torch.onnx.export(TokenEmbeddings(runtime.model).eval(), example, str(partial), dynamo=False,
                          input_names=list(names), output_names=["token_embeddings"], dynamic_axes=axes,
                          opset_version=17)


def quantize_onnx(source: Path, target: Path) -> None:
    """Write `source` with its matrix weights in int8 (per output channel) and activations quantized at run time
    to `target`, atomically. The weights keep 7 bits (`reduce_range`): on CPUs without VNNI (AVX2 only) ONNX
    Runtime multiplies uint8 by int8 with VPMADDUBSW, whose pairwise sums saturate at full range; with 7 bits they
    cannot, so every CPU computes the same integers."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advice = _QuantizerAdvice()
    logging.getLogger().addFilter(advice)
    try:
        with replaced_on_success(target) as partial:
            quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True)
    finally:
        logging.getLogger().removeFilter(advice)


@contextmanager
def replaced_on_success(target: Path) -> Iterator[Path]:
    """A file to write beside `target` (a name of its own, even for processes of one PID in two containers
    sharing the folder), synced and moved onto `target` when the block succeeds and removed whatever happens:
    readers see the old file or the whole new one. Such files an hour old, left by a killed process, go first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        with suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_PARTIAL_SECONDS:
                stale.unlink()
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class _QuantizerAdvice(logging.Filter):
    """Drops the quantizer's advice, which it logs on the root logger (to pre-process the model first: its shape
    inference cannot read this exporter's graphs). A root logger's filter sees only what is logged on it directly."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in Path(record.pathname).parts


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` intra-op threads in this thread only (OpenMP's setting is per thread)."""
    import torch

    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
