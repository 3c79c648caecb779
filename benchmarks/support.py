"""The check that a generated sentence is supported by its cited passages: time per sentence and per answer
(three sentences, the most an answer has) and its quality, on the labelled sets in tests/data, each named for
how far the rules were tuned and the model trained on it (a sentence's words the passages lack come from the
token table), and on the held-out ones again on whole chunks ("as cited"): their passages replaced by the chunks
of their articles that hold them (`eval/cited_support.py`, when ../shared has the news corpora). The model runs
int8; its float32 export is timed beside it on the same sentences as the baseline, with both AUCs."""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED, Context, log
from benchmarks.report import Section, Target
from bot.answer import Citation
from bot.entailment import SupportModel
from bot.generation import preview, verify
from bot.support import VERDICTS_KEPT, SupportCheck, WordVectors, score_labelled
from index.store import read_jsonl

DATA = ROOT / "tests" / "data"
LABELLED = {"seed article (rules tuned on; model trained on)": DATA / "support_labelled.jsonl",
            "news_2024 (rules tuned on; model trained on)": DATA / "support_heldout.jsonl",
            "blind dev (rules tuned on; model trained on)": DATA / "support_blind_dev.jsonl",
            "blind test (one rule from it; model trained on)": DATA / "support_test.jsonl",
            "blind final (rules tuned on; model trained on)": DATA / "support_final.jsonl",
            "blind last (rules tuned on; model trained on)": DATA / "support_last.jsonl",
            "blind unseen (rules tuned on; model trained on)": DATA / "support_unseen.jsonl",
            "blind holdout (rules tuned on; model trained on)": DATA / "support_holdout.jsonl",
            "blind fresh (one fix from it; model trained on)": DATA / "support_fresh.jsonl",
            "blind news dev (one rule from it; model trained on)": DATA / "support_news_dev.jsonl",
            "blind news more (measured twice; model trained on)": DATA / "support_news_more.jsonl",
            "blind news train (model trained on)": DATA / "support_news_train.jsonl",
            "blind news added (model trained on)": DATA / "support_news_added.jsonl",
            "short answers on training-side chunks (model trained on)": DATA / "support_short_train.jsonl",
            "short answers citing evidence sentences, training side (model trained on)":
                DATA / "support_answers_train.jsonl",
            "short answers citing evidence sentences, tuning side (model thresholds tuned on)":
                DATA / "support_answers_tune.jsonl",
            "blind news tune (model thresholds tuned on)": DATA / "support_news_tune.jsonl",
            "held-back blind test (never tuned or trained on)": DATA / "support_blind_test.jsonl",
            "blind news final (never tuned or trained on)": DATA / "support_news_final.jsonl",
            "blind news check (never tuned or trained on)": DATA / "support_news_check.jsonl",
            "short answers on held-out chunks (never tuned or trained on)": DATA / "support_short_test.jsonl",
            "short answers citing evidence sentences (never tuned or trained on)": DATA / "support_answers_test.jsonl"}
HELD_OUT = ("held-back blind test (never tuned or trained on)", "blind news final (never tuned or trained on)",
            "blind news check (never tuned or trained on)")
TIME_TARGET = Target("<=", 5.0)
PRECISION_TARGET = Target(">=", 0.95)
RECALL_TARGET = Target(">=", 0.9)
ROUNDS = 4
TIMED_ROWS = 240
SENTENCES_PER_ANSWER = 3
DELTA_CHARACTERS = 4
"""Characters per delta of the second stream timed, whose last delta often holds a citation's number ("1].",
guessed ahead) or the whole citation ("[2].", which nothing is checked ahead of)."""
WAITED_SECONDS = 0.001
"""A wait after the last delta above this one is a sentence checked after the stream (none found kept)."""
STREAMED_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s]+)")
"""A streamed delta as a BPE tokenizer makes them: a word with its leading space, or a run of punctuation
(" [", "1", "].")."""
RUNTIME_SET = "short answers citing evidence sentences (never tuned or trained on)"


def run(ctx: Context) -> Section:
    vectors = WordVectors.from_lookup(ctx.embedder.dimension, ctx.embedder.word_vectors)
    model = SupportModel.for_embedder(ctx.embedder)
    check = SupportCheck(vectors, model)
    section = Section("Support check of generated sentences")
    _compare_runtimes(section, model, read_jsonl(LABELLED[RUNTIME_SET]))
    _streamed_answers(section, ctx, vectors, read_jsonl(LABELLED[RUNTIME_SET]))
    details = {}
    for label, rows in _labelled_sets(ctx):
        # the whole set once (quality; WordNet cold at first), then its first TIMED_ROWS rows again as new
        # strings (trailing spaces), so only what a live answer shares with earlier ones (passages, WordNet,
        # word vectors) is warm and no score comes from the model's cache
        report = score_labelled(rows, check)
        timed = [score_labelled([{**row, "sentence": row["sentence"] + " " * round_} for row in rows[:TIMED_ROWS]],
                                check) for round_ in range(1, ROUNDS)]
        p95_ms = 1000 * float(np.median([r.seconds_p95 for r in timed]))
        section.add(f"{label} ({len(rows)} sentences): time per sentence, p95 (first round, cold: "
                    f"{1000 * report.seconds_p95:.2f} ms)", p95_ms, "ms")
        section.add(f"{label}: time per answer of {SENTENCES_PER_ANSWER} sentences, p95 bound",
                    SENTENCES_PER_ANSWER * p95_ms, "ms", TIME_TARGET)
        section.add(f"{label}: precision (unsupported sentences kept: 0 is right)", report.precision, "",
                    PRECISION_TARGET)
        section.add(f"{label}: recall (supported paraphrases kept)", report.recall, "", RECALL_TARGET)
        details[label] = {"p95_ms": round(p95_ms, 3), "cold_p95_ms": round(1000 * report.seconds_p95, 3),
                          "precision": report.precision, "recall": report.recall,
                          "kept_unsupported": report.kept_unsupported}
        log(f"{label}: {report.line()}")
    section.details = details
    return section


def _compare_runtimes(section: Section, model: SupportModel, rows: list[dict]) -> None:
    """The model's time per sentence (p95 over rounds taken in turn) and AUC in int8, as answering runs it, and in
    float32 (the merged model exported unquantized), the baseline."""
    from sklearn.metrics import roc_auc_score

    pairs = [(row["sentence"], row["passages"]) for row in rows]
    supported = [row["supported"] for row in rows]
    with tempfile.TemporaryDirectory() as folder:
        runtimes = {"float32": model.float32_runtime(Path(folder)), "int8": model.runtime()}
        auc = {name: roc_auc_score(supported, model.probabilities(pairs, runtime))
               for name, runtime in runtimes.items()}
        seconds: dict[str, list[float]] = {name: [] for name in runtimes}
        for _ in range(ROUNDS - 1):
            for name, runtime in runtimes.items():
                for pair in pairs[:TIMED_ROWS]:
                    started = time.perf_counter()
                    model.probabilities([pair], runtime)
                    seconds[name].append(time.perf_counter() - started)
    p95 = {name: 1000 * float(np.percentile(values, 95)) for name, values in seconds.items()}
    section.add(f"support model alone, float32 (baseline), {RUNTIME_SET}: p95 per sentence", p95["float32"], "ms")
    section.add("support model alone: int8 / float32 p95 per sentence", p95["int8"] / p95["float32"], "×")
    section.add("support model AUC, float32", auc["float32"])
    section.add("support model AUC, int8 (what answering runs)", auc["int8"])
    log(f"support model: float32 p95 {p95['float32']:.1f} ms, int8 {p95['int8']:.1f} ms; AUC "
        f"{auc['float32']:.3f} / {auc['int8']:.3f}")


def _streamed_answers(section: Section, ctx: Context, vectors: WordVectors, rows: list[dict]) -> None:
    """Answers of SENTENCES_PER_ANSWER labelled sentences streamed in STREAMED_TOKEN deltas, verified as the bot
    does (`bot.generation`: the complete sentences at every delta, a sentence ending in a citation ahead, then
    the whole answer): the time after the last delta and the time spent in all, with verdicts kept against the
    baseline, the check without them (which checks nothing ahead); and the time after the last delta again in
    deltas of DELTA_CHARACTERS, whose last delta often carries the citation's number ("1]."), with the share of
    answers whose asker waits at all (over WAITED_SECONDS) once it has come. Each check runs a
    model of its own, so none finds another's scores; the rules' caches are warmed for all first (by the rules
    alone)."""
    answers = [_streamed_answer(rows[at:at + SENTENCES_PER_ANSWER])
               for at in range(0, min(len(rows), TIMED_ROWS) - SENTENCES_PER_ANSWER + 1, SENTENCES_PER_ANSWER)]
    for text, passages in answers:
        verify(text, passages, SENTENCES_PER_ANSWER, SupportCheck(vectors))
    tokens = [[token.end() for token in STREAMED_TOKEN.finditer(text)] for text, _ in answers]
    characters = [[*range(DELTA_CHARACTERS, len(text), DELTA_CHARACTERS), len(text)] for text, _ in answers]
    spent, after_last, waiting = {}, {}, {}  # waiting: the share of answers whose asker waits over WAITED_SECONDS
    for name, kept, ends in (("baseline", 0, tokens), ("kept", VERDICTS_KEPT, tokens),
                             ("characters", VERDICTS_KEPT, characters)):
        model = SupportModel.for_embedder(ctx.embedder)
        timed = np.array([_verified_as_streamed(text, passages, ends_of,
                                                SupportCheck(vectors, model, verdicts_kept=kept))
                          for (text, passages), ends_of in zip(answers, ends, strict=True)])
        spent[name], after_last[name] = 1000 * np.percentile(timed, 95, axis=0)
        waiting[name] = float((timed[:, 1] > WAITED_SECONDS).mean())
    section.add(f"streamed answer of {SENTENCES_PER_ANSWER} sentences, baseline (verdicts not kept): time spent "
                "verifying, p95", spent["baseline"], "ms")
    section.add("streamed answer: time spent verifying, verdicts kept / baseline, p95",
                spent["kept"] / spent["baseline"], "×")
    section.add("streamed answer, baseline: verification after the last delta, p95", after_last["baseline"], "ms")
    section.add("streamed answer: verification after the last delta (what the asker waits for), p95",
                after_last["kept"], "ms", TIME_TARGET)
    section.add(f"streamed answer: answers whose asker waits over {WAITED_SECONDS * 1000:g} ms after the last delta",
                100 * waiting["kept"], "%")
    section.add(f"streamed answer in {DELTA_CHARACTERS}-character deltas: verification after the last delta, p95",
                after_last["characters"], "ms")
    section.add(f"streamed answer in {DELTA_CHARACTERS}-character deltas: answers whose asker waits over "
                f"{WAITED_SECONDS * 1000:g} ms after the last delta", 100 * waiting["characters"], "%")
    log(f"streamed answers: verifying takes p95 {spent['baseline']:.1f} ms in all without kept verdicts, "
        f"{spent['kept']:.1f} ms with them; after the last delta {after_last['baseline']:.1f} ms without, "
        f"{after_last['kept']:.1f} ms with them ({after_last['characters']:.1f} ms in {DELTA_CHARACTERS}-character "
        f"deltas, where {waiting['characters']:.0%} of the askers wait over {WAITED_SECONDS * 1000:g} ms)")


def _verified_as_streamed(text: str, passages: list[Citation], ends: list[int],
                          check: SupportCheck) -> tuple[float, float]:
    """Seconds spent verifying `text` streamed in deltas ending at `ends`, in all and after the last delta (its
    preview, then the whole answer checked once the stream ends)."""
    previews = []
    for end in ends:
        started = time.perf_counter()
        preview(text[:end], passages, check)
        previews.append(time.perf_counter() - started)
    started = time.perf_counter()
    verify(text, passages, SENTENCES_PER_ANSWER, check)
    after_last = previews[-1] + time.perf_counter() - started
    return sum(previews[:-1]) + after_last, after_last


def _streamed_answer(rows: list[dict]) -> tuple[str, list[Citation]]:
    """Labelled sentences as one generated answer, each citing its own passages ("… [1][2]. … [3]."), and the
    passages."""
    text, passages = "", []
    for row in rows:
        numbers = ""
        for quote in row["passages"]:
            passages.append(Citation(len(passages) + 1, "doc", "title", "", quote, 0, len(quote), "chunk", 1.0))
            numbers += f"[{len(passages)}]"
        text += f"{row['sentence'].rstrip().rstrip('.')} {numbers}. "
    return text.strip(), passages


def _labelled_sets(ctx: Context) -> list[tuple[str, list[dict]]]:
    """Every labelled set by its label, then the held-out ones as cited (when the news corpora are there); with
    --quick, the held-out ones only, as quoted (the other sets took three minutes of a quick run)."""
    if ctx.quick:
        return [(label, read_jsonl(LABELLED[label])) for label in (*HELD_OUT, RUNTIME_SET)]
    sets = [(label, read_jsonl(path)) for label, path in LABELLED.items()]
    if (SHARED / "eval" / "news_2024" / "corpus.jsonl").is_file():
        sys.path.insert(0, str(ROOT / "eval"))
        from cited_support import CitedChunks

        finder = CitedChunks(ctx.embedder)
        sets += [(f"{label}, as cited", finder.cited_rows(rows, LABELLED[label].stem)) for label, rows in sets
                 if label in HELD_OUT]
    return sets

