"""Extraction of fetched pages and uploads: article and metadata, PDF pages, caps, names and duplicates."""

from __future__ import annotations

import io
import json
import time

import pytest
from pypdf import PdfReader, PdfWriter

from index.documents import CorpusError, Document, normalise_text
from index.extract import ExtractLimits, extract_fetched, extract_upload, source_name
from index.fetch import Fetched
from tests.fakes.pdf import drawing_pdf, minimal_pdf, repeated_form_pdf

PARAGRAPH = " ".join(["The new bridge over the river opened to traffic on Friday after six years of work."] * 3)
ARTICLE_HTML = f"""<!doctype html><html><head><meta charset="utf-8"><title>Bridge opens | City News</title>
<link rel="canonical" href="https://News.Example.org/2024/03/05/bridge-opens">
<meta property="og:title" content="River bridge opens after six years">
<meta name="author" content="Ana Ortiz">
<meta property="article:published_time" content="2024-03-05T09:00:00Z">
<script>var tracking = "do not index me";</script></head>
<body><nav>Home | City | Sport</nav><article><h1>River bridge opens after six years</h1>
<p>{PARAGRAPH}</p><p>The mayor said the bridge cost 40 million euros.</p></article>
<footer>Copyright City News</footer></body></html>"""
PAGES = ["Page one: the council met on Monday.\nIt approved the budget.", "", "Page three: the vote was 7 to 2."]


def fetched(content: bytes | str, content_type: str = "text/html", url: str = "http://127.0.0.1:8080/story",
            charset: str | None = "utf-8") -> Fetched:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return Fetched(url, content_type, data, charset)


def encrypted(pdf: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_fetched_article_keeps_its_text_title_author_date_and_canonical_url() -> None:
    [item] = extract_fetched(fetched(ARTICLE_HTML))
    doc = item.document
    assert (doc.title, doc.author, doc.published) == ("River bridge opens after six years", "Ana Ortiz", "2024-03-05")
    assert doc.url == "https://news.example.org/2024/03/05/bridge-opens"
    assert "opened to traffic on Friday" in doc.text and "40 million euros" in doc.text
    assert "do not index me" not in doc.text and "Copyright" not in doc.text
    assert doc.source == "http://127.0.0.1:8080/story"
    assert item.page_starts == () and item.page_of(0) is None


def test_a_page_without_a_canonical_url_keeps_the_fetched_one() -> None:
    html = ARTICLE_HTML.replace('<link rel="canonical" href="https://News.Example.org/2024/03/05/bridge-opens">', "")
    [item] = extract_fetched(fetched(html, url="https://city.example/news/bridge"))
    assert item.document.url == "https://city.example/news/bridge"


def test_a_page_with_no_article_text_is_refused() -> None:
    with pytest.raises(CorpusError, match="no article text found in the HTML"):
        extract_fetched(fetched("<html><head><title>Menu</title></head><body><nav></nav></body></html>"))


def test_the_declared_charset_is_used() -> None:
    [item] = extract_fetched(fetched("Café au lait\n\nServed at noon.".encode("latin-1"), "text/plain",
                                     charset="ISO-8859-1"))
    assert item.document.text == "Café au lait\n\nServed at noon."


@pytest.mark.parametrize(("charset", "content_type"), [
    ("zlib", "text/plain"), ("base64", "text/plain"), ("rot13", "text/plain"),
    ("zlib", "text/html"), ("idna", "text/html"), ("rot13", "text/html"),
])
def test_a_charset_that_is_no_text_encoding_is_read_as_utf8(charset: str, content_type: str) -> None:
    body = ARTICLE_HTML if content_type == "text/html" else "Café au lait\n\nServed at noon."
    [item] = extract_fetched(fetched(body, content_type, charset=charset))
    assert "40 million euros" in item.document.text if content_type == "text/html" else item.document.text == (
        "Café au lait\n\nServed at noon.")


def test_a_link_in_an_articles_metadata_that_does_not_parse_is_no_link() -> None:
    bundle = json.dumps({"doc_id": "a", "title": "Ferry", "url": "http://[oops", "text": "The ferry runs daily."})
    [item] = extract_upload("bundle.jsonl", bundle.encode())
    assert item.document.doc_id == source_name(item.document) and item.document.doc_id.startswith("ferry-")


def test_text_that_is_not_in_its_charset_is_refused() -> None:
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        extract_fetched(fetched("Café".encode("latin-1"), "text/plain", charset=None))


def test_markdown_served_as_plain_text_is_read_as_markdown_by_its_suffix() -> None:
    body = "---\ntitle: Council report\nauthor: Li Wei\n---\n\nThe council met on Monday."
    [item] = extract_fetched(fetched(body, "text/plain", url="https://raw.example/report.md"))
    assert (item.document.title, item.document.author) == ("Council report", "Li Wei")
    assert item.document.text == "The council met on Monday."
    assert item.document.url == "https://raw.example/report.md"


@pytest.mark.parametrize(("filename", "content", "title"), [
    ("notes.md", "---\ntitle: Notes\n---\nThe council met.", "Notes"),
    ("story.txt", "Bridge opens\n\nThe bridge opened on Friday.", "Bridge opens"),
    ("page.HTML", ARTICLE_HTML, "River bridge opens after six years"),
])
def test_uploads_are_read_by_their_suffix(filename: str, content: str, title: str) -> None:
    [item] = extract_upload(filename, content.encode("utf-8"))
    assert item.document.title == title and item.document.source == f"upload:{filename}"


def test_an_uploaded_bundle_gives_every_article_and_one_bad_line_refuses_it_all() -> None:
    lines = [json.dumps({"doc_id": "../../etc/passwd", "title": "One", "text": "First article.",
                         "url": "https://x.example/1"}),
             json.dumps({"doc_id": "b", "title": "Two", "text": "Second article."})]
    items = extract_upload("export.jsonl", "\n".join(lines).encode())
    assert [item.document.title for item in items] == ["One", "Two"]
    assert all("/" not in item.document.doc_id and ".." not in item.document.doc_id for item in items)
    with pytest.raises(CorpusError, match=r"^line 2: malformed JSON line"):
        extract_upload("export.jsonl", (lines[0] + "\n{not json").encode())
    with pytest.raises(CorpusError, match="empty file"):
        extract_upload("export.jsonl", b"\n \n")


@pytest.mark.parametrize("filename", ["report.docx", "archive.zip", "noext", "story.txt.exe"])
def test_other_upload_types_are_refused(filename: str) -> None:
    with pytest.raises(CorpusError, match=r"unsupported file type; expected one of \.md"):
        extract_upload(filename, b"Some text.")


def test_a_pdf_keeps_where_each_page_starts() -> None:
    [item] = extract_upload("council.pdf", minimal_pdf(PAGES, title="Council minutes"))
    doc = item.document
    assert doc.title == "Council minutes"
    assert doc.text == ("Page one: the council met on Monday. It approved the budget.\n\n"
                        "Page three: the vote was 7 to 2.")
    assert doc.text == normalise_text(doc.text)
    assert len(item.page_starts) == 3
    assert doc.text[item.page_starts[0]:].startswith("Page one")
    assert item.page_starts[1] == item.page_starts[2] and doc.text[item.page_starts[2]:].startswith("Page three")
    assert item.page_of(doc.text.index("approved")) == 1
    assert item.page_of(doc.text.index("the vote")) == 3


def test_a_fetched_pdf_with_blank_pages_is_titled_by_its_first_line() -> None:
    pdf = minimal_pdf(["", "Only page two has text.", ""])
    [item] = extract_fetched(fetched(pdf, "application/pdf", charset=None))
    assert item.document.title == "Only page two has text."
    assert item.page_starts == (0, 0, len(item.document.text))
    assert item.page_of(0) == item.page_of(len(item.document.text) - 1) == 2


@pytest.mark.parametrize(("pdf", "reason"), [
    (encrypted(minimal_pdf(PAGES)), "the PDF is encrypted"),
    (b"%PDF-1.4\nthis is not really a PDF", "the PDF is damaged"),
    (minimal_pdf(PAGES)[:300], "the PDF is damaged"),
    (minimal_pdf(["", ""]), "the PDF has no text"),
])
def test_pdfs_that_cannot_be_read_are_refused(pdf: bytes, reason: str) -> None:
    with pytest.raises(CorpusError, match=f"^{reason}"):
        extract_upload("file.pdf", pdf)


def test_pdf_caps_on_pages_and_text() -> None:
    with pytest.raises(CorpusError, match="the PDF has 3 pages; the most that can be read is 2"):
        extract_upload("file.pdf", minimal_pdf(PAGES), ExtractLimits(max_pdf_pages=2))
    with pytest.raises(CorpusError, match="more than 40 characters of text"):
        extract_upload("file.pdf", minimal_pdf(PAGES), ExtractLimits(max_text_chars=40))


def test_a_small_pdf_that_unpacks_to_megabytes_of_drawing_is_refused_before_it_is_read() -> None:
    empty_text = b"BT /F1 12 Tf 72 720 Td " + b"() Tj " * 200_000 + b"ET"  # 1.2 MB, no text drawn
    bomb = drawing_pdf(empty_text, pages=2)
    assert len(bomb) < 10_000
    with pytest.raises(CorpusError, match="more than 2 MB of drawing instructions"):
        extract_upload("file.pdf", bomb, ExtractLimits(max_pdf_content_bytes=2 * 1024 * 1024))
    readable = drawing_pdf(b"BT /F1 12 Tf 72 720 Td (The council met on Monday.) Tj ET", pages=2)
    [extracted] = extract_upload("file.pdf", readable, ExtractLimits(max_pdf_content_bytes=200))
    assert "The council met on Monday." in extracted.document.text


def test_a_pdf_that_draws_one_form_many_times_is_refused_when_its_time_runs_out() -> None:
    started = time.perf_counter()
    with pytest.raises(CorpusError, match="the PDF takes more than 1 s to read"):
        extract_upload("file.pdf", repeated_form_pdf(b"() Tj " * 80_000, times=200), ExtractLimits(max_pdf_seconds=1))
    assert time.perf_counter() - started < 5


def test_a_page_whose_extraction_runs_past_its_time_is_refused_and_stopped() -> None:
    """Trafilatura's time grows with the markup (20,000 links: 1.5 s here, 10 MB of them a minute): it runs in a
    child process that is killed when its time is up, not in a thread that would go on."""
    links = " ".join(f'<a href="/x{n}">link {n}</a>' for n in range(20_000))
    page = f"<html><body><article><p>The council met on Monday.</p><p>{links}</p></article></body></html>"
    started = time.perf_counter()
    with pytest.raises(CorpusError, match=r"the page takes more than 0\.5 s to read"):
        extract_upload("page.html", page.encode(), ExtractLimits(max_html_seconds=0.5))
    assert time.perf_counter() - started < 3


def test_the_text_cap_holds_for_every_format() -> None:
    with pytest.raises(CorpusError, match="more than 10 characters"):
        extract_upload("story.txt", b"A story that is longer than ten characters.", ExtractLimits(max_text_chars=10))


def test_names_come_from_the_canonical_url_or_the_title_never_from_the_file_name() -> None:
    [page] = extract_fetched(fetched(ARTICLE_HTML))
    assert page.document.doc_id == source_name(page.document)
    assert page.document.doc_id.startswith("news-example-org-2024-03-05-bridge-opens-")
    [upload] = extract_upload("../../../etc/cron.d/evil.txt", b"Harmless title\n\nBody text.")
    assert upload.document.doc_id.startswith("harmless-title-") and upload.document.source == "upload:evil.txt"
    long = Document("x", "A " * 200, "Body.", "s")
    assert len(source_name(long)) <= 60 + 1 + 10


def test_the_same_link_keeps_its_name_when_its_text_changes() -> None:
    [first] = extract_fetched(fetched(ARTICLE_HTML))
    [second] = extract_fetched(fetched(ARTICLE_HTML.replace("40 million", "45 million")))
    assert first.document.doc_id == second.document.doc_id and first.document.text != second.document.text


