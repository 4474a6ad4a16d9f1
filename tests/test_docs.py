"""Every command and snippet the README and docs show, run as written (issue #35: documented outputs that cannot go
stale).

- ``console`` blocks: each ``$ mtdetect ...`` line runs in a sandbox holding the files it names (``examples/``, a
  small ``data/`` of shards, two articles); when the block shows output after the command, the output must be
  exactly that. Commands that need a Ray cluster (``--address``) or install packages are parsed, not run: the
  parser accepts them.
- ``python`` blocks of docs/scale.md run as scripts in the sandbox; the README's API block runs with ``text`` and
  ``texts`` defined and a ``book.txt``.
- ``mtdetect serve`` starts, answers ``/health`` and is stopped.
- ``python -m MODULE`` commands (training steps, benchmarks: hours of CPU, never run in tests) name a module of the
  repository whose ``--help`` works; a fuzzing script named in a ``bash`` block exists.

``python tests/test_docs.py --write`` rewrites the outputs shown in the README from the program as it is now (run
it after changing the model, then read the diff).
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: where training and benchmark commands are shown (their modules must exist and parse --help)
GUIDES = [*DOCS, ROOT / "training" / "README.md"]
BIN = Path(sys.executable).parent


@dataclass
class Command:
    doc: Path
    line: str  # as written, without "$ " and the trailing comment
    output: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.doc.name}: {self.line[:70]}"


def _strip_comment(line: str) -> str:
    """The command without a trailing "# comment" (outside quotes)."""
    out, quote = [], ""
    for i, c in enumerate(line):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] == " "):
            break
        out.append(c)
    return "".join(out).rstrip()


def blocks(doc: Path, kind: str) -> list[list[str]]:
    """The lines of every fenced block of ``kind`` (console, bash, python) in ``doc``."""
    out: list[list[str]] = []
    current: list[str] | None = None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if current is None and line.startswith(f"```{kind}"):
            current = []
        elif current is not None and line.startswith("```"):
            out.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return out


def commands() -> list[Command]:
    """Every mtdetect command of the docs' console and bash blocks, with the output a console block shows."""
    found: list[Command] = []
    for doc in DOCS:
        for block in blocks(doc, "console"):
            for line in block:
                if line.startswith("$ "):
                    found.append(Command(doc, _strip_comment(line[2:])))
                elif found and found[-1].doc == doc and line.strip():
                    found[-1].output.append(line)
        for block in blocks(doc, "bash"):
            for line in block:
                cmd = _strip_comment(line.strip())
                if cmd.startswith("mtdetect "):
                    found.append(Command(doc, cmd))
    return found


def sandbox(root: Path) -> Path:
    """A folder with what the documented commands read: examples/, data/ (JSONL.gz shards), article.txt, other.txt,
    book.txt."""
    box = root / "box"
    shutil.copytree(ROOT / "examples", box / "examples")
    (box / "data").mkdir()
    texts = [json.loads(x)["text"] for x in (ROOT / "examples" / "garbled.jsonl").read_text().splitlines()]
    for k in range(2):
        with gzip.open(box / "data" / f"part-{k}.jsonl.gz", "wt", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"{k}-{i}", "text": t}) + "\n")
    (box / "article.txt").write_text((ROOT / "examples" / "garbled.txt").read_text(encoding="utf-8"))
    (box / "other.txt").write_text("The council met on Tuesday. It approved the budget for next year.\n")
    (box / "book.txt").write_text("A long book. " * 2000)
    return box


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1",
            "COLUMNS": "200"}


def run(cmd: Command, box: Path) -> tuple[int, list[str]]:
    r = subprocess.run(cmd.line, shell=True, cwd=box, env=_env(), capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout.splitlines()


NOT_RUN = ("pip install",)  # installs packages: the rest of such a line runs on its own (serve: below)


def _needs_cluster(cmd: Command) -> bool:
    return "--address" in cmd.line or "--workers 64" in cmd.line


CMDS = commands()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sandbox(tmp_path_factory.mktemp("docs"))


def test_the_docs_show_commands() -> None:
    assert len([c for c in CMDS if c.output]) >= 2 and any("score-corpus" in c.line for c in CMDS)


@pytest.mark.slow
@pytest.mark.parametrize("cmd", CMDS, ids=[c.id for c in CMDS])
def test_documented_command_runs_as_written(cmd: Command, box: Path) -> None:
    line = cmd.line
    if any(x in line for x in NOT_RUN):
        line = line.split("&&")[-1].strip()
    if line.startswith("mtdetect serve"):
        _serve(box)
        return
    if _needs_cluster(cmd) or ("--engine ray" in line and "--workers 8" in line):
        from detector.cli import _parser  # a Ray cluster (or 8 actors on 2 cores) is out of a test's reach

        args = shlex.split(line)
        assert args[0] == "mtdetect" and _parser().parse_args(args[1:]).command == "score-corpus"
        return
    code, out = run(Command(cmd.doc, line), box)
    assert code in (0, 1), (line, code)
    if cmd.output:
        assert out == cmd.output, f"{cmd.doc.name}: the output of `{cmd.line}` changed; python tests/test_docs.py --write"


def _serve(box: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["mtdetect", "serve", "--port", str(port)], cwd=box, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    return
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve exited") from None
                time.sleep(0.5)
        raise AssertionError("mtdetect serve did not answer /health in 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


PYTHON = [(doc, i, "\n".join(b)) for doc in DOCS for i, b in enumerate(blocks(doc, "python"))]


@pytest.mark.slow
@pytest.mark.parametrize(("doc", "i", "code"), PYTHON, ids=[f"{d.name}-python-{i}" for d, i, _ in PYTHON])
def test_documented_python_runs_as_written(doc: Path, i: int, code: str, box: Path) -> None:
    if "datatrove" in code:
        pytest.importorskip("datatrove")
    prelude = ""
    if "detect(text)" in code:  # the API tour uses a text and a list of texts
        prelude = ("text = 'Putin had received an invitation from Chinese President Xi Jinping. accepted.'\n"
                   "texts = [text, 'The committee will publish its report next week.']\n")
    script = box / f"snippet_{doc.stem}_{i}.py"
    script.write_text(prelude + code + "\n", encoding="utf-8")
    r = subprocess.run([sys.executable, script.name], cwd=box, env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def module_commands() -> dict[str, list[str]]:
    """``python -m MODULE`` named in the guides' code (blocks and inline), MODULE -> the documents naming it."""
    import re

    found: dict[str, list[str]] = {}
    for doc in GUIDES:
        for m in re.finditer(r"python -m ([A-Za-z_][\w.]*)", doc.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), [])
            if doc.name not in found[m.group(1)]:
                found[m.group(1)].append(doc.name)
    return found


MODULES = module_commands()


def test_documented_modules_exist_and_parse_help() -> None:
    """Every ``python -m`` module the guides name is in the repository (or is pytest) and answers ``--help`` (one
    process: runpy, each main's parser exits 0)."""
    ours = sorted(m for m in MODULES if m.split(".")[0] in ("corpus", "training", "benchmarks"))
    assert set(MODULES) - set(ours) <= {"pytest"}, set(MODULES) - set(ours)
    missing = [f"{m} ({', '.join(MODULES[m])})" for m in ours if not (ROOT / (m.replace(".", "/") + ".py")).is_file()]
    assert not missing, f"the docs name modules that do not exist: {missing}"
    code = ("import runpy, sys\n"
            "bad = []\n"
            f"for m in {ours!r}:\n"
            "    sys.argv = [m, '--help']\n"
            "    try:\n"
            "        runpy.run_module(m, run_name='__main__')\n"
            "        bad.append(m + ': no SystemExit')\n"
            "    except SystemExit as e:\n"
            "        if e.code not in (0, None):\n"
            "            bad.append(f'{m}: exit {e.code}')\n"
            "print('BAD', bad, file=sys.stderr)\n"
            "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_documented_fuzz_scripts_exist() -> None:
    import re

    named = {m.group(1) for doc in DOCS for b in blocks(doc, "bash") for line in b
             for m in re.finditer(r"(tests/fuzz/\w+\.py)", line)}
    assert named and all((ROOT / n).is_file() for n in named), named


# ------------------------------------------------------------------ python tests/test_docs.py --write


def write(doc: Path = ROOT / "README.md") -> None:
    """Rewrite the outputs shown after each ``$ mtdetect`` line of ``doc``'s console blocks."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        box = sandbox(Path(tmp))
        lines = doc.read_text(encoding="utf-8").splitlines()
        out: list[str] = []
        in_console = False
        skipping = False
        for line in lines:
            if line.startswith("```console"):
                in_console = True
            elif in_console and line.startswith("```"):
                in_console = skipping = False
            elif in_console and line.startswith("$ "):
                skipping = False
                cmd = Command(doc, _strip_comment(line[2:]))
                out.append(line)
                if any(x in cmd.line for x in (" > ", "score-corpus", "serve", "pip install")):
                    continue  # writes files, or shows no output
                _, produced = run(cmd, box)
                out += produced
                skipping = True
                continue
            elif skipping:
                continue  # the old output
            out.append(line)
        doc.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        raise SystemExit("usage: python tests/test_docs.py --write")
