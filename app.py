"""Start the web chat: `python app.py [--config FILE] [--host H] [--port N] [--index DIR] [--corpus DIR] [--update]
[--collection NAME=CORPUS:INDEX ...] [--collections DIR]`.

A thin shell, the same as `qa serve`: process set-up, settings, then `qa.web.serve`, which builds
the index first when it is missing (or, with --update, brings it up to date with the corpus, in
the same process, so the model loads once) and serves on 127.0.0.1:7860 unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.cli import collection_arguments  # light: no torch, no gradio
from qa.config import Settings
from qa.errors import QAError
from qa.runtime import configure_process
from qa.terminal import install, visible


def main(argv: list[str] | None = None) -> int:
    """Parse the options, then serve until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(description="Start the qa web chat (same as: qa serve).")
    parser.add_argument("--config", type=Path, help="a TOML file of settings (see qa/config.py)")
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: 7860)")
    parser.add_argument("--index", type=Path, help="index folder (default: index)")
    parser.add_argument("--corpus", type=Path, help="corpus to index when the index is missing")
    parser.add_argument("--update", action="store_true",
                        help="first bring the index up to date with the corpus (incremental)")
    collection_arguments(parser)
    args = parser.parse_args(argv)
    install()   # what the server prints (file names, log records) is shown inert (qa/terminal.py)
    overrides = {k: v for k, v in vars(args).items() if k not in ("config", "update") and v is not None}

    try:
        values = Settings.read_file(args.config) if args.config else {}
        settings = Settings.from_mapping({"show_progress": True, **values, **overrides})
        configure_process(settings.threads)  # before torch loads: offline, threads that do not spin
        from qa.web import serve

        serve(settings, update=args.update, log_line=print)
    except QAError as exc:
        print(f"qa: error: {visible(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(visible(f"qa: error: {exc.strerror or exc}{where}. Check the path and its permissions."),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
