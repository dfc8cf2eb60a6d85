"""The `qa` command: a thin shell over the library calls (index, search, ask, eval, bench, serve)."""

# About 470 lines, kept in one module on purpose: each command's options (one small function per
# command) sit beside its handler (`_cmd_*`), and `qa --help` is read from one place.
#
# Each handler imports what its command needs inside it, on purpose: `qa --help`, `qa ask` or
# `qa serve` never load torch (training), the evaluation harness or a benchmark, and the heavy
# runtime parts (FAISS, the encoder, Gradio) load only for the commands that use them. The one
# research import at the top, `qa.bench`, is its registry of names only.

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qa.bench import BENCHMARKS, run_bench
from qa.config import MODES, Settings
from qa.errors import QAError, SettingsError
from qa.runtime import configure_process
from qa.terminal import install, json_text, visible

# `qa eval` without --set: the seed set, then the TEST set in users' own words (nothing fitted on it).
EVAL_SETS = (Path("eval/qa_pairs.jsonl"), Path("eval/own_words.jsonl"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `qa` command line; returns the process exit status.

    Everything it prints passes through qa/terminal.py: control characters from documents, file
    names and questions are shown as escapes, never written raw.
    """
    undo = install()
    try:
        return _run(argv)
    finally:
        undo()


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        configure_process(settings.threads)
        return int(args.func(args, settings) or 0)
    except QAError as exc:
        return _fail(str(exc))
    except OSError as exc:
        # A folder that cannot be written or read (permissions, a full disk): say which.
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}. Check the path and its permissions.")
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    """One error line on stderr (it may quote a file name or the question: shown inert)."""
    print(f"qa: error: {visible(message)}", file=sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors quote what was typed: shown inert like everything else."""

    def _print_message(self, message: str, file: Any = None) -> None:
        super()._print_message(visible(message), file)


def _command(sub: argparse._SubParsersAction[_Parser], name: str, help_text: str,
             epilog: str | None = None) -> argparse.ArgumentParser:
    """A subcommand taking --index."""
    # An epilog is a list, one entry a line: its line breaks are kept.
    formatter = argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=formatter)
    p.add_argument("--index", type=Path, help="index folder (default: index)")
    return p


def _index_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa index`."""
    p = _command(sub, "index", "build or update the index of a corpus folder")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: seeds)")
    p.add_argument("--rebuild", action="store_true", help="embed every file again")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--engine", choices=("local", "ray"),
                   help="where chunking and embedding run: this process (local, the default) or a Ray "
                        "cluster through Ray Data (needs `pip install 'qa[ray]'`)")
    p.add_argument("--ray-address", help="Ray cluster to use with --engine ray (e.g. auto or ray://HOST:10001; "
                                         "default: start a local Ray)")
    p.add_argument("--watch", action="store_true",
                   help="keep watching the corpus folder and update the index when files change")
    p.add_argument("--dense-index", choices=("auto", "flat", "ivf", "hnsw"),
                   help="dense layer: auto (exact Flat below 50,000 chunks, IVF at or above), or one of them")
    p.add_argument("--verify", action="store_true",
                   help="build nothing: check every file of the index against its checksum, whole (a load "
                        "samples files over 16 MB), and every stored vector")
    p.set_defaults(func=_cmd_index)


def _query_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa search` and `qa ask`."""
    p = _command(sub, "search", "show the passages retrieved for a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="number of passages (default: 5)")
    p.add_argument("--mode", choices=MODES, help="retriever (default: hybrid)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _filter_arguments(p)
    p.set_defaults(func=_cmd_search)

    p = _command(sub, "ask", "answer a question with quoted, cited sources")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print JSON")
    _filter_arguments(p)
    p.set_defaults(func=_cmd_ask)


def _eval_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa eval`."""
    p = _command(sub, "eval", "score retrieval, answers, citations and abstention on QA sets, side by side")
    p.add_argument("--set", type=Path, action="append", dest="sets",
                   help="a QA set (JSONL); repeat it to compare sets (default: "
                        + " and ".join(str(s) for s in EVAL_SETS) + ", the second a TEST set)")
    p.add_argument("--report", type=Path, default=Path("eval/reports/latest"),
                   help="report folder (with several sets: a comparison there, each set's report in a subfolder)")
    p.add_argument("--corpus", type=Path, help="corpus the set is written over (default: seeds)")
    p.set_defaults(func=_cmd_eval)


def _bench_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa bench`."""
    p = _command(sub, "bench", "run a benchmark and write its report: " + ", ".join(b.name for b in BENCHMARKS),
                epilog="benchmarks:\n" + "\n".join(f"  {b.name:<10} {b.description}" for b in BENCHMARKS))
    p.add_argument("name", choices=[b.name for b in BENCHMARKS], help="the benchmark, one of those listed below")
    p.add_argument("--data", type=Path, help="benchmark data folder (default: ../shared/benchmarks/...)")
    p.add_argument("--report", type=Path, help="report folder (default: eval/reports/<name>)")
    p.add_argument("--sample", type=int, help="score a fixed, seeded sample of this many questions")
    p.add_argument("--corpus", type=Path, help="corpus for the latency benchmark (default: seeds)")
    p.add_argument("--compare-reader", type=Path, dest="compare_reader",
                   help="squad: another reader's folder (reader.onnx + reader.json, e.g. the previous weights "
                        "from git history) scored beside the configured one")
    p.add_argument("--full", action="store_true",
                   help="indexing: also build all of SciFact before/now (about 45 min on 2 cores)")
    p.add_argument("--sizes", default="100000,1000000",
                   help="scale: index sizes in chunks, comma-separated (default 100000,1000000; about "
                        "10 min and 9 GiB of disk on 2 cores)")
    p.set_defaults(func=_cmd_bench)


def _train_reader_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa train-reader`."""
    p = sub.add_parser("train-reader", help="train the reading model on SQuAD (held-out articles fixed)",
                       description="Fine-tune all-MiniLM-L6-v2 into the extractive reader on the SQuAD dev "
                                   "sets' training articles, evaluate it on the 17 held-out articles, and write "
                                   "int8 ONNX weights, reader.json and MODEL_CARD.md to --out. Use them with "
                                   "reader_model = \"DIR\" in qa.toml.")
    p.add_argument("--data", type=Path, help="folder holding squad-v1.1-dev and squad-v2.0-dev "
                                             "(default: ../shared/benchmarks)")
    p.add_argument("--out", type=Path, default=Path("reader-model"), help="output folder (default: reader-model)")
    p.add_argument("--epochs", type=int, default=4,
                   help="passes over the training data (default: 4; 0 with --init: no training, only the "
                        "export, int8 choice and held-out figures, redone on the --init weights)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
    p.add_argument("--batch", type=int, default=32, help="windows per step (default: 32)")
    p.add_argument("--max-len", type=int, default=192, help="word pieces per window (default: 192)")
    p.add_argument("--seed", type=int, default=13, help="random seed (default: 13)")
    p.add_argument("--swap-prob", type=float, default=0.3, dest="swap_prob",
                   help="share of answerable questions that also yield an entity-swapped unanswerable copy "
                        "each epoch (default: 0.3; 0: none)")
    p.add_argument("--other-paragraph-prob", type=float, default=0.0, dest="other_paragraph_prob",
                   help="share of answerable questions also paired, unanswerable, with another paragraph of "
                        "their article that lacks the answer (default: 0)")
    p.add_argument("--paraphrase-prob", type=float, default=0.0, dest="paraphrase_prob",
                   help="share of answerable questions asked in other words each epoch: WordNet synonyms for "
                        "the words shared with the paragraph, a filler word dropped (default: 0; needs "
                        "Debian's wordnet-base)")
    p.add_argument("--own-words-train", type=Path, action="append", dest="own_words_train",
                   help="also train on these questions in users' own words (JSON lines naming SQuAD v1.1 "
                        "paragraphs of the training articles, as training-data/squad_own_words_train.jsonl does); "
                        "give it once per file, in order (a file given twice is seen twice as often)")
    p.add_argument("--own-words-repeat", type=int, default=2, dest="own_words_repeat",
                   help="how many times an epoch the --own-words-train questions are seen (default: 2)")
    p.add_argument("--own-words-dev", type=Path, dest="own_words_dev",
                   help="development questions in users' own words whose SQuAD 2.0 F1 joins the choice of "
                        "epoch (JSON lines naming SQuAD v2.0 paragraphs of the training and validation "
                        "articles, as eval/squad_own_words_dev.jsonl does)")
    p.add_argument("--quantization", default="auto",
                   help="the int8 form to ship: auto (the best on validation; default) or one by name "
                        "(per-channel, per-channel-7bit, per-tensor; per-channel-7bit computes the same on every "
                        "x86 CPU); each form is scored either way")
    p.add_argument("--patience", type=int, default=0,
                   help="stop when validation has not improved for this many epochs (default: 0, never)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint (written after every epoch) is in --out, with the "
                        "same settings; start one when there is none")
    p.add_argument("--finish", action="store_true",
                   help="with --resume: train no further epoch, export the best weights the checkpoint holds "
                        "(a run cut short)")
    p.add_argument("--limit", type=int, default=0,
                   help="use at most this many questions of each part (a quick trial; default: all)")
    p.add_argument("--init", type=Path,
                   help="continue from an earlier run: its --out folder (which keeps reader-fp32.onnx), or a "
                        "folder with only the int8 reader.onnx such as qa/reader/weights (dequantized); "
                        "default: start from all-MiniLM-L6-v2")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where torch trains: auto (a CUDA GPU when torch sees one, else the CPU; default), "
                        "cpu or cuda; the export and held-out figures always run on the CPU")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train_reader)


def _serve_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`qa serve`."""
    p = _command(sub, "serve", "start the web chat (same as: python app.py)")
    p.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: 7860)")
    p.add_argument("--corpus", type=Path, help="corpus to index when the index is missing")
    p.add_argument("--update", action="store_true", help="first bring the index up to date with the corpus")
    collection_arguments(p)
    p.set_defaults(func=_cmd_serve)



def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qa", description="Cited answers over a folder of documents.")
    parser.add_argument("--config", type=Path, help="a TOML file of settings (see qa/config.py)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _index_command(sub)
    _query_commands(sub)
    _eval_command(sub)
    _bench_command(sub)
    _train_reader_command(sub)
    _serve_command(sub)
    return parser


def collection_arguments(p: argparse.ArgumentParser) -> None:
    """The collections a server holds (qa/collections.py); the same options in app.py."""
    p.add_argument("--collection", action="append", dest="collections", metavar="NAME=CORPUS:INDEX",
                   help="serve this collection (repeat for several); the index is built from the corpus "
                        "when it is missing")
    p.add_argument("--collections", type=Path, dest="collections_folder", metavar="DIR",
                   help="serve every qa index inside DIR as a collection named after its folder")


def _filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", help="only documents whose doc_id matches these globs (comma-separated, "
                                  "e.g. 'reports/*.pdf,*2024*')")
    p.add_argument("--since", help="only documents dated on or after this day (YYYY-MM-DD)")
    p.add_argument("--until", help="only documents dated on or before this day (YYYY-MM-DD)")


def _where(args: argparse.Namespace) -> dict[str, Any]:
    return {"docs": args.docs, "since": args.since, "until": args.until}


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from --config and the options; the command line shows progress bars unless
    --quiet is given or the config file says otherwise."""
    overrides: dict[str, Any] = {}
    for name in ("corpus", "index", "host", "port", "engine", "ray_address", "dense_index", "collections",
                 "collections_folder"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    values = Settings.read_file(args.config) if args.config is not None else {}
    values.setdefault("show_progress", True)
    if getattr(args, "quiet", False):
        overrides["show_progress"] = False
    return Settings.from_mapping({**values, **overrides})


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from qa.index import build_index

    if args.verify:
        from qa.index.store import verify_index

        report = verify_index(settings.index)
        for problem in report.problems:
            _fail(problem)
        if report.problems:
            return 2
        print(f"{settings.index}: {report.files} files ({report.bytes / 2**20:.1f} MiB) match their checksums, "
              f"every stored vector is a unit vector, and it loads ({report.seconds:.1f} s).")
        return 0
    if args.watch:
        from qa.index.watch import watch

        try:
            watch(settings, log=print)
        except KeyboardInterrupt:
            print("Stopped watching.")
        return 0
    build_index(settings=settings, rebuild=args.rebuild, log=print)
    return 0


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from qa.retrieval import retrieve

    _at_least_1("-k", args.k)
    passages = retrieve(args.query, k=args.k, index=settings.index, mode=args.mode,
                        settings=settings, **_where(args))
    if args.json:
        print(json_text([asdict(p) for p in passages]))
        return 0
    if not passages:
        from qa.filters import DocFilter

        where = DocFilter.make(args.docs, args.since, args.until)
        print("No passages match" + (f" in the documents chosen ({where.describe()})." if where else "."))
    for rank, p in enumerate(passages, 1):
        when = f", {p.date}" if p.date else ""
        page = f" p. {p.page}," if p.page is not None else ""
        ocr = " OCR," if p.ocr else ""
        print(f"{rank}. {p.title}{when}  [{p.doc_id}{page}{ocr} chars {p.start}-{p.end}, score {p.score:.3f}]")
        print(textwrap.indent(textwrap.fill(" ".join(p.text.split()), 96), "   "))
        print()
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.answers import answer, answer_to_json

    reply = answer(args.question, history=[], index=settings.index, settings=settings, **_where(args))
    if args.json:
        print(json_text(answer_to_json(reply)))
        return 0
    print(textwrap.fill(reply.text, 100, replace_whitespace=False) if "\n" not in reply.text else reply.text)
    if reply.citations:
        print("\nSources:")
        for c in reply.citations:
            page = f", p. {c.page}" if c.page is not None else ""
            # Text OCR read from a scan: the reader should check it against the page image.
            ocr = ", OCR: check against the page" if c.ocr else ""
            print(f"[{c.n}] {c.title} ({c.doc_id}{page}{ocr}, chars {c.start}-{c.end})")
            print(textwrap.indent(textwrap.fill(f"“{c.quote}”", 96), "    "))
            if c.answer_start is not None and c.answer_end is not None and c.start <= c.answer_start < c.answer_end:
                # The short answer the reader marked inside this quote (the chat shows it in bold).
                print(f"    answer: {c.quote[c.answer_start - c.start:c.answer_end - c.start]}")
    if reply.related:
        print("\nRelated reading (the closest passages; they do not answer the question):")
        for p in reply.related:
            print(f"- {p.title} ({p.doc_id}, chars {p.start}-{p.end})")
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.evaluation import comparison, load_qa_set, run_eval, summary, write_comparison, write_report

    sets = list(dict.fromkeys(args.sets or EVAL_SETS))
    for path in sets:
        load_qa_set(path)   # every set is checked before the first one runs for minutes
    if len(sets) == 1:
        result = run_eval(sets[0], settings, log=print)
        write_report(result, args.report)
        print(summary(result, args.report))
        return 0
    results, folders = [], []
    stems = [Path(p).stem for p in sets]
    for i, path in enumerate(sets):
        print(f"== {path}")
        result = run_eval(path, settings, log=print)
        # Each set's report in a folder named after it (numbered where two sets share a name).
        folder = args.report / (stems[i] if stems.count(stems[i]) == 1 else f"{stems[i]}-{i + 1}")
        write_report(result, folder)
        print(summary(result, folder))
        results.append(result)
        folders.append(folder)
    write_comparison(results, args.report, folders)
    print(f"\n{comparison(results)}\nreport    {args.report / 'report.md'}")
    return 0


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.sample is not None:
        _at_least_1("--sample", args.sample)

    if args.compare_reader is not None:
        if args.name != "squad":
            raise SettingsError("--compare-reader is for qa bench squad only.")
        from qa.reader.model import ReaderConfig

        ReaderConfig.read(args.compare_reader)   # a folder without a reader is one clear error, before any work
    run_bench(args.name, data=args.data, report_dir=args.report, sample=args.sample, settings=settings,
              full=args.full, sizes=_sizes(args.sizes), echo=print, compare_reader=args.compare_reader)
    return 0


def _at_least_1(option: str, value: int) -> None:
    """A count given on the command line must be 1 or more (argparse only checks it is a number)."""
    if value < 1:
        raise SettingsError(f"Invalid {option} value: {value}. It must be 1 or more.")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"Invalid --sizes value: {text!r}. Give chunk counts, e.g. 100000,1000000.") from None
    if not sizes or min(sizes) < 1000:
        raise SettingsError(f"Invalid --sizes value: {text!r}. Each size must be 1000 chunks or more.")
    return sizes


def _cmd_train_reader(args: argparse.Namespace, settings: Settings) -> int:
    from qa.encoder import resolve_device
    from qa.training.data import squad_folders
    from qa.training.recipe import QUANTIZATIONS, TrainConfig, init_file, missing_init

    _at_least_1("--batch", args.batch)
    if args.epochs < 0 or (args.epochs == 0 and not args.init):
        raise SettingsError(f"Invalid --epochs value: {args.epochs}. It must be 1 or more (0 only with --init: "
                            "re-export those weights in each int8 form without training).")
    if args.max_len < 96 or args.max_len > 512:
        raise SettingsError(f"Invalid --max-len value: {args.max_len}. It must lie in 96..512 (the model reads 512).")
    if not 0 < args.lr < 1:
        raise SettingsError(f"Invalid --lr value: {args.lr}. It must lie in (0, 1).")
    if args.limit < 0:
        raise SettingsError(f"Invalid --limit value: {args.limit}. It must be 0 (all) or more.")
    for name in ("swap_prob", "other_paragraph_prob", "paraphrase_prob"):
        if not 0 <= getattr(args, name) <= 1:
            raise SettingsError(f"Invalid --{name.replace('_', '-')} value: {getattr(args, name)}. "
                                "It must lie in 0..1.")
    if args.quantization != "auto" and args.quantization not in QUANTIZATIONS:
        raise SettingsError(f"Invalid --quantization value: {args.quantization}. It must be auto or one of "
                            f"{', '.join(QUANTIZATIONS)}.")
    if args.own_words_repeat < 1:
        raise SettingsError(f"Invalid --own-words-repeat value: {args.own_words_repeat}. It must be 1 or more.")
    named = [("--own-words-train", path) for path in args.own_words_train or ()]
    named.append(("--own-words-dev", args.own_words_dev))
    for flag, path in named:
        if path is not None and not path.is_file():
            raise SettingsError(f"{flag} {path}: no such file. Give a JSON-lines file of questions "
                                "(training-data/squad_own_words_train.jsonl, eval/squad_own_words_dev.jsonl).")
    if args.patience < 0:
        raise SettingsError(f"Invalid --patience value: {args.patience}. It must be 0 (never stop early) or more.")
    if args.finish and not args.resume:
        raise SettingsError("--finish exports a checkpointed run: give --resume (and the run's settings) with it.")
    if args.init and not init_file(args.init).is_file():
        raise SettingsError(missing_init(init_file(args.init)))
    try:
        device = resolve_device(args.device)
    except SettingsError:
        raise SettingsError("--device cuda was asked for, but no CUDA GPU is visible to torch. Use --device cpu "
                            "(or auto, the default, which trains on a GPU only when there is one).") from None
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch=args.batch, max_len=args.max_len, seed=args.seed,
                         swap_prob=args.swap_prob, other_paragraph_prob=args.other_paragraph_prob,
                         paraphrase_prob=args.paraphrase_prob, patience=args.patience, resume=args.resume,
                         finish=args.finish, threads=settings.threads, device=device, limit=args.limit,
                         init=str(args.init) if args.init else "",
                         own_words_train=tuple(str(path) for path in args.own_words_train or ()),
                         own_words_repeat=args.own_words_repeat,
                         own_words_dev=str(args.own_words_dev or ""),
                         quantization="" if args.quantization == "auto" else args.quantization)
    squad_folders(args.data)   # missing data: one clear error before torch loads
    # torch and the training modules load only once the settings and the data are known to be good.
    from qa.training.train import train_reader

    report = train_reader(args.data, args.out, config, log=print, progress=not args.quiet)
    print(f"wrote {args.out}/reader.onnx, reader.json and MODEL_CARD.md in {report.seconds / 60:.1f} min; "
          f"use it with reader_model = \"{args.out}\" in qa.toml")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qa.web import serve

    serve(settings, update=args.update, log_line=print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
