"""Corpus loading: every format, normalisation, ids and hashes, and one clear line per bad input."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.documents import load_corpus, normalise_text, path_doc_id
from tests.conftest import examples

ARTICLE = "Officials met on Monday.\n\nThe talks ended on Tuesday with a deal worth $3 billion."


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_markdown_front_matter_with_quoted_values(tmp_path: Path) -> None:
    write(tmp_path / "talks.md", '---\ntitle: "Talks: a deal"\nauthor: \'Ana O\'\'Neil\'\nurl: https://example.org/a\n'
          "published: 2024-04-02\n---\n\n" + ARTICLE)
    [doc] = load_corpus(tmp_path).documents
    assert (doc.title, doc.author, doc.url, doc.published) == (
        "Talks: a deal", "Ana O'Neil", "https://example.org/a", "2024-04-02")
    assert doc.text == ARTICLE
    assert doc.doc_id == "talks"


def test_plain_text_title_is_first_line(tmp_path: Path) -> None:
    write(tmp_path / "news" / "Big Story.txt", "Big talks end\n\n" + ARTICLE)
    [doc] = load_corpus(tmp_path).documents
    assert doc.title == "Big talks end"
    assert doc.doc_id == "news-big-story"
    assert doc.text.startswith("Big talks end\n\nOfficials met")


def test_a_plain_text_title_is_a_paragraph_of_its_own(tmp_path: Path) -> None:
    """With no blank line after it, the title line would run into the first sentence and its quote."""
    write(tmp_path / "chile.txt", "Plain text headline\r\nThe central bank of Chile raised rates on Thursday.\n")
    [doc] = load_corpus(tmp_path).documents
    assert doc.title == "Plain text headline"
    assert doc.text == "Plain text headline\n\nThe central bank of Chile raised rates on Thursday."


def test_html_main_text_is_extracted_without_boilerplate(tmp_path: Path) -> None:
    body = " ".join(["The minister said the agreement covers energy, mining and shipping."] * 6)
    write(tmp_path / "page.html", f"""<html><head><title>Energy deal signed</title>
        <script>var tracking = "do not index me";</script></head>
        <body><nav>Home | World | Sport</nav><article><h1>Energy deal signed</h1>
        <p>{body}</p><p>Talks continue on Friday in the capital.</p></article>
        <footer>Copyright footer text</footer></body></html>""")
    [doc] = load_corpus(tmp_path).documents
    assert "agreement covers energy" in doc.text and "Talks continue on Friday" in doc.text
    assert "do not index me" not in doc.text and "Copyright footer" not in doc.text
    assert doc.title == "Energy deal signed"
    assert doc.text.split("\n\n")[-1] == "Talks continue on Friday in the capital."  # each block a paragraph


@pytest.mark.parametrize(("head", "published"), [
    ("", ""),  # a footer's "Copyright 2023" is no publication date (it was taken for 2023-01-01)
    ('<meta property="article:published_time" content="2023-06-14T10:00:00Z">', "2023-06-14"),
])
def test_html_date_comes_from_the_pages_markup_only(tmp_path: Path, head: str, published: str) -> None:
    body = " ".join(["Iranian President Ebrahim Raisi arrived in Havana, where Cuban leaders welcomed him."] * 4)
    write(tmp_path / "page.html", f"""<html><head><title>Cuba welcomes Raisi</title>{head}</head>
        <body><article><h1>Cuba welcomes Raisi</h1><p>{body}</p><p>The two countries signed six agreements.</p>
        </article><footer>Copyright 2023 Example News</footer></body></html>""")
    [doc] = load_corpus(tmp_path).documents
    assert doc.published == published


def test_jsonl_bundle_and_its_bad_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"doc_id": "a1", "title": "One", "text": ARTICLE, "url": "https://x.org/1"}),
             "{not json",
             json.dumps({"title": "no id", "text": "x"}),
             json.dumps({"doc_id": "a2", "text": "Second article text."}),
             "[" * 1001 + "]" * 1001,
             '{"doc_id": "big", "text": "x", "n": ' + "9" * 5000 + "}"]
    write(tmp_path / "export.jsonl", "\n".join(lines) + "\n")
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a1", "a2"]
    assert result.documents[0].url == "https://x.org/1"
    assert result.documents[1].title == "Second article text."
    reasons = {p.source.rsplit(":", 1)[1]: p.reason for p in result.problems}
    assert reasons["2"].startswith("malformed JSON line") and reasons["3"] == "missing 'doc_id'"
    assert reasons["5"].startswith("malformed JSON line") and reasons["6"].startswith("malformed JSON line")


def test_normalisation_is_nfc_and_collapses_whitespace() -> None:
    raw = "Cafe\u0301\u00a0 au  lait\r\nwrapped line\n\n\n\nNext\u200b paragraph\t here "
    assert normalise_text(raw) == "Café au lait wrapped line\n\nNext paragraph here"


@pytest.mark.parametrize("raw", ["re\u00adsume\u0301", "e\u200b\u0301", "e\x07\u0301 x", "a\r\u0301", "\u0301\ufeffe"])
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalise_text(raw)
    assert normalise_text(once) == once == unicodedata.normalize("NFC", once)


def test_ids_and_hashes_are_stable_and_follow_content(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", ARTICLE)
    first = load_corpus(tmp_path).documents[0]
    assert load_corpus(tmp_path).documents[0].sha256 == first.sha256
    write(path, ARTICLE + " More.")
    assert load_corpus(tmp_path).documents[0].sha256 != first.sha256
    assert path_doc_id(tmp_path / "World" / "Big Deal!.md", tmp_path) == "world-big-deal"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.md", "", "empty file"),
    ("blank.txt", "  \n\n ", "empty file (only whitespace)"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("latin1.txt", "caf\xe9 au lait".encode("latin-1"), "not valid UTF-8 (byte 0xe9 at offset 3)"),
    ("report.pdf", "%PDF-1.4", "unsupported file type '.pdf'"),
    ("open.md", "---\ntitle: never closed\n\nBody text.", "malformed front matter: the opening '---' is never closed"),
    ("bad.md", "---\nthis is not a key value line\n---\nBody.", "malformed front matter at line 2"),
])
def test_bad_inputs_get_one_clear_line_and_good_ones_still_load(tmp_path: Path, name: str, content, reason: str):
    write(tmp_path / "good.md", ARTICLE)
    write(tmp_path / name, content)
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["good"]
    [problem] = result.problems
    assert problem.source.endswith(name) and problem.reason.startswith(reason)
    assert "\n" not in str(problem)


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    with (tmp_path / "huge.txt").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    [problem] = load_corpus(tmp_path).problems
    assert problem.reason.startswith("file too large (52.4 MB")


def test_missing_corpus_folder(tmp_path: Path) -> None:
    result = load_corpus(tmp_path / "nope")
    assert result.documents == [] and result.problems[0].reason == "corpus folder does not exist"


def test_hidden_files_are_ignored_and_duplicate_ids_reported(tmp_path: Path) -> None:
    write(tmp_path / ".gitkeep", "")
    write(tmp_path / "a.md", ARTICLE)
    write(tmp_path / "a.txt", ARTICLE)
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a"]
    assert [p.reason for p in result.problems] == ["duplicate document id 'a', skipped"]


def test_seed_corpus_loads_with_its_front_matter() -> None:
    [doc] = load_corpus(Path(__file__).parents[2] / "corpus").documents
    assert doc.doc_id == "raisi-maduro-caracas" and doc.author == "Christian K. Caruzo"
    assert doc.text.startswith("CARACAS, Venezuela — Iranian President Ebrahim Raisi")
    assert "\u00a0" not in doc.text


def test_links_that_lead_outside_the_corpus_are_refused_and_the_rest_loads(tmp_path: Path) -> None:
    outside = tmp_path / "home"
    (outside / "private").mkdir(parents=True)
    (outside / ".env").write_text("FOOTNOTE_DISCORD_TOKEN=secret-token\n")
    (outside / "private" / "notes.txt").write_text("Private notes\nThe safe code is 1234.\n")
    corpus = tmp_path / "corpus"
    (corpus / "inner").mkdir(parents=True)
    (corpus / "story.txt").write_text("Story\nThe bridge opened on Friday.\n")
    (corpus / "inner" / "copy.txt").symlink_to(corpus / "story.txt")  # a link inside the corpus is fine
    (corpus / "x.txt").symlink_to(outside / ".env")
    (corpus / "notes").symlink_to(outside / "private", target_is_directory=True)
    result = load_corpus(corpus)
    texts = " ".join(d.text for d in result.documents)
    assert sorted(d.doc_id for d in result.documents) == ["inner-copy", "story"]
    assert "secret-token" not in texts and "1234" not in texts
    refused = sorted(Path(p.source).name for p in result.problems if "outside the corpus folder" in p.reason)
    assert refused == ["notes", "x.txt"]


def test_front_matter_is_real_yaml(tmp_path: Path) -> None:
    write(tmp_path / "yaml.md", "---\ntitle: >-\n  Talks end\n  in a deal\nauthor: [Ana Ortiz, Li Wei]\n"
          "published: 2024-04-02\nextra: {nested: [1, 2]}\n---\n" + ARTICLE)
    [doc] = load_corpus(tmp_path).documents
    assert (doc.title, doc.author, doc.published) == ("Talks end in a deal", "Ana Ortiz, Li Wei", "2024-04-02")
    assert doc.text == ARTICLE


def test_front_matter_alias_bomb_is_not_expanded(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]" for n in range(8)]
    write(tmp_path / "bomb.md", "---\n" + "\n".join(levels) + "\ntitle: Bomb\n---\n" + ARTICLE)
    [doc] = load_corpus(tmp_path).documents
    assert doc.title == "Bomb" and doc.text == ARTICLE


_FILE_NAMES = st.sampled_from(["a.md", "b.txt", "c.html", "d.jsonl", "e.markdown", "f.htm", "g.pdf", "sub/h.md"])
_PIECES = st.sampled_from(["---\n", "title: x\n", "...\n", "<p>", "</p>", "<script>", "{", "}", '"text": "', '"',
                           "\n", "\x00", "é", "\ud800", "&amp;", "# ", ": ", "- [", "*a", "&a", "Words here. "])
_CONTENT = st.one_of(st.binary(max_size=300), st.lists(_PIECES | st.text(max_size=20), max_size=30).map("".join))


@settings(max_examples=examples(200), deadline=None)
@given(files=st.lists(st.tuples(_FILE_NAMES, _CONTENT), min_size=1, max_size=4))
def test_loaders_never_raise_and_report_each_bad_file_on_one_line(files) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, content in files:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
            path.write_bytes(data)
        result = load_corpus(root, max_file_bytes=4096)
    for document in result.documents:
        assert document.text and document.text == normalise_text(document.text)
        assert document.text.encode("utf-8") and document.title.encode("utf-8")
    for problem in result.problems:
        assert "\n" not in str(problem) and problem.reason
