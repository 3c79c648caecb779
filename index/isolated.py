"""Reading an untrusted file in a child process: killed past a time limit, within a memory limit of its own.

A few kilobytes of PDF can unpack to gigabytes of drawing instructions, and a crafted page of HTML can keep
trafilatura busy for a minute; a thread cannot be stopped, a process can. The parent runs `python -m MODULE
PARAMS_JSON` with the file's bytes on standard input; the child (`serve`) answers one JSON object on standard
output: what it read, or {"refused": reason}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from index.documents import CorpusError

MEMORY_BYTES = 1024 * 1024 * 1024
"""The child's address space: what a parser may hold at once, with Python's own."""


def read_isolated(module: str, params: dict, data: bytes, seconds: float, what: str) -> dict:
    """What `python -m module` read from `data` (CorpusError naming `what`, "the PDF", when it refused, ran out
    of memory or of `seconds`)."""
    try:
        finished = subprocess.run([sys.executable, "-m", module, json.dumps(params)], input=data,
                                  capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        raise CorpusError(f"{what} takes more than {seconds:g} s to read, the most allowed") from None
    try:
        outcome = json.loads(finished.stdout)
    except ValueError:  # the child ended without an answer: past its memory limit inside the parser, most likely
        raise CorpusError(f"{what} could not be read: reading it stopped (it may need more memory than "
                          "allowed)") from None
    if "refused" in outcome:
        raise CorpusError(outcome["refused"])
    return outcome


def serve(read: Callable[[bytes, dict], dict], what: str) -> None:
    """The child's side: limit its memory, `read(stdin bytes, params)`, write the outcome as JSON."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    params = json.loads(sys.argv[1])
    try:
        outcome = read(sys.stdin.buffer.read(), params)
    except CorpusError as refusal:
        outcome = {"refused": str(refusal)}
    except MemoryError:
        outcome = {"refused": f"{what} needs more memory to read than is allowed"}
    sys.stdout.write(json.dumps(outcome))
