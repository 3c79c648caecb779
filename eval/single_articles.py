"""Write one-article corpora from a news set, for calibrating answers over a corpus as small as the seed's.

Each folder holds the gold article of one answerable question (`corpus.jsonl`) and two questions
(`questions.jsonl`): that one, and another question of the set whose answer strings the article does not
hold (so it is unanswerable there). Questions are chosen by a hash of their id, so the sample is fixed.
Usage: python eval/single_articles.py ../shared/eval/news_2024 OUT_DIR [COUNT]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.evaluation import fold

DEFAULT_COUNT = 120


def _rank(qid: str) -> str:
    return hashlib.sha256(qid.encode()).hexdigest()


def _holds(text: str, answers: list[str]) -> bool:
    folded = fold(text)
    return any(fold(answer) in folded for answer in answers)


def main(source: Path, out: Path, count: int = DEFAULT_COUNT) -> list[Path]:
    """Write `count` one-article folders under `out` (kept if already there) and return them."""
    articles = {d["doc_id"]: d for d in map(json.loads, (source / "corpus.jsonl").read_text().splitlines()) if d}
    questions = [json.loads(line) for line in (source / "questions.jsonl").read_text().splitlines() if line]
    answerable = sorted((q for q in questions if not q.get("unanswerable") and q.get("doc_ids")),
                        key=lambda q: _rank(q["qid"]))
    folders = []
    for question in answerable[:count]:
        article = articles[question["doc_ids"][0]]
        other = next(q for q in sorted(questions, key=lambda q: _rank(question["qid"] + q["qid"]))
                     if q["qid"] != question["qid"] and q["answers"] and not _holds(article["text"], q["answers"]))
        unanswerable = {**other, "qid": f"{other['qid']}@{question['qid']}", "unanswerable": True, "doc_ids": [],
                        "evidence": []}
        folder = out / question["qid"]
        if not (folder / "questions.jsonl").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "corpus.jsonl").write_text(json.dumps(article) + "\n")
            (folder / "questions.jsonl").write_text(json.dumps(question) + "\n" + json.dumps(unanswerable) + "\n")
        folders.append(folder)
    return folders


if __name__ == "__main__":
    made = main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_COUNT)
    print(f"{len(made)} one-article corpora in {sys.argv[2]}")
