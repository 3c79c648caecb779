from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from index.backends import TORCH_FLOAT32
from index.embedding import Embedder
from index.runtimes import OnnxRuntime, export_onnx, quantize_onnx, replaced_on_success

TEXTS = ["Raisi met Maduro in Caracas on Monday.", "The two leaders signed agreements on oil, trade and defence."]


@pytest.fixture(scope="module")
def exported(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The embedder's encoder exported in float32 and quantized to int8."""
    folder = tmp_path_factory.mktemp("runtimes")
    float32_file, int8_file = folder / "model.onnx", folder / "model-int8.onnx"
    export_onnx(embedder.runtime(TORCH_FLOAT32), float32_file)
    quantize_onnx(float32_file, int8_file)
    return float32_file, int8_file


def test_quantized_weights_keep_seven_bits_so_no_cpu_saturates(exported: tuple[Path, Path]) -> None:
    weights = [numpy_helper.to_array(tensor) for tensor in onnx.load(str(exported[1])).graph.initializer
               if tensor.data_type == onnx.TensorProto.INT8]
    assert len(weights) >= 36  # the six layers' four attention and two feed-forward matrices
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


def test_the_quantized_encoder_reads_texts_as_the_float32_one_does(embedder: Embedder,
                                                                   exported: tuple[Path, Path]) -> None:
    batch = Embedder._features(embedder.tokenize(TEXTS), list(range(len(TEXTS))))  # padded as the embedder pads
    float32, int8 = (OnnxRuntime(path).token_embeddings(batch) for path in exported)
    mask = batch["attention_mask"].astype(bool)
    cosine = (float32 * int8).sum(-1) / np.linalg.norm(float32, axis=-1) / np.linalg.norm(int8, axis=-1)
    assert cosine[mask].mean() > 0.98 and not np.allclose(float32, int8)


def test_quantizing_keeps_the_root_loggers_own_records_but_not_the_quantizers_advice(
        exported: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        quantize_onnx(exported[0], tmp_path / "again.onnx")
        logging.warning("an operator's warning")
    assert [record.getMessage() for record in caplog.records] == ["an operator's warning"]
    assert (tmp_path / "again.onnx").read_bytes() == exported[1].read_bytes()
    assert not list(tmp_path.glob(".*partial"))


def test_a_cache_file_is_written_under_a_name_of_its_own_and_old_leftovers_are_swept(tmp_path: Path) -> None:
    """Two containers share the cache with the same PID; a killed export leaves a 90 MB half-file behind."""
    target = tmp_path / "model.onnx"
    left, under_way = tmp_path / ".model.onnx.1.partial", tmp_path / ".model.onnx.2.partial"
    for path in (left, under_way):
        path.write_bytes(b"half")
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    with replaced_on_success(target) as first, replaced_on_success(target) as second:
        assert first != second and first.parent == tmp_path
        first.write_bytes(b"one")
        second.write_bytes(b"two")
    assert target.read_bytes() == b"one" and not left.exists() and under_way.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.onnx.2.partial", "model.onnx"]
