"""The README runs as written: every code block it marks for it runs against a sandbox.

A block is marked by an HTML comment on the line before its fence (invisible on GitHub):

* ``<!-- readme: run -->``: run it; it must exit 0 (``<!-- readme: run, exits 1 -->``: 1).
  A ``bash`` block runs in a scratch copy of the repository, with the environment's
  ``ingest`` first on ``PATH``; a ``python`` block runs there as a program. Blocks run in
  the README's order, and what a ``bash`` block exports reaches the blocks after it, as
  in a user's terminal.
* ``<!-- readme: sandbox -->``: the command that starts the sandbox the other blocks use.
  It runs in the background for the whole README, on a free port instead of the
  README's 18080: its address replaces ``127.0.0.1:18080`` in every block.
* ``<!-- readme: spark -->``: a ``run`` block that needs Java; skipped, saying so, only
  where Java is missing.
* ``<!-- readme: not run: WHY -->``: a block that cannot run here (a real Clarifai app,
  an installation), with the reason.

Every ``bash`` and ``python`` block carries one of them, so none escapes unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Where the README's sandbox listens; the test's own sandbox's address replaces it.
ADDRESS = "127.0.0.1:18080"

#: Seconds a block may take (the Spark block starts a JVM).
BLOCK_TIMEOUT = {"spark": 240.0}
DEFAULT_TIMEOUT = 120.0

MARK = re.compile(
    r"^<!-- readme: (?:(?P<kind>run|sandbox|spark)(?:, exits (?P<exit>\d+))?"
    r"|not run: (?P<why>.+?)) -->$"
)
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
RUNNABLE_LANGUAGES = ("bash", "python")


@dataclass(frozen=True)
class Block:
    """A fenced block of the README and what its marker says to do with it."""

    line: int
    lang: str
    code: str
    kind: str
    """``run``, ``sandbox``, ``spark``, ``not run`` or ``""`` (no marker)."""
    exit: int = 0
    why: str = ""

    @property
    def name(self) -> str:
        return f"README.md:{self.line}-{self.lang}-{self.kind.replace(' ', '-') or 'unmarked'}"


def extract(text: str) -> list[Block]:
    """Every fenced block of ``text`` with its marker (the line just before the fence)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = MARK.match(lines[i - 1]) if i else None
        kind = ""
        if mark:
            kind = mark["kind"] or "not run"
        blocks.append(
            Block(
                line=i + 1,
                lang=fence["lang"],
                code="\n".join(lines[i + 1 : end]) + "\n",
                kind=kind,
                exit=int(mark["exit"]) if mark and mark["exit"] else 0,
                why=mark["why"] if mark and mark["why"] else "",
            )
        )
        i = end + 1
    return blocks


BLOCKS = extract(README.read_text(encoding="utf-8"))
RUN = [b for b in BLOCKS if b.kind in ("run", "spark")]


def scratch_copy(into: Path) -> Path:
    """The repository's files (tracked, or new and not ignored) copied into ``into``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            source = ROOT / name
            if source.is_file():
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into / name)
    else:  # not a git checkout: everything but what a run or a tool leaves
        shutil.copytree(
            ROOT,
            into,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "*cache*", "*.ingest-state*", "*.failures.csv", "results*"
            ),
        )
    return into


class Session:
    """A user's terminal: the scratch repository, the environment the blocks build up,
    and the sandbox the README starts."""

    def __init__(self, folder: Path) -> None:
        self.root = scratch_copy(folder / "repo")
        self.env_file = folder / "env.sh"
        self.env_file.write_text("")
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLARIFAI_", "GRPC_DEFAULT", "INGEST_", "PYSPARK_"))
            and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        tmp = folder / "tmp"  # what a block leaves in the temp folder goes with the test's
        tmp.mkdir()
        self.env.update(
            PATH=os.pathsep.join([bin_dir, self.env.get("PATH", "")]),
            COLUMNS="120",
            TMPDIR=str(tmp),
        )
        self.address = ADDRESS
        self.sandbox: subprocess.Popen[str] | None = None
        self.count = 0
        self.ran: set[int] = set()
        """The lines of the blocks run so far."""

    def start_sandbox(self, block: Block) -> None:
        command = block.code.replace("--port 18080", "--port 0")
        assert "--port 0" in command, "the README's sandbox command names --port 18080"
        self.sandbox = subprocess.Popen(
            ["bash", "-c", f"exec {command.strip()}"],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.sandbox.stdout is not None
        line = self.sandbox.stdout.readline()  # the first line says where it listens
        found = re.search(r"listening on http://(127\.0\.0\.1:\d+)", line)
        assert found, f"the sandbox said {line!r}"
        self.address = found.group(1)

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.send_signal(signal.SIGINT)
            try:
                self.sandbox.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()
                self.sandbox.communicate()

    def run_after_the_ones_before(self, block: Block) -> subprocess.CompletedProcess[str]:
        """Run ``block`` once the runnable blocks before it have run (a user follows the
        README in order; a test selected alone does too)."""
        for earlier in RUN:
            if earlier.line >= block.line:
                break
            if earlier.line not in self.ran and earlier.kind == "run":
                self.run(earlier)
        return self.run(block)

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        """Run ``block`` as a user would, in the scratch repository."""
        self.ran.add(block.line)
        code = block.code.replace(ADDRESS, self.address)
        self.count += 1
        env_file = self.env_file
        if block.lang == "python":
            program = self.root.parent / f"block{self.count}.py"
            program.write_text(code, encoding="utf-8")
            script = f". {env_file}\nexec python {program}\n"
        else:
            # what the block exports carries over to the next ones, whatever its exit
            script = f". {env_file}\ntrap 'export -p > {env_file}' EXIT\nset -e -o pipefail\n{code}"
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT.get(block.kind, DEFAULT_TIMEOUT),
        )


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    user = Session(tmp_path_factory.mktemp("readme"))
    [sandbox] = [b for b in BLOCKS if b.kind == "sandbox"]
    try:
        user.start_sandbox(sandbox)
        yield user
    finally:
        user.stop()


def check(block: Block, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == block.exit, (
        f"{block.name} exited {done.returncode}, not {block.exit}:\n{block.code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    assert not _ours(done.stderr), done.stderr[-3000:]


#: A frame of this project's code or of a README program in a traceback. pyspark's worker
#: daemon prints tracebacks of its own at exit (it leaves the files of the sockets it forks
#: over to the garbage collector, and Spark's workers get this suite's warning rules), and
#: several workers print theirs interleaved: what counts is whether a traceback passes
#: through ingest or the block, whatever else stderr holds.
_OUR_FRAME = re.compile(r'^\s*File "[^"\n]*(?:/ingest/[^"\n]*|/block\d+\.py)", line \d+', re.M)


def _ours(stderr: str) -> list[str]:
    """The frames of ingest's code or of a README program in what a block printed."""
    return _OUR_FRAME.findall(stderr)


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_readme_block_runs_as_written(session: Session, block: Block) -> None:
    if block.kind == "spark" and shutil.which("java") is None:
        pytest.skip("Java is missing: the README's Spark block needs Java 17")
    done = session.run_after_the_ones_before(block)
    check(block, done)
    if block.code.startswith("ingest upload examples/boxes.csv "):
        says_what_happened(session)


def says_what_happened(session: Session) -> None:
    """What the README says of the quick start's upload (18 of 616 rows failed, in the
    failures file; the journal beside the data) is what happened."""
    assert "18 of its 616 rows failed" in " ".join(README.read_text(encoding="utf-8").split())
    failures = session.root / "examples" / "boxes.failures.csv"
    assert len(failures.read_text(encoding="utf-8").splitlines()) == 1 + 18
    assert (session.root / "examples" / "boxes.csv.ingest-state").is_file()


def test_every_block_is_marked_and_few_are_not_run() -> None:
    runnable = [b for b in BLOCKS if b.lang in RUNNABLE_LANGUAGES]
    unmarked = [b.name for b in runnable if not b.kind]
    assert not unmarked, f"blocks without a readme marker: {unmarked}"
    assert [b.kind for b in BLOCKS if b.kind == "sandbox"] == ["sandbox"]
    skipped = [b for b in runnable if b.kind == "not run"]
    assert all(b.why for b in skipped)
    assert len(skipped) <= len(runnable) // 2, [b.name for b in skipped]
    assert {b.lang for b in RUN} == {"bash", "python"}
    assert any(b.kind == "spark" for b in RUN)


def test_a_renamed_option_fails_the_readme(session: Session) -> None:
    """The README drifting from the command (here ``--base`` renamed in the README)
    fails the block that uses it."""
    renamed = README.read_text(encoding="utf-8").replace("--base ", "--base-url ")
    [block] = [
        b
        for b in extract(renamed)
        if b.kind == "run" and b.lang == "bash" and "--base-url" in b.code and "coco" in b.code
    ]
    done = session.run(block)
    assert done.returncode == 2 and "unrecognized arguments: --base-url" in done.stderr
    with pytest.raises(AssertionError, match="exited 2, not 0"):
        check(block, done)
