from pathlib import Path

import numpy as np
import pytest

from index.backends import CHECK_TEXTS, NEIGHBOURS, TORCH_FLOAT32, agreement, cached_choice


def _star(closeness: list[float]) -> np.ndarray:
    """Row 0 and one row per value whose cosine with row 0 is that value (each on its own axis besides)."""
    vectors = np.zeros((len(closeness) + 1, len(closeness) + 1))
    vectors[0, 0] = 1.0
    for row, cosine in enumerate(closeness, start=1):
        vectors[row, 0], vectors[row, row] = cosine, np.sqrt(1 - cosine**2)
    return vectors


CLOSENESS = [0.95 - 0.05 * i for i in range(NEIGHBOURS - 1)] + [0.5, 0.4995] + [0.2 - 0.01 * i for i in range(8)]


def test_identical_vectors_agree() -> None:
    reference = _star(CLOSENESS)
    assert agreement(reference, reference) == {"min_cosine": 1.0, "same_neighbours": True}


def test_neighbours_that_tie_with_the_tenth_may_trade_places() -> None:
    swapped = CLOSENESS.copy()
    swapped[NEIGHBOURS - 1], swapped[NEIGHBOURS] = swapped[NEIGHBOURS], swapped[NEIGHBOURS - 1]
    assert agreement(_star(CLOSENESS), _star(swapped))["same_neighbours"]


def test_a_distant_row_among_the_ten_nearest_disagrees() -> None:
    swapped = CLOSENESS.copy()
    swapped[NEIGHBOURS - 1], swapped[-1] = swapped[-1], swapped[NEIGHBOURS - 1]
    check = agreement(_star(CLOSENESS), _star(swapped))
    assert not check["same_neighbours"] and check["min_cosine"] < 0.999


def test_a_choice_the_cache_cannot_keep_still_serves_this_process(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A read-only or full cache folder (here a file stands where the folder should be) costs a measurement at
    the next start, not this start."""
    (tmp_path / "cache").write_text("not a folder")
    vectors = np.eye(len(CHECK_TEXTS), 8, dtype=np.float32)
    choice = cached_choice(tmp_path / "cache" / "choice.json", [TORCH_FLOAT32],
                           lambda name, texts: vectors[: len(texts)])
    assert choice.query == choice.build == TORCH_FLOAT32
    assert "cannot keep the runtime choice" in caplog.text
