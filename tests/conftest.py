"""Shared fixtures: the embedding model loads once per test session."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest

from bot.answer import Answerer
from bot.config import Settings
from bot.service import load_answerer, make_builder
from index.embedding import Embedder

ROOT = Path(__file__).resolve().parents[1]
SEED_CORPUS = ROOT / "corpus"
DATA = ROOT / "tests" / "data"
NEWS = DATA / "news"


def examples(default: int) -> int:
    """Hypothesis examples for a fuzz test: `default`, or 10,000 with FOOTNOTE_FUZZ=1 (the long run)."""
    return 10_000 if os.environ.get("FOOTNOTE_FUZZ") == "1" else default


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(cache_dir=ROOT / "var" / "models")  # measured and exported once per machine, then reused


@pytest.fixture(scope="session")
def postgres_server():
    """PostgreSQL with pgvector from the `pgserver` wheel, on a Unix socket in a temporary folder (no TCP).
    The folder is not under pytest's own (private to root), since as root pgserver runs PostgreSQL as its own
    user."""
    import shutil
    import tempfile
    import warnings

    folder = tempfile.mkdtemp(prefix="footnote-postgres-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
        import pgserver

        server = pgserver.get_server(folder, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def fresh_database(postgres_server) -> str:
    """The URL of a new, empty database on the session's server."""
    import uuid

    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    base = postgres_server.get_uri()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return base.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture
def database_url(postgres_server) -> str:
    """A fresh database on the session's server for one test."""
    return fresh_database(postgres_server)


def make_settings(tmp: Path, corpus: Path = SEED_CORPUS, **overrides: object) -> Settings:
    """Settings isolated from the environment and any .env file, rooted in `tmp`."""
    values = {"corpus_dir": corpus, "index_dir": tmp / "index", "database_path": tmp / "footnote.db",
              "guilds_dir": tmp / "guilds", **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings whose index holds the seed corpus, built once per session."""
    settings = make_settings(tmp_path_factory.mktemp("seed"))
    make_builder(settings, embedder).build(settings.corpus_dir)
    return settings


@pytest.fixture(scope="session")
def seed_answerer(seed_settings: Settings, embedder: Embedder) -> Answerer:
    return load_answerer(seed_settings, embedder)


@pytest.fixture(scope="session")
def news_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings whose index holds the small made-up news corpus of tests/data/news, built once per session."""
    settings = make_settings(tmp_path_factory.mktemp("news"), NEWS / "corpus.jsonl")
    make_builder(settings, embedder).build(settings.corpus_dir)
    return settings


@pytest.fixture(scope="session")
def news_answerer(news_settings: Settings, embedder: Embedder) -> Answerer:
    return load_answerer(news_settings, embedder)


class _LeakedTasks(logging.Handler):
    """Collects asyncio's "Task was destroyed but it is pending!" and "Unclosed …" reports."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "was destroyed but it is pending" in message or message.startswith("Unclosed"):
            self.reports.append(message.splitlines()[0])


_LEAKS = _LeakedTasks()
logging.getLogger("asyncio").addHandler(_LEAKS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test left a pending task or an unclosed resource behind."""
    gc.collect()
    if _LEAKS.reports:
        print("\nleaked asyncio tasks or resources:\n  " + "\n  ".join(_LEAKS.reports[:20]), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
