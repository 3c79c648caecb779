"""A PDF's page texts, read by pypdf in a child process (`index.isolated`) that is killed past a time limit.

Reading a PDF interprets its pages' drawing instructions, and a file of a few kilobytes can hold gigabytes of
them once unpacked, in the page or in forms it draws many times (a 1.9 KB file took 16 s to read). So the
pages are read in `python -m index.pdf`, with a memory limit of its own, killed when `PdfLimits.max_seconds`
pass; the bot's process never runs pypdf on an upload. Before reading any text the child also refuses a file
whose page content streams unpack to more than `max_content_bytes`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from index.documents import CorpusError, normalise_text, too_much_text
from index.isolated import read_isolated, serve


@dataclass(frozen=True)
class PdfLimits:
    """Pages, characters of text, bytes of page content streams unpacked, and seconds (`ExtractLimits`)."""

    max_pages: int
    max_chars: int
    max_content_bytes: int
    max_seconds: float


@dataclass(frozen=True)
class PdfText:
    pages: list[str]
    """Each page's normalised text ("" for a page without text)."""
    title: str
    author: str


def read_pdf(data: bytes, limits: PdfLimits) -> PdfText:
    """The PDF's page texts and metadata, read in a child process (CorpusError with the reason otherwise)."""
    return PdfText(**read_isolated("index.pdf", asdict(limits), data, limits.max_seconds, "the PDF"))


def read_pdf_here(data: bytes, limits: PdfLimits) -> PdfText:
    """What the child process does: the checks, then every page's text, in this process."""
    from pypdf import PdfReader

    with _damaged_pdf_refused():
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise CorpusError("the PDF is encrypted; only unencrypted PDFs can be read")
        if len(reader.pages) > limits.max_pages:
            raise CorpusError(f"the PDF has {len(reader.pages)} pages; the most that can be read is "
                              f"{limits.max_pages}")
        _check_content_size(reader, limits.max_content_bytes)
        pages = list(_page_texts(reader, limits.max_chars))
        info = reader.metadata
        title, author = (info.title or "", info.author or "") if info else ("", "")
    return PdfText(pages, title, author)


def _check_content_size(reader, max_bytes: int) -> None:
    """Refuse a PDF whose pages' content streams unpack to more than `max_bytes` (unpacking is fast;
    interpreting what it unpacks is what takes time)."""
    total = 0
    for page in reader.pages:
        contents = page.get_contents()
        total += len(contents.get_data()) if contents is not None else 0
        if total > max_bytes:
            raise CorpusError(f"the PDF's pages hold more than {max_bytes / (1024 * 1024):g} MB of drawing "
                              "instructions, the most that can be read")


def _page_texts(reader, max_chars: int) -> Iterator[str]:
    """Each page's normalised text, refused as soon as the total passes `max_chars`."""
    total = 0
    for page in reader.pages:
        text = normalise_text(page.extract_text() or "")
        total += len(text)
        if total > max_chars:
            raise too_much_text(max_chars)
        yield text


@contextmanager
def _damaged_pdf_refused() -> Iterator[None]:
    """pypdf raises many kinds of exception on a malformed file: each becomes one clear refusal."""
    try:
        yield
    except (CorpusError, MemoryError):
        raise
    except Exception:
        raise CorpusError("the PDF is damaged and cannot be read") from None


def _read_in_child(data: bytes, params: dict) -> dict:
    return asdict(read_pdf_here(data, PdfLimits(**params)))


if __name__ == "__main__":
    serve(_read_in_child, "the PDF")
