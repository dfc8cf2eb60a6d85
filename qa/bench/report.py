"""The benchmark report: every table is shown as it is made (through `echo`, which the CLI sets
to `print`) and kept for report.md and results.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.runtime import thread_report


class Report:
    """Tables and lines shown as they are made, and saved as report.md + results.json."""

    def __init__(self, title: str, folder: Path, echo: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.echo = echo or (lambda _line: None)
        self.lines: list[str] = [f"# {title}", ""]
        self.data: dict[str, Any] = {"benchmark": title}
        self.echo(f"== {title}")

    def text(self, line: str = "") -> None:
        self.echo(line)
        self.lines.append(line)

    def section(self, heading: str) -> None:
        self.echo(f"\n-- {heading}")
        self.lines += ["", f"## {heading}", ""]

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
        self.echo("\n".join(lines))
        self.lines += [*lines, ""]

    def threads(self) -> dict[str, str]:
        """Print the thread settings that shape the timings above them."""
        threads = thread_report()
        self.text("Threads: " + ", ".join(f"{k}={v}" for k, v in threads.items()))
        return threads

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "report.md").write_text("\n".join(self.lines).rstrip() + "\n", encoding="utf-8")
        (self.folder / "results.json").write_text(
            json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"
    return "" if value is None else str(value)
