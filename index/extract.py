"""Turning a fetched page or an uploaded file into `Document`s, by the same rules as the corpus folder.

HTML goes through trafilatura (article text, title, author, date, canonical URL) in a child process
(`index.webpage`) within a time limit; Markdown with front matter, plain text and JSON Lines bundles are read as
`index.documents` reads them; PDF is read with pypdf in a child process (`index.pdf`) within caps on pages,
drawing instructions and time, and every format within a text cap.

PDF pages: each page's text is normalised on its own and the pages are joined by one blank line, so the joined
text is already the document's normalised text. `Extracted.page_starts[k]` is the offset in `document.text`
where page k + 1 begins; a page without text starts where the next one does (it holds no characters), so
`Extracted.page_of(offset)` gives the page a citation shows ("p. 3") for any offset in the text.

Every document is named by `source_name`, a slug of its canonical URL (or title) plus a short hash, used as its
doc_id and the stem of its stored file; a name the user gave is never used. The same article added again is
found by the source registry (`bot.sources`): same canonical URL, or same normalised text.

Input that cannot become a document raises `CorpusError`, whose message says why.
"""

from __future__ import annotations

import codecs
import hashlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from index.documents import (
    SUPPORTED_SUFFIXES,
    CorpusError,
    Document,
    Problem,
    bundle_documents,
    decode_text,
    make_document,
    markdown_document,
    plain_text_document,
    slugify,
    too_much_text,
)
from index.fetch import Fetched
from index.pdf import PdfLimits, read_pdf
from index.webpage import read_page

UPLOAD_SUFFIXES = (*SUPPORTED_SUFFIXES, ".pdf")
_KIND_BY_SUFFIX = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html",
                   ".jsonl": "jsonl", ".pdf": "pdf"}
_KIND_BY_MEDIA_TYPE = {"text/html": "html", "application/xhtml+xml": "html", "text/markdown": "markdown",
                       "application/json": "jsonl", "application/x-ndjson": "jsonl", "application/pdf": "pdf"}
_SLUG_LENGTH = 60
_HASH_LENGTH = 10
_UNNAMED = ""  # documents get their name from `source_name` once their URL and title are known


@dataclass(frozen=True)
class ExtractLimits:
    """The most text one source may bring."""

    max_pdf_pages: int = 300
    max_text_chars: int = 2_000_000
    max_pdf_content_bytes: int = 16 * 1024 * 1024
    """A PDF's page content streams, unpacked: interpreting them costs time whether or not they draw text (a
    6.7 KB file whose one page unpacks to 4 MB of empty text commands took 6.7 s to read)."""
    max_pdf_seconds: float = 60.0
    """How long a PDF's pages may take to read (`index.pdf`: in a child process, killed past it)."""
    max_html_seconds: float = 30.0
    """How long a page's article may take to extract (`index.webpage`: in a child process, killed past it)."""


@dataclass(frozen=True)
class Extracted:
    """A document and, for a PDF, the offset in its text where each page starts (see the module docstring)."""

    document: Document
    page_starts: tuple[int, ...] = ()

    def page_of(self, offset: int) -> int | None:
        """The 1-based PDF page that holds `offset` of the document's text; None when it is not a PDF."""
        return bisect_right(self.page_starts, offset) if self.page_starts else None


def extract_fetched(fetched: Fetched, limits: ExtractLimits | None = None) -> list[Extracted]:
    """The documents in a fetched page or file, read by its content type (or, failing that, the URL's suffix)."""
    suffix = PurePosixPath(urlsplit(fetched.url).path).suffix.lower()
    kind = _KIND_BY_MEDIA_TYPE.get(fetched.content_type) or _KIND_BY_SUFFIX.get(suffix, "text")
    return _extract(kind, fetched.content, fetched.url, fetched.url, fetched.charset, limits or ExtractLimits())


def extract_upload(filename: str, data: bytes, limits: ExtractLimits | None = None) -> list[Extracted]:
    """The documents in an uploaded file, read by its suffix; the file name is only a label, never a path."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    kind = _KIND_BY_SUFFIX.get(PurePosixPath(name).suffix.lower())
    if kind is None:
        raise CorpusError(f"unsupported file type; expected one of {', '.join(UPLOAD_SUFFIXES)}")
    return _extract(kind, data, f"upload:{name}", "", None, limits or ExtractLimits())


def source_name(document: Document) -> str:
    """The document's doc_id and stored file stem: a slug of its canonical URL (or title) and a short hash.

    The hash is of the canonical URL when there is one, so a page added again keeps its name, else of the text.
    """
    url = canonical_url(document.url)
    readable = slugify(url.split("://", 1)[-1] if url else document.title)[:_SLUG_LENGTH].rstrip("-")
    digest = hashlib.sha256((url or document.text).encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return f"{readable}-{digest}"


def canonical_url(url: str) -> str:
    """`url` in the form two links to the same page share: lower-case scheme and host, no fragment; "" for one
    that does not parse ("http://[oops", from an article's metadata)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if not parts.scheme:
        return url.strip()
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _extract(kind: str, data: bytes, source: str, page_url: str, charset: str | None,
             limits: ExtractLimits) -> list[Extracted]:
    if kind == "pdf":
        extracted = [_pdf(data, source, limits)]
    elif kind == "html":
        extracted = [Extracted(read_page(data, charset, source, page_url, limits.max_html_seconds))]
    else:
        text = _decode(data, charset)
        documents = _bundle(text, source) if kind == "jsonl" else [_TEXT_READERS[kind](text, _UNNAMED, source)]
        extracted = [Extracted(document) for document in documents]
    for item in extracted:
        if len(item.document.text) > limits.max_text_chars:
            raise too_much_text(limits.max_text_chars)
    return [Extracted(_named(item.document, page_url), item.page_starts) for item in extracted]


_TEXT_READERS: dict[str, Callable[[str, str, str], Document]] = {
    "markdown": markdown_document, "text": plain_text_document}


def _named(document: Document, page_url: str) -> Document:
    """The document with the page's URL when it names none, and its `source_name` as doc_id."""
    located = replace(document, url=document.url or page_url)
    metadata = {"title": located.title, "author": located.author, "url": located.url, "published": located.published}
    return make_document(source_name(located), located.text, located.source, **metadata)


def _decode(data: bytes, charset: str | None) -> str:
    """Text in the declared charset (UTF-8 when none is declared, it is unknown, or it is no text encoding, as
    "zlib" or "base64" are)."""
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    if codec != "utf-8":
        try:
            data = data.decode(codec).encode("utf-8")
        except UnicodeDecodeError:
            raise CorpusError(f"not valid {codec} text, though the site said it was") from None
        except (LookupError, UnicodeError):  # "zlib" is no text encoding; "idna" reads host names only
            pass
    return decode_text(data)


def _bundle(text: str, source: str) -> list[Document]:
    """Every article of a JSON Lines file; one bad line refuses the whole file, so nothing is half-added."""
    documents = []
    for item in bundle_documents(text, source):
        if isinstance(item, Problem):
            raise CorpusError(f"line {item.source.removeprefix(source + ':')}: {item.reason}")
        documents.append(item)
    return documents


def _pdf(data: bytes, source: str, limits: ExtractLimits) -> Extracted:
    read = read_pdf(data, PdfLimits(limits.max_pdf_pages, limits.max_text_chars, limits.max_pdf_content_bytes,
                                    limits.max_pdf_seconds))
    text, starts = _join_pages(read.pages)
    if not text:
        raise CorpusError("the PDF has no text to read (it may hold only scanned images)")
    return Extracted(make_document(_UNNAMED, text, source, title=read.title, author=read.author), starts)


def _join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Normalised page texts joined by a blank line, and the offset where each page starts in the result."""
    text = "\n\n".join(page for page in pages if page)
    starts, offset = [], 0
    for page in pages:
        starts.append(min(offset, len(text)))
        if page:
            offset += len(page) + 2
    return text, tuple(starts)


