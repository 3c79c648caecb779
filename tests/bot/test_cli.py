"""The CLI in process: ask (text, JSON, JSON lines), eval and its exit status, a missing index."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot import cli
from bot.answer import Answerer
from bot.config import Settings
from index.embedding import Embedder
from tests.conftest import DATA, NEWS


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, embedder: Embedder, seed_settings: Settings, capsys):
    """Run `python -m bot …` in process against the seed index, with the session's model."""
    monkeypatch.setattr(cli, "_shared_embedder", lambda *_: embedder)
    monkeypatch.setenv("FOOTNOTE_INDEX_DIR", str(seed_settings.index_dir))
    monkeypatch.setenv("FOOTNOTE_CORPUS_DIR", str(seed_settings.corpus_dir))
    monkeypatch.setenv("FOOTNOTE_ABSTAIN_THRESHOLD", "0")  # these tests are about the CLI, not calibration

    def invoke(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


def test_ask_json_has_the_documented_shape(run) -> None:
    status, out, _ = run("ask", "--json", "Which Iranian general will get a bust in the mausoleum?")
    data = json.loads(out)
    assert status == 0 and "Soleimani" in data["answer"] and data["abstained"] is False
    assert set(data) >= {"qid", "question", "answer", "abstained", "short_answer", "citations", "timings_ms",
                         "confidence"}
    citation = data["citations"][0]
    assert set(citation) >= {"n", "doc_id", "title", "url", "quote", "start", "end", "chunk_id", "score", "published"}
    assert set(data["timings_ms"]) == {"embed", "search", "compose", "total"}


def test_ask_for_people_lists_numbered_sources(run) -> None:
    status, out, _ = run("ask", "Who is the Venezuelan independence hero mentioned in the article?")
    assert status == 0 and "Simón Bolívar" in out.split("\n")[0]
    assert "Sources:" in out and "[1] " in out and "— paragraph 12" in out


def test_ask_jsonl_answers_each_line_and_survives_bad_lines(run) -> None:
    lines = [json.dumps({"qid": "a", "question": "Who did Ebrahim Raisi meet in Venezuela?"}), "not json",
             json.dumps({"qid": "b", "question": ""}), json.dumps(["a", "list"]), json.dumps({"qid": "c"}),
             json.dumps({"qid": "d", "question": None}), json.dumps({"qid": 5, "question": 42}),
             json.dumps({"qid": "e", "question": "Who met Maduro \ud800 in Caracas?"}),
             json.dumps({"qid": "f", "question": "x" * 1_000_000}), "   ",
             json.dumps({"qid": "g", "question": "y" * (cli.MAX_JSONL_LINE_CHARS + 1)}),
             json.dumps({"qid": "h", "question": "Who did Raisi meet in Caracas?"})]
    status, out, _ = run("ask", "--jsonl", stdin="\n".join(lines) + "\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(rows) == len(lines) and out.isascii()
    assert rows[0]["qid"] == "a" and "Maduro" in rows[0]["answer"]
    assert rows[1] == rows[3] == rows[9] == {"qid": None, "error": "malformed input line: expected a JSON object"}
    assert rows[2]["qid"] == "b" and rows[2]["refusal"]
    assert [rows[i] for i in (4, 5, 6)] == [{"qid": qid, "error": 'the line needs a "question" string'}
                                            for qid in ("c", "d", 5)]
    assert rows[7]["qid"] == "e" and rows[7]["citations"] and "?" in rows[7]["question"]
    assert rows[8]["qid"] == "f" and "limited to 500 characters" in rows[8]["refusal"]
    assert rows[10] == {"qid": None, "error": f"input line longer than {cli.MAX_JSONL_LINE_CHARS} characters"}
    assert rows[11]["qid"] == "h" and "Maduro" in rows[11]["answer"]


def test_a_line_that_fails_gets_an_error_and_the_next_is_answered() -> None:
    def ask(question: str):
        if question == "boom":
            raise RuntimeError("model fell over")
        return cli_answer(question)

    assert cli.answer_line(json.dumps({"qid": 1, "question": "boom"}), ask) == {
        "qid": 1, "error": "could not answer: RuntimeError"}
    assert cli.answer_line(json.dumps({"qid": 2, "question": "fine"}), ask)["answer"] == "fine [1]"


def cli_answer(question: str):
    from bot.answer import Answer

    return Answer(question, f"{question} [1]", False, [])


def test_eval_reports_beside_the_baseline_and_enforces_bounds(run) -> None:
    questions = str(NEWS / "questions.jsonl")  # its corpus.jsonl beside it is indexed and used
    status, out, _ = run("eval", questions, "--json", "--min-accuracy", "0.5")
    reports = json.loads(out)
    assert status == 0 and set(reports) == {"extractive", "baseline"}
    report = reports["extractive"]
    assert report["questions"] == 16 and report["correct"] >= 9 and report["citations_verbatim"] == 1.0
    assert [level["threshold"] for level in report["risk_coverage"]][:2] == [0.0, 0.1]
    assert report["auroc"] is not None and report["recall_at_5"] == 1.0
    status, out, err = run("eval", questions, "--min-precision", "1.01", "--min-abstention", "1.01",
                           "--support", str(DATA / "support_labelled.jsonl"), str(DATA / "support_heldout.jsonl"))
    assert status == 1 and "precision" in err and "abstention" in err and "below 1.01" in err
    assert out.splitlines()[0].split() == ["extractive", "baseline"] and "risk–coverage (baseline" in out
    assert "support_labelled.jsonl: support check: precision 100.0%, recall" in out
    assert "0 of 28 unsupported ones" in out and "support_heldout.jsonl: support check" in out
    status, _, err = run("eval", questions, "--split", "heldout")
    assert status == 2 and "no split 'heldout' for 'news'" in err


def test_missing_index_gives_one_line_on_how_to_build_it(run, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOOTNOTE_INDEX_DIR", str(tmp_path / "empty"))
    status, out, err = run("ask", "Who?")
    assert status == 1 and out == ""
    assert err.strip().count("\n") == 0 and "build it with `python -m bot index`" in err


def test_invalid_setting_is_named(run, monkeypatch) -> None:
    monkeypatch.setenv("FOOTNOTE_RETRIEVE_K", "lots")
    status, _, err = run("ask", "Who?")
    assert status == 2 and "FOOTNOTE_RETRIEVE_K" in err


def test_chat_keeps_history_for_follow_ups(seed_answerer) -> None:
    from bot.terminal import chat

    stdin = io.StringIO("Which country does Raisi visit on Tuesday?\nAnd on Wednesday?\n\n")
    stdout = io.StringIO()
    assert chat(Answerer(seed_answerer.finder, replace(seed_answerer.model, abstain_below=0.0)), stdin, stdout) == 0
    transcript = stdout.getvalue()
    first, second = transcript.split("? ")[1:3]
    assert "Nicaragua" in first and "Cuba" in second and "\033[" not in transcript


def test_index_add_sources_and_remove_for_a_server(run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOOTNOTE_GUILDS_DIR", str(tmp_path / "guilds"))
    monkeypatch.setenv("FOOTNOTE_DATABASE_PATH", str(tmp_path / "footnote.db"))
    article = json.loads((NEWS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0])
    upload = tmp_path / "bridge.md"
    upload.write_text(f"---\ntitle: {article['title']}\n---\n{article['text']}", encoding="utf-8")
    status, out, _ = run("index", "add", str(upload), "--guild", "77")
    assert status == 0 and out.startswith(f"added source 1: {article['title']} (") and "sentences indexed" in out
    status, out, _ = run("index", "sources", "--guild", "77")
    assert status == 0 and out.split("\t")[:2] == ["1", article["title"]]
    assert run("index", "sources")[1] == ""  # the shared corpus has no added sources
    assert run("index", "remove", "1", "--guild", "77")[:2] == (0, f"removed source 1: {article['title']}\n")
    status, _, err = run("index", "remove", "1", "--guild", "77")
    assert (status, err) == (1, "footnote: not removed: server 77 has no source 1 (`index sources` lists them)\n")
    status, _, err = run("index", "remove", "999")
    assert (status, err) == (1, "footnote: not removed: the shared corpus has no source 999 (`index sources` lists "
                                "them)\n")


@pytest.mark.parametrize(("name", "reason"), [("missing.md", "No such file or directory"), ("", "Is a directory")])
def test_index_add_of_an_unreadable_file_says_why_in_words(run, monkeypatch, tmp_path: Path, name: str,
                                                           reason: str) -> None:
    monkeypatch.setenv("FOOTNOTE_DATABASE_PATH", str(tmp_path / "footnote.db"))
    status, out, err = run("index", "add", str(tmp_path / name), "--guild", "77")
    assert (status, out) == (1, "")
    assert err == f"footnote: not added: cannot read {tmp_path / name}: {reason}\n"


def test_ask_takes_a_question_or_jsonl_not_both(run) -> None:
    status, out, err = run("ask", "--jsonl", "Who?")
    assert (status, out) == (2, "") and "not both" in err


def test_index_add_refuses_a_loopback_link_in_one_line_before_connecting(run, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FOOTNOTE_DATABASE_PATH", str(tmp_path / "footnote.db"))
    status, out, err = run("index", "add", "http://127.0.0.1:9/article", "--guild", "77")
    assert status == 1 and out == "" and err.startswith("footnote: not added: ") and err.count("\n") == 1
    assert "loopback" in err


def test_db_upgrade_migrates_once_and_prints_the_revision(run, monkeypatch, database_url: str, tmp_path) -> None:
    from tests.index.test_migrations import head_revision

    monkeypatch.setenv("FOOTNOTE_DATABASE_URL", database_url)
    status, out, _ = run("db", "upgrade")
    assert (status, out) == (0, f"database schema at revision {head_revision()}\n")
    assert run("db", "upgrade")[:2] == (0, out)  # nothing left to apply
    monkeypatch.setenv("FOOTNOTE_DATABASE_URL", f"postgresql://footnote:s3cret@localhost/none?host={tmp_path}")
    status, _, err = run("db", "upgrade")
    assert status == 1 and err.startswith("footnote: cannot reach the database") and "s3cret" not in err
    monkeypatch.delenv("FOOTNOTE_DATABASE_URL")
    status, _, err = run("db", "upgrade")
    assert status == 2 and "FOOTNOTE_DATABASE_URL is not set" in err
