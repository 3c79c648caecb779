"""Command line: `python -m bot {index,ask,chat,eval,run,start}` (also installed as `footnote`)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings, SettingsError, load_settings
from bot.scorer import ModelError
from index.builder import BuildError, BuildProgress, BuildReport
from index.documents import load_corpus, slugify
from index.embedding import EmbedderError
from index.store import SnapshotError

if TYPE_CHECKING:
    from bot.answer import Answer, Answerer
    from bot.support import SupportCheck
    from index.embedding import Embedder

log = logging.getLogger(__name__)
EXIT_FAILURE = 1
EXIT_CONFIG = 2
MAX_JSONL_LINE_CHARS = 1 << 20  # longer `ask --jsonl` lines get an error, never held whole


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # curly quotes on an ASCII terminal must not crash a command
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"footnote: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return args.handler(args, settings)
    except (SnapshotError, BuildError, ModelError, EmbedderError) as exc:
        print(f"footnote: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `python -m bot eval … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footnote", description="Answers about news articles, with citations.")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="build or update the index of the corpus")
    index.add_argument("--full", action="store_true", help="re-embed every document")
    index.add_argument("--corpus", type=Path,
                       help="corpus folder or file to index in place of FOOTNOTE_CORPUS_DIR (the index then holds "
                            "its articles only)")
    index.set_defaults(handler=_index)
    changes = index.add_subparsers(dest="change", metavar="{add,remove,sources}")
    add = changes.add_parser("add", help="add a link or a file as a source, and index it")
    add.add_argument("target", help="an http(s) link or a local .md, .txt, .html, .jsonl or .pdf file")
    remove = changes.add_parser("remove", help="remove a source by its id, and reindex")
    remove.add_argument("source_id", type=int)
    listing = changes.add_parser("sources", help="list the added sources with their ids")
    for sub in (add, remove, listing):
        sub.add_argument("--guild", type=int, default=0, help="a Discord server's id (default: the shared corpus)")

    ask = commands.add_parser("ask", help="answer one question, or JSON lines from stdin")
    ask.add_argument("question", nargs="?", help="the question")
    output = ask.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--jsonl", action="store_true", help='read {"qid", "question"} lines on stdin')
    ask.set_defaults(handler=_ask)

    database = commands.add_parser("db", help="the PostgreSQL store (FOOTNOTE_DATABASE_URL)")
    database.add_argument("action", choices=["upgrade"], help="apply the schema migrations it lacks")
    database.set_defaults(handler=_db)

    chat = commands.add_parser("chat", help="a terminal conversation (follow-up questions work)")
    chat.set_defaults(handler=_chat)

    evaluate = commands.add_parser("eval", help="score answers on a question file")
    evaluate.add_argument("questions", type=Path)
    evaluate.add_argument("--corpus", type=Path, help="corpus to index and answer from")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--split", choices=("all", "tune", "heldout"), default="all",
                          help="a fixed split of a news set (eval/splits.json)")
    evaluate.add_argument("--no-baseline", action="store_true", help="skip the plain sentence-level baseline")
    evaluate.add_argument("--min-accuracy", type=float, help="exit non-zero below this accuracy (0-1)")
    evaluate.add_argument("--min-precision", type=float, help="… below this precision of shown answers")
    evaluate.add_argument("--min-abstention", type=float, help="… below this abstention on unanswerable questions")
    evaluate.add_argument("--support", type=Path, metavar="LABELLED.jsonl", nargs="+", default=[],
                          help="also score the generated-answer support check on labelled sentences (each file)")
    evaluate.set_defaults(handler=_eval)

    run = commands.add_parser("run", help="start the Discord bot (needs FOOTNOTE_DISCORD_TOKEN)")
    run.set_defaults(handler=_run)

    start = commands.add_parser("start", help="build the index if missing, then the bot or the chat")
    start.set_defaults(handler=_start)
    return parser


class TerminalProgress:
    """A tqdm bar per stage on a terminal, plain lines otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self._bars: dict[str, object] = {}
        self._last: dict[str, int] = {}

    def __call__(self, event: BuildProgress) -> None:
        if self.interactive:
            self._bar(event)
        elif event.done == event.total or event.done - self._last.get(event.stage, 0) >= max(1, event.total // 10):
            self._last[event.stage] = event.done
            print(f"{event.stage}: {event.done}/{event.total}", file=self.stream, flush=True)

    def _bar(self, event: BuildProgress) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = self._bars[event.stage] = tqdm(total=event.total, desc=event.stage, file=self.stream,
                                                 leave=True, unit="doc" if event.stage == "documents" else "batch")
        bar.update(event.done - bar.n)
        if event.done >= event.total:
            bar.close()


_EMBEDDERS: dict[tuple, Embedder] = {}


def _shared_embedder(settings: Settings) -> Embedder:
    """One model per process and embedding configuration, whatever settings copy asks for it."""
    from bot.service import make_embedder

    key = (settings.embed_model, settings.embed_batch_size, settings.embed_batch_tokens, settings.embed_precision,
           settings.embed_backend, settings.model_cache_dir)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = make_embedder(settings)
    return _EMBEDDERS[key]


def build_index(settings: Settings, full: bool = False, corpus: Path | None = None,
                progress=None) -> BuildReport:
    from bot.service import make_builder

    builder = make_builder(settings, _shared_embedder(settings))
    report = builder.build(corpus or settings.corpus_dir, full=full, progress=progress)
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    return report


def _index(args: argparse.Namespace, settings: Settings) -> int:
    if args.change:
        return _change_sources(args, settings)
    report = build_index(settings, args.full, args.corpus, TerminalProgress())
    print(report.summary())
    return 0


def _change_sources(args: argparse.Namespace, settings: Settings) -> int:
    """`index add|remove|sources`: the same code path as Discord's /add, /remove and /sources."""
    import getpass

    from bot.library import GuildLibrary, SourceRefused, check_file_size, read_link
    from bot.sources import Adder, open_registry
    from index.documents import CorpusError
    from index.extract import extract_upload
    from index.fetch import FetchRefused

    library = GuildLibrary(settings, _shared_embedder(settings), open_registry(settings))
    operator = Adder(0, getpass.getuser() or "operator")
    try:
        if args.change == "sources":
            for source in library.registry.sources(args.guild):
                print(f"{source.source_id}\t{source.title}\t{source.url or '-'}\t{source.added_by_name}")
            return 0
        if args.change == "remove":
            if library.registry.get(args.guild, args.source_id) is None:
                where = f"server {args.guild}" if args.guild else "the shared corpus"
                raise SourceRefused(f"{where} has no source {args.source_id} (`index sources` lists them)")
            removed = library.remove(args.guild, args.source_id, operator)
            print(f"removed source {removed.source_id}: {removed.title}")
            return 0
        if "://" in args.target:
            extracted, origin = asyncio.run(read_link(args.target, settings))
        else:
            path = Path(args.target)
            try:
                check_file_size(path.stat().st_size, settings)
                data = path.read_bytes()
            except OSError as exc:
                raise SourceRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
            extracted, origin = extract_upload(path.name, data), ""
        added = library.add(args.guild, extracted, operator, origin)
        count = added.sentences
        print(f"{'updated' if added.updated else 'added'} source {added.source.source_id}: {added.source.title} "
              f"({count} {'sentence' if count == 1 else 'sentences'} indexed)")
        return 0
    except (FetchRefused, CorpusError, SourceRefused, OSError) as exc:
        print(f"footnote: not {'removed' if args.change == 'remove' else 'added'}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        library.registry.close()


def _answerer(settings: Settings, serving: bool = False):
    """The answerer over the current snapshot; `serving` (many questions to come) also settles the heap."""
    from bot.service import load_answerer, settle_heap

    answerer = load_answerer(settings, _shared_embedder(settings))
    if serving:
        settle_heap()
    return answerer


@contextmanager
def generated_asker(settings: Settings, answerer: Answerer, check: SupportCheck | None = None,
                    threshold: float | None = None) -> Iterator[Callable[[str], Answer] | None]:
    """`ask(question)` through the configured LLM (verified by `check`, else by `support_check`; extractive
    fallback), or None without one; `threshold` overrides the abstention threshold (0 for `eval`, which judges
    every answer's confidence itself); its event loop lives as long as the `with` block."""
    from bot.generation import LLMClient, generate_answer

    client = LLMClient.from_settings(settings)
    if client is None:
        yield None
        return
    check = check or support_check(settings, answerer)
    with asyncio.Runner() as runner:

        def ask(question: str) -> Answer:
            answer = answerer.ask(question, threshold=threshold)
            return runner.run(generate_answer(answer, answer.evidence, client, check=check))

        try:
            yield ask
        finally:
            runner.run(client.aclose())


def support_check(settings: Settings, answerer: Answerer) -> SupportCheck:
    """The check of generated sentences the service runs: the rules with the answerer's word vectors, and the
    learned model unless turned off."""
    from bot.service import load_support_model
    from bot.support import SupportCheck

    return SupportCheck(answerer.word_vectors, load_support_model(settings, answerer.embedder))


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    if (args.question is None) == (not args.jsonl):
        print("footnote ask: give a question, or --jsonl to read questions from stdin (not both)", file=sys.stderr)
        return EXIT_CONFIG
    answerer = _answerer(settings, serving=args.jsonl)
    with generated_asker(settings, answerer) as generated:
        return _answer_questions(args, generated or answerer.ask)


def _answer_questions(args: argparse.Namespace, ask: Callable[[str], Answer]) -> int:
    if args.jsonl:
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") if hasattr(
            sys.stdin, "buffer") else sys.stdin
        for line in bounded_lines(stdin, MAX_JSONL_LINE_CHARS):
            if line is None:
                result = {"qid": None, "error": f"input line longer than {MAX_JSONL_LINE_CHARS} characters"}
            elif line.strip("\r\n"):
                result = answer_line(line, ask)
            else:
                continue
            print(json.dumps(result), flush=True)  # ASCII JSON: valid on any stdout
        return 0
    answer = ask(args.question)
    if args.json:
        print(json.dumps(answer.to_json(), indent=1))
    else:
        from bot.terminal import format_answer

        print(format_answer(answer, color=sys.stdout.isatty()))
    return 0


def bounded_lines(stream: TextIO, limit: int) -> Iterator[str | None]:
    """The stream's lines, with None in place of a line longer than `limit` characters (never held whole)."""
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith("\n"):
            yield line
            continue
        while (rest := stream.readline(limit)) and not rest.endswith("\n"):
            pass
        yield None


def answer_line(line: str, ask: Callable[[str], Answer]) -> dict:
    """The JSON object for one `ask --jsonl` input line: the answer, or {"qid", "error"}; never raises."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return {"qid": None, "error": "malformed input line: expected a JSON object"}
    qid, question = record.get("qid"), record.get("question")
    if not isinstance(question, str):
        return {"qid": qid, "error": "the line needs a \"question\" string"}
    try:
        return ask(question).to_json(qid)
    except Exception as exc:  # one bad line must not stop the batch
        log.exception("could not answer line with qid %r", qid)
        return {"qid": qid, "error": f"could not answer: {type(exc).__name__}"}


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.terminal import chat

    return chat(_answerer(settings, serving=True))


def corpus_settings(settings: Settings, corpus: Path) -> Settings:
    """Settings that index `corpus` into its own cached folder under var/eval (rebuilt only when it changes)."""
    slug = slugify(str(corpus.resolve()))[-60:]
    return settings.model_copy(update={"corpus_dir": corpus, "index_dir": settings.index_dir.parent / "eval" / slug})


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.baseline import SentenceBaseline
    from bot.evaluation import evaluate, read_questions, select_split, side_by_side

    corpus = args.corpus or _bundled_corpus(args.questions)
    if corpus:
        settings = corpus_settings(settings, corpus)
    try:
        questions = select_split(read_questions(args.questions), args.questions.parent.name, args.split)
    except (OSError, ValueError) as exc:
        print(f"footnote eval: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    build_index(settings, corpus=settings.corpus_dir)
    documents = {d.doc_id: d for d in load_corpus(Path(settings.corpus_dir)).documents}
    answerer = _answerer(settings)
    reports = [evaluate(lambda q: answerer.ask(q, threshold=0.0), questions, documents, answerer.threshold,
                        answerer.ranked_documents, label="extractive")]
    check = support_check(settings, answerer) if settings.llm_enabled or args.support else None
    with generated_asker(settings, answerer, check, threshold=0.0) as generated_ask:
        if generated_ask:
            reports.append(evaluate(generated_ask, questions, documents, answerer.threshold, label="generated"))
    if not args.no_baseline:
        baseline = SentenceBaseline(answerer.snapshot, answerer.embedder)
        reports.append(evaluate(baseline.ask, questions, documents, answerer.model.baseline_abstain_below,
                                label="baseline"))
    if args.json:
        print(json.dumps({r.label: r.to_json() for r in reports}, ensure_ascii=False, indent=1))
    else:
        print(side_by_side(reports))
        for report in reports:
            print(f"\nrisk–coverage ({report.label}, {report.questions} questions)")
            print("\n".join(report.risk_lines()))
        print(f"\nreliability ({reports[0].label})")
        print("\n".join(reports[0].reliability_lines()))
    for labelled in args.support:
        print(_support_line(labelled, check), file=sys.stderr if args.json else sys.stdout)
    return _eval_status(reports[0], args)


def _support_line(path: Path, check: SupportCheck) -> str:
    """The support check's precision and recall on a labelled file (tests/data/support_*.jsonl)."""
    from bot.support import score_labelled

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return f"{path.name}: {score_labelled(rows, check).line()}"


def _bundled_corpus(questions: Path) -> Path | None:
    """An evaluation set's own corpus (`corpus.jsonl` beside its questions), if it has one."""
    corpus = questions.parent / "corpus.jsonl"
    return corpus if corpus.is_file() else None


def _eval_status(report, args: argparse.Namespace) -> int:
    """EXIT_FAILURE when a figure is below its --min-* bound, naming each one."""
    failures = [f"{name} {value:.3f} is below {bound}"
                for name, value, bound in (("accuracy", report.accuracy, args.min_accuracy),
                                           ("precision", report.precision, args.min_precision),
                                           ("abstention", report.abstention_recall, args.min_abstention))
                if bound is not None and (value or 0.0) < bound]
    for failure in failures:
        print(f"footnote eval: {failure}", file=sys.stderr)
    return EXIT_FAILURE if failures else 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is None:
        print("footnote: FOOTNOTE_DATABASE_URL is not set (the file store needs no migrations)", file=sys.stderr)
        return EXIT_CONFIG
    from index.migrations import upgrade

    print(f"database schema at revision {upgrade(settings.database_url.get_secret_value())}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.discord.app import run_bot

    return run_bot(settings)


def _start(args: argparse.Namespace, settings: Settings) -> int:
    from bot.service import make_store

    if make_store(settings).current_path() is None:
        print(f"No index yet: building one from {settings.corpus_dir} …", file=sys.stderr)
        print(build_index(settings, progress=TerminalProgress()).summary())
    if settings.discord_token is not None:
        return _run(args, settings)
    print("FOOTNOTE_DISCORD_TOKEN is not set: starting the terminal chat instead.", file=sys.stderr)
    return _chat(args, settings)
