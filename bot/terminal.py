"""The terminal face of Footnote: formatted answers and an interactive chat with follow-ups."""

from __future__ import annotations

import sys

from bot.answer import Answer, Answerer, Citation, Turn

_BOLD, _DIM, _CYAN, _YELLOW, _RESET = "\033[1m", "\033[2m", "\033[36m", "\033[33m", "\033[0m"
HISTORY_TURNS = 4


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def format_citation(citation: Citation, color: bool) -> str:
    head = _paint(citation.label(), _CYAN, color)
    lines = [head, f"    “{citation.quote}”"]
    if citation.url:
        lines.append(_paint(f"    {citation.url}", _DIM, color))
    return "\n".join(lines)


def format_answer(answer: Answer, color: bool = False) -> str:
    """The answer, then its numbered sources (or the closest passages when it abstained)."""
    style = _YELLOW if answer.abstained else _BOLD
    parts = [_paint(answer.short_answer.text, _BOLD, color)] if answer.short_answer else []
    parts.append(_paint(answer.answer, style if not answer.short_answer else "", color))
    if answer.citations:
        parts += ["", "Sources:", *(format_citation(c, color) for c in answer.citations)]
    elif answer.suggestions:
        parts += ["", "Closest passages:", *(format_citation(c, color) for c in answer.suggestions)]
    return "\n".join(parts)


def chat(answerer: Answerer, stdin=sys.stdin, stdout=sys.stdout) -> int:
    """Read questions until EOF or 'quit'; earlier turns give follow-ups their context."""
    color = stdout.isatty()
    history: list[Turn] = []
    print("Ask about the indexed articles (empty line or Ctrl-D to quit).", file=stdout)
    while True:
        print(_paint("? ", _BOLD, color), end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in ("", "quit", "exit"):
            print(file=stdout)
            return 0
        answer = answerer.ask(line.strip(), history[-HISTORY_TURNS:])
        print(format_answer(answer, color) + "\n", file=stdout, flush=True)
        if not answer.refusal:
            history.append(Turn(line.strip(), answer.answer))
