"""Settings: which shards a process runs (FOOTNOTE_SHARD_COUNT, FOOTNOTE_SHARD_IDS, the FOOTNOTE_SHARD_ID shorthand)."""

from __future__ import annotations

import pytest

from bot.config import SettingsError, load_settings

NEEDS_COUNT = "needs FOOTNOTE_SHARD_COUNT (the number of shards across all processes)"


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"FOOTNOTE_{name}", value)


@pytest.mark.parametrize(("values", "shard_count", "shard_ids"), [
    ({}, None, None),
    ({"SHARD_COUNT": "2"}, 2, None),  # every shard in this process
    ({"SHARD_COUNT": "3", "SHARD_IDS": "2, 0"}, 3, [2, 0]),
    ({"SHARD_COUNT": "3", "SHARD_IDS": ""}, 3, None),
    ({"SHARD_COUNT": "2", "SHARD_ID": "1"}, 2, [1]),
])
def test_shard_settings(monkeypatch: pytest.MonkeyPatch, values: dict[str, str], shard_count: int | None,
                        shard_ids: list[int] | None) -> None:
    set_env(monkeypatch, values)
    settings = load_settings(_env_file=None)
    assert (settings.shard_count, settings.shard_ids) == (shard_count, shard_ids)


@pytest.mark.parametrize(("values", "error"), [
    ({"SHARD_COUNT": "3", "SHARD_IDS": "0,3,4"}, "FOOTNOTE_SHARD_IDS: Value error, 3, 4 must be below "
                                                 "FOOTNOTE_SHARD_COUNT (3)"),
    ({"SHARD_COUNT": "3", "SHARD_IDS": "1,0,1"}, "FOOTNOTE_SHARD_IDS: Value error, lists shard 1 more than once"),
    ({"SHARD_COUNT": "3", "SHARD_IDS": "-1"}, "FOOTNOTE_SHARD_IDS: Input should be greater than or equal to 0"),
    ({"SHARD_IDS": "0,1"}, f"FOOTNOTE_SHARD_IDS: Value error, {NEEDS_COUNT}"),
    ({"SHARD_COUNT": "2", "SHARD_ID": "2"}, "FOOTNOTE_SHARD_ID: Value error, 2 must be below FOOTNOTE_SHARD_COUNT (2)"),
    ({"SHARD_ID": "0"}, f"FOOTNOTE_SHARD_ID: Value error, {NEEDS_COUNT}"),
    ({"SHARD_COUNT": "2", "SHARD_ID": "1", "SHARD_IDS": "0"},
     "FOOTNOTE_SHARD_IDS: Value error, set FOOTNOTE_SHARD_IDS or FOOTNOTE_SHARD_ID, not both"),
    ({"SHARD_COUNT": "0", "SHARD_IDS": "0"}, "FOOTNOTE_SHARD_COUNT: Input should be greater than or equal to 1"),
])
def test_bad_shard_settings_are_named(monkeypatch: pytest.MonkeyPatch, values: dict[str, str], error: str) -> None:
    set_env(monkeypatch, values)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value) == error
