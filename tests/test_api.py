"""The public API, as the README uses it: `import qa`, then its functions, any number of times,
in any order, in a fresh interpreter. `qa.__all__` is pinned so the API cannot change silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import qa

from .conftest import ROOT, SEEDS

PUBLIC = [
    "Answer", "AnswerStatus", "Chunk", "Citation", "CorpusError", "Document", "Index", "IndexCorruptError",
    "IndexMissingError", "IndexPathError", "IndexReport", "ModelMissingError", "Passage", "QAError", "QueryError",
    "Settings", "SettingsError", "answer", "build_index", "load_index", "retrieve", "source_text", "DocFilter",
]


def test_exported_names_are_pinned() -> None:
    assert sorted(qa.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(qa, name) is not None, name
    assert set(PUBLIC) <= set(dir(qa))


def test_functions_stay_functions_in_any_order(tmp_path: Path, embedder) -> None:
    # `embedder`: the encoder's ONNX export exists before the fresh interpreter starts, so that its
    # one-time "Exporting the encoder" line (a fresh clone's first use) is not taken for a log line.
    # A fresh interpreter, as a user has: nothing imported before `import qa`.
    script = f"""
import importlib, json, sys
import qa
assert "torch" not in sys.modules and "faiss" not in sys.modules, "import qa did work"
index = {str(tmp_path / "index")!r}
calls = []
report = qa.build_index(corpus={str(SEEDS)!r}, index=index)
for _ in range(3):
    hits = qa.retrieve("Where is TikTok's US user data stored?", k=5, index=index)
    reply = qa.answer("Where is TikTok's US user data stored?", history=[], index=index)
    import qa.retrieval, qa.answers, qa.index  # importing the modules never replaces the functions
    importlib.reload(qa.retrieval)
    again = qa.build_index(corpus={str(SEEDS)!r}, index=index)
    loaded = qa.load_index(index)
    calls.append([type(qa.retrieve).__name__, type(qa.answer).__name__, type(qa.build_index).__name__,
                  len(hits), reply.status, again.chunks_embedded, len(loaded.documents)])
follow = qa.answer("And where is the backup kept?", index=index,
                   history=[{{"role": "user", "content": "Where is TikTok's US user data stored?"}},
                            {{"role": "assistant", "content": reply.text}}])
print(json.dumps({{"calls": calls, "follow": follow.text, "first": report.chunks}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""   # library calls print no progress bars and no log lines
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["calls"] == [["function", "function", "function", 5, out["calls"][0][4], 0, 5]] * 3
    assert out["calls"][0][4] in ("answered", "tentative")
    assert "Singapore" in out["follow"] and out["first"] > 0


def test_no_module_imports_another_modules_private_names() -> None:
    import re

    private = re.compile(r"from qa[\w.]* import \(?([^)]*)\)?", re.S)
    offenders = []
    for path in (ROOT / "qa").rglob("*.py"):
        for names in private.findall(path.read_text(encoding="utf-8")):
            offenders += [f"{path.relative_to(ROOT)}: {n.strip()}" for n in names.split(",")
                          if n.strip().startswith("_") and n.strip() != "__future__"]
    assert offenders == []


def test_no_import_cycles() -> None:
    import ast

    graph: dict[str, set[str]] = {}
    for path in (ROOT / "qa").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("qa"))
    # Package __init__ files re-export their own modules: a package and its own submodules
    # importing each other is not a cycle of the pipeline (`load_cycles` leaves those out).
    assert load_cycles(graph) == []


RESEARCH = ("qa.training", "qa.fitting", "qa.evaluation", "qa.bench")


def test_runtime_never_imports_research_code() -> None:
    """Training, fitting, evaluation and benchmarks live in their own subpackages; no runtime
    module imports them, at its top or inside a function. The `qa` command is the one edge that
    dispatches to them (`qa eval`, `qa bench`, `qa train-reader`)."""
    import ast

    offenders = []
    for path in (ROOT / "qa").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module.startswith(RESEARCH) or module == "qa.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{module} imports {n}" for n in names if n.startswith(RESEARCH)]
    assert offenders == []
    # The check itself sees research imports: the command line does import them.
    cli = (ROOT / "qa" / "cli.py").read_text(encoding="utf-8")
    assert "from qa.training.train import" in cli and "from qa.evaluation import" in cli


def module_level_imports(root: Path) -> dict[str, set[str]]:
    """Each qa module's imports at load time (module level, not inside functions), with the
    packages Python loads first: importing `qa.web.html` runs `qa/web/__init__.py` too, unless
    the importer is itself inside `qa.web`."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in (root / "qa").rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        deps = graph.setdefault(module, set())
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in (n for n in names if n.startswith("qa.")):
                parts = name.split(".")
                for k in range(2, len(parts) + 1):
                    target = ".".join(parts[:k])
                    if k == len(parts) or not (module == target or module.startswith(target + ".")):
                        deps.add(target)
    return graph


def load_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Groups of modules whose module-level imports form a cycle (strongly connected components,
    Tarjan): one of them breaks whichever of its modules is imported first. A package's
    `__init__` and its own submodules importing each other is how packages re-export, not a cycle."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in graph:
                continue
            if dep not in order:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], order[dep])
        if low[node] == order[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            connect(module)
    return [" <-> ".join(g) for g in groups
            if not any(all(m == p or m.startswith(p + ".") for m in g) for p in g)]


def test_every_module_can_be_imported_first() -> None:
    """No module-level import cycle across packages: each module imports first, on its own
    (`qa.live` once needed `qa.web` half-loaded, through `qa.web.html`)."""
    assert load_cycles(module_level_imports(ROOT)) == []
    # The check sees such a cycle: the one that was here.
    graph = module_level_imports(ROOT)
    graph["qa.live"].add("qa.web")
    assert any("qa.live" in c and "qa.web" in c for c in load_cycles(graph))
