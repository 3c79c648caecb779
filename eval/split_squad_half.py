"""Write the SQuAD-half calibration set: the squad2 sample indexed with half of its paragraphs.

Paragraphs are kept by a hash of their doc_id; questions about a dropped paragraph become unanswerable.
Usage: python eval/split_squad_half.py ../shared/eval/squad2_sample OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def kept(doc_id: str) -> bool:
    """Whether a paragraph belongs to the indexed half."""
    return hashlib.sha256(doc_id.encode()).digest()[0] % 2 == 0


def main(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").read_text().splitlines() if line.strip()]
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus if kept(d["doc_id"])))
    questions = []
    for line in (source / "questions.jsonl").read_text().splitlines():
        question = json.loads(line)
        if not any(kept(doc) for doc in question["doc_ids"]):
            question.update(unanswerable=True, answers=[], doc_ids=[], evidence=[])
        questions.append(question)
    (out / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    unanswerable = sum(q.get("unanswerable", False) for q in questions)
    print(f"{len(questions) - unanswerable} answerable, {unanswerable} unanswerable questions in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
