"""The learned support check: does a passage support a sentence? MiniLM read as a cross-encoder.

The encoder is the embedder's own all-MiniLM-L6-v2 with a low-rank adapter (LoRA) and a one-logit head trained by
`eval/train_support.py` on the labelled sets and rule-made pairs; the adapter, head and thresholds ship in
`bot/models/support_model.npz` (float16, about 1 MB) with the depth it was trained at (the
encoder's first layers; all six for the model shipped). On first use the adapter is merged into a copy of the
encoder's weights, exported to ONNX and quantized to int8 once per adapter and model, beside the embedder's own
export; answering then runs ONNX Runtime only (`quantize_onnx`: 7-bit weights, the same integers on every CPU).
int8 on one thread took 0.55x float32's p95 time per pair here (AMX Xeon); held-out AUC moved by -0.008 to
+0.003. Scores are cached per (sentence, passages) for the process's life (the last CACHED_PAIRS): a sentence
written again, for a question asked again, is scored once; within one answer the check's kept verdicts
(`bot.support.SupportCheck`) spare the rules as well.

The model reads the cited passages' sentences that bear on the sentence (`focus`), not long passages whole: it was
trained on passages of one to three sentences (a generated sentence cites evidence sentences), and on whole chunks
its AUC fell from 0.74-0.86 to 0.61-0.68 on the held-out labelled news sets while taking twice as long
(`eval/cited_support.py`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import nupunkt

from bot.wording import weighted_stems
from index.embedding import Embedder, EmbedderError
from index.runtimes import OnnxRuntime, TorchRuntime, export_onnx, quantize_onnx

if TYPE_CHECKING:
    from transformers import BertModel

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = Path(__file__).parent / "models" / "support_model.npz"
LORA_SCALE = 16.0
"""The adapter's output is scaled by LORA_SCALE / rank, as in training."""
CACHED_PAIRS = 4096
RUNTIME_THREADS = 1
"""Intra-op threads of the model's ONNX Runtime session: it runs one pair of at most about 128 tokens at a time,
which one thread scores faster than two (AMX Xeon, int8, 960 runs each taken in turn: p50 3.4 against 4.2 ms, p95
6.0 against 6.9 ms), and a check for another answer can run on the other core meanwhile. The float32 baseline
(`float32_runtime`) keeps a thread per core, which it runs faster with (p95 9.9 against 12.8 ms)."""
FOCUS_TOKENS = 96
"""Passage tokens the model reads at most (whole sentences; a cited passage's best sentence always)."""


class SupportModel:
    """P(the passages support the sentence) from the trained cross-encoder, and the thresholds tuned for it."""

    def __init__(self, model_file: Path, embedder: Embedder) -> None:
        """`model_file`: the adapter, head and thresholds; `embedder`: its encoder (the one they were trained on,
        `for_embedder` checks), tokenizer, and cache folder, where the merged model's ONNX export is kept."""
        from tokenizers import Tokenizer

        self.model_file = Path(model_file)
        try:
            stored_bytes = self.model_file.read_bytes()
            with np.load(io.BytesIO(stored_bytes)) as stored:
                self.arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as error:
            raise EmbedderError(f"the support model {self.model_file} cannot be read ({error})") from None
        self.embedder, self.base_path = embedder, embedder.path
        self.threshold = float(self.arrays["threshold"])
        """The score a sentence that the rules keep needs to be shown."""
        self.rescue_threshold = float(self.arrays["rescue_threshold"])
        """The score a sentence that only the rules' word check refuses needs to be shown."""
        self._weight = self.arrays["head.weight"].astype(np.float32).reshape(-1)
        self._bias = float(self.arrays["head.bias"].reshape(-1)[0])
        self._tokenizer = Tokenizer.from_file(str(self.base_path / "tokenizer.json"))
        # the passages are cut, as in training ("only_first"), unless the sentence alone would not fit
        self._tokenizer.enable_truncation(int(self.arrays["max_tokens"]), strategy="longest_first")
        self._tokenizer.enable_padding()
        self.digest = hashlib.sha256(stored_bytes).hexdigest()[:12]
        self.onnx_file = Path(embedder.cache_folder) / f"support-{self.digest}-int8.onnx"
        self._lock = threading.Lock()
        self._runtime: OnnxRuntime | None = None

    @classmethod
    def for_embedder(cls, embedder: Embedder, model_file: Path = DEFAULT_MODEL_FILE) -> SupportModel | None:
        """The model trained on `embedder`'s encoder, exported beside its own; None (logged) when the embedder
        runs another encoder than the one the adapter was trained on."""
        model = cls(model_file, embedder)
        if str(model.arrays["base"]) != embedder.fingerprint[:12]:
            log.warning("the support model was trained on another encoder than %s; generated sentences are "
                        "checked by the rules alone", embedder.name)
            return None
        return model

    def probability(self, sentence: str, passages: Sequence[str]) -> float:
        """P(supported) of one sentence against its cited passages (cached)."""
        return self._cached(sentence, tuple(passages))

    def probabilities(self, pairs: Sequence[tuple[str, Sequence[str]]],
                      runtime: OnnxRuntime | None = None) -> np.ndarray:
        """P(supported) of many (sentence, passages) pairs (not cached), one pair per run: the int8 model quantizes
        its activations with one scale per run, so a pair batched with others would score otherwise than alone, as
        answering scores it (batches of 16 moved scores by up to 0.26; one pair per run is no slower on 2 cores).
        `runtime`: another export of the model than the int8 one answering runs (`float32_runtime`)."""
        runtime = runtime or self.runtime()
        return np.array([self._batch([pair], runtime)[0] for pair in pairs], np.float32)

    def inputs(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> dict[str, np.ndarray]:
        """The padded encoder inputs of (sentence, passages) pairs: the passages' focus first, then the sentence."""
        encoded = self._tokenizer.encode_batch([(" ".join(self.focus(sentence, passages)), sentence)
                                                for sentence, passages in pairs])
        return {"input_ids": np.array([e.ids for e in encoded], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], np.int64)}

    def focus(self, sentence: str, passages: Sequence[str]) -> list[str]:
        """What the model reads of `passages` for `sentence` (`focus`)."""
        return focus(sentence, passages, self._token_counts)

    def _token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.embedder.count_tokens(texts, special_tokens=False)

    def _batch(self, pairs: Sequence[tuple[str, Sequence[str]]], runtime: OnnxRuntime) -> np.ndarray:
        batch = self.inputs(pairs)
        tokens = runtime.token_embeddings(batch)
        mask = batch["attention_mask"][..., None].astype(np.float32)
        sentence = mask * batch["token_type_ids"][..., None]
        pooled = np.concatenate([(tokens * mask).sum(1) / mask.sum(1), (tokens * sentence).sum(1) / sentence.sum(1)],
                                1)
        return 1.0 / (1.0 + np.exp(-(pooled @ self._weight + self._bias)))

    @functools.lru_cache(maxsize=CACHED_PAIRS)  # noqa: B019 - one model per process, kept for its lifetime
    def _cached(self, sentence: str, passages: tuple[str, ...]) -> float:
        return float(self.probabilities([(sentence, passages)])[0])

    def runtime(self) -> OnnxRuntime:
        """The ONNX Runtime session, the merged model exported and quantized first if this adapter has none yet."""
        with self._lock:
            if self._runtime is None:
                if self.onnx_file.is_file():
                    try:
                        self._runtime = OnnxRuntime(self.onnx_file, "onnxruntime-int8", threads=RUNTIME_THREADS)
                    except Exception as error:  # cut off by a power cut or a copy: made again, not fatal
                        log.warning("the cached support model does not load (%s): exporting it again", error)
                if self._runtime is None:
                    self._export()
                    self._runtime = OnnxRuntime(self.onnx_file, "onnxruntime-int8", threads=RUNTIME_THREADS)
            return self._runtime

    def _export(self) -> None:
        """Merge, export and quantize the model into `onnx_file`. The float32 export in between is a file of this
        call's own, named as the int8 file's half-written ones, so that one a killed process left is swept
        with them."""
        log.info("exporting the support model to %s", self.onnx_file)
        self.onnx_file.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.onnx_file.name}.float32.", suffix=".partial",
                                        dir=self.onnx_file.parent)
        os.close(handle)
        float32_file = Path(name)
        try:
            export_onnx(self._merged(), float32_file)
            quantize_onnx(float32_file, self.onnx_file)
        finally:
            float32_file.unlink(missing_ok=True)

    def float32_runtime(self, folder: Path) -> OnnxRuntime:
        """The merged model exported unquantized to `folder`: the baseline the int8 model is measured against."""
        model_file = Path(folder) / f"support-{self.digest}-float32.onnx"
        export_onnx(self._merged(), model_file)
        return OnnxRuntime(model_file)

    def _merged(self) -> TorchRuntime:
        """The encoder in torch with every adapted weight W replaced by W + (scale / rank) · B A."""
        import torch

        runtime = TorchRuntime(self.base_path)
        first_layers(runtime.model, int(self.arrays["layers"]))
        weights = runtime.model.state_dict()
        scale = LORA_SCALE / int(self.arrays["rank"])
        for name in (n[: -len(".a")] for n in self.arrays if n.endswith(".a")):
            low_rank = self.arrays[f"{name}.b"].astype(np.float32) @ self.arrays[f"{name}.a"].astype(np.float32)
            weights[f"{name}.weight"] += torch.from_numpy(scale * low_rank)
        runtime.model.load_state_dict(weights)
        return runtime


def remove_stale_exports(current: Path) -> None:
    """Remove the int8 exports of other support models beside `current` (left by the models shipped before it,
    about 23 MB each). A process still running an old model has read its file already. Called for the model
    answering loads, never on export: a candidate model measured beside it leaves its export alone."""
    for path in current.parent.glob("support-*-int8.onnx"):
        if path.name != current.name:
            path.unlink(missing_ok=True)
            log.info("removed %s, the export of a support model no longer shipped", path)


def first_layers(model: BertModel, layers: int) -> BertModel:
    """`model` (a transformers BERT) cut to its first `layers` encoder layers, the depth the adapter was trained at."""
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    return model


def focus(sentence: str, passages: Sequence[str], token_counts: Callable[[Sequence[str]], list[int]],
          budget: int = FOCUS_TOKENS) -> list[str]:
    """What the model reads of `passages` for `sentence`: all of them when they fit in `budget` tokens; else, per
    passage, its sentences that share the most content words (stems) with `sentence`: each passage's best first,
    then the others that share any, best first, while they fit, each passage's kept in their order."""
    if sum(token_counts(passages)) <= budget:
        return list(passages)
    wanted = weighted_stems(sentence).keys()
    pieces = [(number, passage[start:end].strip()) for number, passage in enumerate(passages)
              for start, end in nupunkt.sent_spans(passage) if passage[start:end].strip()]
    shared = [len(wanted & weighted_stems(text).keys()) for _, text in pieces]
    sizes = token_counts([text for _, text in pieces])
    best_each: dict[int, int] = {}
    for at, (number, _) in enumerate(pieces):
        if number not in best_each or shared[at] > shared[best_each[number]]:
            best_each[number] = at
    chosen, used = set(best_each.values()), sum(sizes[at] for at in best_each.values())
    for at in sorted((at for at in range(len(pieces)) if shared[at]), key=lambda at: -shared[at]):
        if at not in chosen and used + sizes[at] <= budget:
            chosen.add(at)
            used += sizes[at]
    return [" ".join(text for at, (n, text) in enumerate(pieces) if n == number and at in chosen)
            for number in sorted(best_each)]
