"""Which encoder runtime to use, chosen by measurement once per model and machine and cached on disk.

Every candidate (torch float32, ONNX Runtime float32 and, on CPUs with AMX, torch bfloat16) is first checked
against torch float32 on a fixed sample: cosine ≥ 0.999 for every text and the same ten nearest neighbours
for each. The survivors are timed on one question and on a batch of chunk-sized texts; the fastest on
questions serves questions and words, the fastest on chunks serves builds. The choice is stored in
`choice.json` beside the exported model and measured again when the machine, the libraries or the candidates
change.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np

from index.runtimes import replaced_on_success

Backend = Literal["auto", "torch", "onnx"]
TORCH_FLOAT32, TORCH_BFLOAT16, ONNX_FLOAT32 = "torch-float32", "torch-bfloat16", "onnxruntime-float32"
MIN_COSINE = 0.999
NEIGHBOURS = 10
NEIGHBOUR_TIE = 1e-3
"""Reference similarities this close to the tenth neighbour's are ties: their order may differ."""
CHOICE_VERSION = 2

log = logging.getLogger(__name__)

CHECK_TEXTS = (
    "Iranian President Ebrahim Raisi arrived in Caracas on Monday for talks with Nicolás Maduro.",
    "Who did Raisi meet in Caracas?",
    "The two leaders signed agreements on oil, petrochemicals, defence and agriculture.",
    "Venezuela and Iran said they would raise their trade to 20 billion dollars.",
    "The central bank raised interest rates by a quarter of a percentage point on Wednesday.",
    "How much did inflation fall in March?",
    "Inflation eased to 5 percent in March, the lowest in almost two years.",
    "The storm made landfall on Thursday night, cutting power to 300,000 homes.",
    "Which team won the championship?",
    "The Denver Nuggets beat the Miami Heat to win their first NBA title.",
    "Shares of the chipmaker jumped 24 percent after it forecast record sales.",
    "The court ruled that the law violated the constitution.",
    "Parliament approved the budget by 312 votes to 180.",
    "Rescuers searched the rubble for survivors after the earthquake.",
    "What did the minister say about the strike?",
    "The union called off the strike after the government offered a 6 percent pay rise.",
    "The film won best picture at the Academy Awards.",
    "Caracas",
    "The company said it would cut 10,000 jobs as demand for its software slowed.",
    "Talks on a ceasefire resumed in Cairo, officials said.",
    "A new vaccine cut hospital admissions by half in a trial of 40,000 adults.",
    "When will the election be held?",
    "Voters will go to the polls on November 5.",
    "The wildfire forced thousands of residents to flee their homes overnight.",
)
QUESTION = "Which country's president visited Caracas on Monday to sign cooperation deals?"


@dataclass
class BackendChoice:
    """The runtime for questions and words, the runtime for builds, and the figures they were chosen by."""

    query: str
    build: str
    candidates: list[str] = field(default_factory=list)
    machine: str = ""
    checks: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    version: int = CHOICE_VERSION

    def line(self) -> str:
        """One line for logs, /stats and the bench."""
        measured = "; ".join(f"{name}: question {t['question_ms']:.1f} ms, {t['chunks_per_second']:.0f} chunks/s"
                             for name, t in self.timings.items())
        return f"questions on {self.query}, builds on {self.build}" + (f" (measured {measured})" if measured else "")


def machine_key() -> str:
    """CPU model, AMX or not, CPU count and the runtime libraries' versions: a choice holds for these only."""
    return (f"{cpu_model()}; {'AMX' if cpu_has_amx() else 'no AMX'}; {os.cpu_count()} CPUs; "
            f"torch {_version('torch')}; onnxruntime {_version('onnxruntime')}")


def _version(package: str) -> str:
    """An installed package's version without importing it (importing torch takes a second)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor name elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " amx_bf16" in line for line in cpuinfo)
    except OSError:
        return False


def candidates(precision: str) -> list[str]:
    """The runtimes worth measuring for a precision setting ("auto", "float32" or "bfloat16")."""
    if precision == "bfloat16":
        return [TORCH_BFLOAT16]
    names = [TORCH_FLOAT32, ONNX_FLOAT32]
    if precision == "auto" and cpu_has_amx():
        names.append(TORCH_BFLOAT16)
    return names


Encode = Callable[[str, Sequence[str]], np.ndarray]
"""Unit sentence vectors of texts through the named runtime."""


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float | bool]:
    """Lowest cosine between matching rows, and whether every row has the same ten nearest other rows (up to
    the order of rows whose reference similarities tie with the tenth's, within NEIGHBOUR_TIE)."""
    cosine = float((reference * candidate).sum(axis=1).min())
    return {"min_cosine": round(cosine, 6), "same_neighbours": _same_neighbours(reference, candidate)}


def _same_neighbours(reference: np.ndarray, candidate: np.ndarray) -> bool:
    similarity = _similarity(reference)
    tenth = -np.sort(-similarity, axis=1)[:, NEIGHBOURS - 1]
    expected, found = _neighbours(similarity), _neighbours(_similarity(candidate))
    for row, (wanted, got) in enumerate(zip(expected, found, strict=True)):
        differing = np.setxor1d(wanted, got)
        if (np.abs(similarity[row, differing] - tenth[row]) > NEIGHBOUR_TIE).any():
            return False
    return True


def _similarity(vectors: np.ndarray) -> np.ndarray:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity


def _neighbours(similarity: np.ndarray) -> np.ndarray:
    return np.argsort(-similarity, axis=1, kind="stable")[:, :NEIGHBOURS]


def measure(names: Sequence[str], encode: Encode) -> BackendChoice:
    """Check every candidate against torch float32, time the ones that agree, and pick the fastest."""
    reference = encode(TORCH_FLOAT32, CHECK_TEXTS)
    checks = {name: agreement(reference, encode(name, CHECK_TEXTS)) for name in names if name != TORCH_FLOAT32}
    passed = [name for name in names if name == TORCH_FLOAT32 or
              (checks[name]["min_cosine"] >= MIN_COSINE and checks[name]["same_neighbours"])]
    for name in set(names) - set(passed):
        log.warning("encoder runtime %s disagrees with torch float32 (%s); not used", name, checks[name])
    chunks = [" ".join(CHECK_TEXTS[i:] + CHECK_TEXTS[:i])[:900] for i in range(16)]
    timings = {name: {"question_ms": round(1000 * _median_seconds(lambda n=name: encode(n, [QUESTION]), 15), 2),
                      "chunks_per_second": round(len(chunks) / _median_seconds(lambda n=name: encode(n, chunks), 3), 1)}
               for name in passed}
    return BackendChoice(query=min(passed, key=lambda n: timings[n]["question_ms"]),
                         build=max(passed, key=lambda n: timings[n]["chunks_per_second"]),
                         candidates=list(names), machine=machine_key(), checks=checks, timings=timings)


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cached_choice(path: Path, names: Sequence[str], encode: Encode) -> BackendChoice:
    """The stored choice when it was measured on this machine among the same candidates, else a new one."""
    try:
        stored = BackendChoice(**json.loads(path.read_text(encoding="utf-8")))
        if (stored.version, stored.machine, stored.candidates) == (CHOICE_VERSION, machine_key(), list(names)):
            return stored
    except (OSError, ValueError, TypeError):
        pass
    choice = measure(names, encode)
    try:
        with replaced_on_success(path) as partial:
            partial.write_text(json.dumps(asdict(choice), indent=2), encoding="utf-8")
    except OSError as error:  # a read-only or full cache: the choice serves this process, measured again next time
        log.warning("cannot keep the runtime choice in %s (%s): it is measured again at the next start", path, error)
    return choice
