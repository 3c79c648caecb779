"""The learned support check: the shipped adapter merged and exported to ONNX scores pairs as the torch model
does, tells supported sentences from unsupported ones on a set it never saw, and is refused for another
encoder."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import nupunkt
import pytest

from bot.config import Settings
from bot.entailment import (
    DEFAULT_MODEL_FILE,
    FOCUS_TOKENS,
    RUNTIME_THREADS,
    SupportModel,
    first_layers,
    focus,
)
from bot.service import load_support_model
from index.embedding import Embedder, EmbedderError
from index.runtimes import TorchRuntime
from index.store import read_jsonl
from tests.conftest import DATA

PASSAGE = ("Iranian President Ebrahim Raisi arrived in Caracas on Monday, where he met Venezuelan President "
           "Nicolás Maduro. The two leaders signed agreements on oil, petrochemicals and defence.")


@pytest.fixture(scope="module")
def model(embedder: Embedder) -> SupportModel:
    found = SupportModel.for_embedder(embedder)
    assert found is not None
    return found


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The probability that a random supported row scores above a random unsupported one."""
    positive, negative = scores[labels], scores[~labels]
    return float((positive[:, None] > negative[None, :]).mean() + 0.5 * (positive[:, None] == negative).mean())


def test_the_float32_export_scores_as_the_merged_torch_model_does(model: SupportModel, tmp_path: Path) -> None:
    import torch

    pairs = [("Raisi met Maduro in Caracas.", [PASSAGE]), ("Maduro never met Raisi.", [PASSAGE, "Trade rose."])]
    batch = model.inputs(pairs)
    merged = model._merged()
    with torch.inference_mode():
        torch_tokens = merged.token_embeddings(batch)
    float32 = model.float32_runtime(tmp_path)
    assert np.abs(torch_tokens - float32.token_embeddings(batch)).max() < 1e-3
    assert model.probabilities(pairs, float32).shape == (2,)


def test_the_merged_model_has_the_depth_the_adapter_was_trained_at(model: SupportModel) -> None:
    assert len(model._merged().model.encoder.layer) == int(model.arrays["layers"])


def test_an_encoder_cut_to_its_first_layers_outputs_what_those_layers_output(embedder: Embedder) -> None:
    import torch

    full, cut = TorchRuntime(embedder.path).model, first_layers(TorchRuntime(embedder.path).model, 3)
    texts = ["Raisi met Maduro.", "Trade rose to $3 billion."]
    inputs = {name: torch.from_numpy(array) for name, array in
              Embedder._features(embedder.tokenize(texts), [0, 1]).items()}
    with torch.inference_mode():
        third = full(**inputs, output_hidden_states=True).hidden_states[3]
        assert len(cut.encoder.layer) == 3 and torch.allclose(cut(**inputs).last_hidden_state, third, atol=1e-5)
        assert not torch.allclose(full(**inputs).last_hidden_state, third, atol=1e-2)


def test_the_int8_model_answering_runs_ranks_as_the_float32_one_does(model: SupportModel, tmp_path: Path) -> None:
    rows = read_jsonl(DATA / "support_news_final.jsonl")
    pairs, labels = [(r["sentence"], r["passages"]) for r in rows[::2]], np.array([r["supported"] for r in rows[::2]])
    int8, float32 = model.probabilities(pairs), model.probabilities(pairs, model.float32_runtime(tmp_path))
    assert model.runtime().name == "onnxruntime-int8" and not np.array_equal(int8, float32)
    assert np.abs(int8 - float32).mean() < 0.05 and abs(_auc(int8, labels) - _auc(float32, labels)) < 0.02


def test_a_pair_scores_the_same_among_others_as_alone(model: SupportModel) -> None:
    """int8 activations get one scale per run: batched with longer pairs, a pair would score otherwise."""
    rows = read_jsonl(DATA / "support_blind_test.jsonl")
    pairs = [(r["sentence"], r["passages"]) for r in rows[:16]]
    together = model.probabilities(pairs)
    assert together.tolist() == [model.probabilities([pair])[0] for pair in pairs]


def test_a_sentence_copied_from_its_passage_passes(model: SupportModel) -> None:
    """LLMs often copy. The labelled sets' unsupported sentences are mostly close copies with one detail changed,
    which taught a model trained on them alone to distrust copies (a passage's own sentence scored 0.74 on
    average); training on copies as well mends it (0.98 for the model shipped now)."""
    rows = read_jsonl(DATA / "support_news_final.jsonl")
    pairs = [(nupunkt.sent_tokenize(" ".join(row["passages"]))[0], row["passages"]) for row in rows[::8]]
    scores = model.probabilities(pairs)
    assert (scores >= model.threshold).mean() >= 0.8


def test_an_overlong_sentence_is_scored_not_refused(model: SupportModel) -> None:
    assert 0.0 <= model.probability("Raisi met Maduro. " * 200, [PASSAGE]) <= 1.0


@pytest.mark.parametrize(("name", "auc"), [
    ("support_blind_test.jsonl", 0.74),  # never trained or tuned on: measured 0.764
    ("support_news_final.jsonl", 0.84),  # never trained or tuned on: measured 0.858
    ("support_news_check.jsonl", 0.80),  # never trained or tuned on: measured 0.820
    ("support_short_test.jsonl", 0.72),  # short answers on held-out chunks: measured 0.745
    ("support_answers_test.jsonl", 0.84),  # short answers citing evidence sentences: measured 0.863
    ("cited_blind_test.jsonl", 0.72),  # the first, on whole chunks (labels judged on them): measured 0.742
])
def test_it_ranks_an_unseen_labelled_set(model: SupportModel, name: str, auc: float) -> None:
    rows = read_jsonl(DATA / name)
    scores = model.probabilities([(r["sentence"], r["passages"]) for r in rows])
    assert _auc(scores, np.array([r["supported"] for r in rows])) >= auc


def test_scores_are_cached_per_sentence_and_passages(model: SupportModel, monkeypatch) -> None:
    calls = []
    original = model.probabilities
    monkeypatch.setattr(model, "probabilities", lambda pairs: calls.append(pairs) or original(pairs))
    first = model.probability("A sentence seen once before in this test.", [PASSAGE])
    assert model.probability("A sentence seen once before in this test.", (PASSAGE,)) == first
    assert len(calls) == 1


def test_another_encoder_gets_no_model(embedder: Embedder) -> None:
    other = SimpleNamespace(path=embedder.path, cache_folder=embedder.cache_folder, name="another-model",
                            fingerprint="0" * 64)
    assert SupportModel.for_embedder(other) is None  # type: ignore[arg-type]


def test_the_model_runs_one_pair_at_a_time_on_one_thread(model: SupportModel) -> None:
    assert model.runtime().session.get_session_options().intra_op_num_threads == RUNTIME_THREADS == 1


def _cache_in(folder: Path, embedder: Embedder) -> SimpleNamespace:
    """`embedder` as the support model sees it, its cache folder `folder`."""
    return SimpleNamespace(path=embedder.path, cache_folder=folder, name=embedder.name,
                           fingerprint=embedder.fingerprint, count_tokens=embedder.count_tokens)


def test_loading_the_shipped_model_removes_the_exports_of_models_shipped_before(embedder: Embedder,
                                                                                tmp_path: Path) -> None:
    shipped_before = tmp_path / "support-000000000000-int8.onnx"
    shipped_before.write_bytes(b"an older model's export")
    unrelated = tmp_path / "model.onnx"
    unrelated.write_bytes(b"the embedder's own export")
    loaded = load_support_model(Settings(_env_file=None), _cache_in(tmp_path, embedder))  # type: ignore[arg-type]
    assert loaded is not None and loaded.probability("Raisi met Maduro in Caracas on Monday.", [PASSAGE]) > 0.5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx", loaded.onnx_file.name]


def test_exporting_a_candidate_model_leaves_the_shipped_models_export_alone(model: SupportModel, embedder: Embedder,
                                                                           tmp_path: Path, monkeypatch) -> None:
    shipped = tmp_path / model.onnx_file.name
    model.runtime()
    shutil.copyfile(model.onnx_file, shipped)
    candidate_file = tmp_path / "candidate.npz"
    np.savez_compressed(candidate_file, **(model.arrays | {"threshold": np.float32(0.5)}))
    candidate = SupportModel(candidate_file, _cache_in(tmp_path, embedder))  # type: ignore[arg-type]
    monkeypatch.setattr("bot.entailment.export_onnx", lambda runtime, path: shutil.copyfile(shipped, path))
    monkeypatch.setattr("bot.entailment.quantize_onnx", shutil.copyfile)
    assert candidate.runtime().name == "onnxruntime-int8" and candidate.onnx_file != shipped
    assert shipped.is_file() and candidate.onnx_file.is_file()


def test_an_unreadable_model_file_is_a_clear_error(tmp_path: Path, embedder: Embedder) -> None:
    broken = tmp_path / "support_model.npz"
    broken.write_bytes(b"not a numpy archive")
    with pytest.raises(EmbedderError, match="cannot be read"):
        SupportModel(broken, embedder)
    assert DEFAULT_MODEL_FILE.is_file()


def _words(texts) -> list[int]:
    return [len(text.split()) for text in texts]


LONG_PASSAGE = ("Venezuela is in the middle of a long economic crisis. Inflation reached several hundred percent last "
                "year. Raisi met Maduro in Caracas on Monday to sign agreements on oil. Millions have left the country "
                "since 2015. The opposition boycotted the last election.")


def test_passages_that_fit_are_read_whole() -> None:
    assert focus("Raisi met Maduro.", [PASSAGE, "Trade rose."], _words, budget=40) == [PASSAGE, "Trade rose."]


def test_a_long_passage_is_narrowed_to_the_sentences_that_bear_on_the_sentence() -> None:
    read = focus("Maduro met Raisi in Caracas, where they signed oil agreements.", [LONG_PASSAGE], _words, budget=20)
    assert read == ["Raisi met Maduro in Caracas on Monday to sign agreements on oil."]


def test_every_cited_passage_keeps_its_best_sentence_and_the_rest_fill_the_budget_in_order() -> None:
    sentence = "Inflation reached several hundred percent as millions left, and Raisi met Maduro."
    read = focus(sentence, [LONG_PASSAGE, PASSAGE], _words, budget=45)
    assert read[0] == ("Inflation reached several hundred percent last year. Raisi met Maduro in Caracas on Monday "
                       "to sign agreements on oil. Millions have left the country since 2015.")
    assert read[1] in nupunkt.sent_tokenize(PASSAGE)  # its best sentence
    assert sum(_words(read)) <= 45
    assert focus(sentence, [LONG_PASSAGE, PASSAGE], _words, budget=5)[1] == read[1]  # kept beyond the budget


def test_reading_the_focus_of_cited_chunks_ranks_better_than_reading_them_whole(model: SupportModel,
                                                                                 monkeypatch) -> None:
    """The held-back blind test on whole chunks (passages replaced by the chunks that hold them, labels judged
    on them): 0.730 through `focus`, 0.633 reading the chunks whole (truncated to the model's 256 tokens)."""
    rows = read_jsonl(DATA / "cited_blind_test.jsonl")
    labels, pairs = np.array([r["supported"] for r in rows]), [(r["sentence"], r["passages"]) for r in rows]
    focused = _auc(model.probabilities(pairs), labels)
    monkeypatch.setattr(model, "focus", lambda sentence, passages: list(passages))
    assert focused >= _auc(model.probabilities(pairs), labels) + 0.03


def test_the_model_reads_the_focus_of_long_passages(model: SupportModel) -> None:
    chunk = " ".join([LONG_PASSAGE] * 6)
    assert model.focus("Raisi met Maduro in Caracas.", [chunk]) != [chunk]
    tokens = model.inputs([("Raisi met Maduro in Caracas.", [chunk])])["input_ids"].shape[1]
    assert tokens <= FOCUS_TOKENS + 20


def test_a_cached_support_model_that_does_not_load_is_made_again(model: SupportModel, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model.runtime()  # the session's own export
    fresh = SupportModel.for_embedder(Embedder(cache_dir=tmp_path))
    assert fresh is not None
    fresh.onnx_file.parent.mkdir(parents=True, exist_ok=True)
    fresh.onnx_file.write_bytes(b"cut off")
    exports: list[Path] = []
    monkeypatch.setattr(fresh, "_export", lambda: exports.append(shutil.copy(model.onnx_file, fresh.onnx_file)))
    pair = [("Raisi met Maduro in Caracas.", ["Raisi met Maduro in Caracas on Monday."])]
    assert fresh.probabilities(pair) == pytest.approx(model.probabilities(pair))
    assert exports == [fresh.onnx_file]
