"""The benchmarks' entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks.__main__ as entry


def test_without_the_evaluation_data_it_stops_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A clone with no ../shared beside it: one line naming the folder, not a FileNotFoundError traceback."""
    monkeypatch.setattr(entry, "SHARED", tmp_path / "shared")
    monkeypatch.setattr("sys.argv", ["python -m benchmarks", "--quick"])
    assert entry.main() == 2
    assert capsys.readouterr().err == (f"benchmarks: they read the evaluation data in {tmp_path / 'shared'} "
                                       "(../shared beside the repository), which is not there\n")
