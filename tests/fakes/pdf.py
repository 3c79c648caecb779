"""Tiny PDFs written by hand (no PDF library needed): one Helvetica text line per given line, a page each.

    minimal_pdf(["Page one says hello.", "", "Page three."], title="Report")
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def minimal_pdf(pages: Sequence[str], title: str = "") -> bytes:
    """A valid PDF 1.4 file whose page k shows the lines of `pages[k]` (an empty string: a blank page)."""
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {len(pages)} >>",
        3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        objects[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>")
        stream = _text_stream(text.split("\n") if text else [])
        objects[page_id + 1] = f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"
    info_id = 4 + 2 * len(pages)
    objects[info_id] = f"<< /Title ({_escape(title)}) >>"
    return _assemble(objects, root=1, info=info_id)


def _text_stream(lines: list[str]) -> str:
    shown = " 0 -16 Td ".join(f"({_escape(line)}) Tj" for line in lines)
    return f"BT /F1 12 Tf 72 720 Td {shown} ET" if lines else ""


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _assemble(objects: dict[int, str], root: int, info: int) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n{objects[number]}\nendobj\n".encode("latin-1")
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[n]:010d} 00000 n \n" for n in range(1, size)).encode()
    out += f"trailer\n<< /Size {size} /Root {root} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def drawing_pdf(instructions: bytes, pages: int = 1) -> bytes:
    """A PDF whose every page's content stream is `instructions`, Flate-compressed (as a small file that unpacks
    to many instructions is)."""
    stream = zlib.compress(instructions, 9).decode("latin-1")
    page_ids = [4 + 2 * index for index in range(pages)]
    objects = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {pages} >>",
        3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id in page_ids:
        objects[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>")
        objects[page_id + 1] = f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n{stream}\nendstream"
    info_id = 4 + 2 * pages
    objects[info_id] = "<< /Title () >>"
    return _assemble(objects, root=1, info=info_id)


def repeated_form_pdf(instructions: bytes, times: int) -> bytes:
    """A one-page PDF that draws, `times` over, a form whose content stream is `instructions` (compressed): a page
    of a few hundred bytes that takes the reader `times` passes over the form."""
    form = zlib.compress(b"BT /F1 12 Tf " + instructions + b" ET", 9).decode("latin-1")
    page = "q /Fm1 Do Q " * times
    fonts = "/Font << /F1 3 0 R >>"
    objects = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << {fonts} /XObject << /Fm1 7 0 R >> >> "
           "/Contents 5 0 R >>",
        5: f"<< /Length {len(page)} >>\nstream\n{page}\nendstream",
        6: "<< /Title () >>",
        7: f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << {fonts} >> /Length {len(form)} "
           f"/Filter /FlateDecode >>\nstream\n{form}\nendstream",
    }
    return _assemble(objects, root=1, info=6)
