"""Every command in README.md and docs/*.md runs as written, or is checked against what it names.

The fenced blocks of the docs are read as a shell would read them (quotes, comments,
``\\`` continuations, ``|``/``&&``/``;``/``&``, redirections, ``VAR=value`` prefixes, a ``$ ``
prompt). Each simple command is then checked by its program:

* ``registry-scrub …`` (or ``.venv/bin/registry-scrub``): parsed by jobs/cli.py's own parser,
  Beam's options included, without running; a scan's flags and ``--config`` file then go
  through the config loader. A ``--config`` must be a file of the repository, or a YAML block
  of the same doc whose first line is ``# NAME`` (that block is validated instead). A Dataflow
  dry run (``--dry_run=True``) is offline, so it is run for real and must exit 0.
* ``make TARGET``: the Makefile has the target.
* a script of the repository (``.venv/bin/python tests/bench/x.py``, ``bash tests/x.sh``,
  ``jobs/deploy/deploy.sh``): the file exists and its source names every ``--flag`` given;
  ``python -m MODULE``: the module is importable here.
* ``.venv/bin/TOOL``: a program the project installs next to this Python.
* a program of the outside world in ``EXTERNAL`` (gcloud, jq, skopeo, …): not run, but any
  path of this repository it is given must exist.

In a ``sh``/``bash``/``shell`` block every command must be one of these, so a new kind of
command fails here until it is checked or named in ``EXTERNAL``. In an unlabelled block only
lines that start with one of our programs are commands; the rest is output.

A block that shows a refusal (``<!-- docs-commands: refused -->`` on the line before its fence)
is run as written, offline: each of its ``registry-scrub`` commands must exit 2, as the docs
promise for unusable input.

A block that only illustrates (a transcript of a refused command, a synopsis, output that
happens to start with a command) opts out, sparingly: fence it as ``console`` or ``text``, or
put ``<!-- docs-commands: illustrative -->`` on the line before its fence.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from jobs import cli
from pipeline.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SHELL_LANGS = {"sh", "bash", "shell"}
SKIPPED_LANGS = {"console", "text"}
OPT_OUT = "<!-- docs-commands: illustrative -->"
REFUSED = "<!-- docs-commands: refused -->"
# Programs of the outside world: documented, never run here (they need a cloud account, or are the shell's own).
EXTERNAL = {
    "gcloud", "gsutil", "bq", "jq", "skopeo", "crane", "docker", "git", "curl", "mvn", "uv", "pip", "tar",
    "cat", "cp", "cd", "mkdir", "rm", "ls", "sleep", "kill", "wait", "echo", "printf", "set", ".", "source",
    "export", "docker-registry", "grep", "cut",
}  # fmt: skip
CONTROL = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECT = re.compile(r"^\d*(<|>|>>|<<|<<<|>&|&>)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
REPO_PATH = re.compile(r"^(?:\./)?(?:config|docs|jobs|pipeline|tests)/[\w./-]*\w$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    text: str
    opted_out: bool
    refused: bool = False  # its commands show unusable input: each must exit 2

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not opening:
            i += 1
            continue
        fence, start, body = opening.group(1), i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        before = lines[start - 1].strip() if start > 0 else ""
        text = "\n".join(body) + "\n"
        blocks.append(Block(doc, start + 1, opening.group(2).lower(), text, before == OPT_OUT, before == REFUSED))
        i += 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """The shell's lines of ``text``: comments dropped, ``\\``-newline joined, quotes kept whole."""
    lines, current, quote, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "\\" and text[i + 1 : i + 2] == "\n":
            current.append(" ")
            i += 1
        elif ch == "#" and (not current or current[-1] in " \t\n;|&("):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == "\n":
            lines.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    lines.append("".join(current).strip())
    return [line for line in lines if line]


def simple_commands(line: str) -> list[list[str]]:
    """The words of each simple command of one line, without assignments, redirections or a prompt."""
    line = re.sub(r"\$\([^()]*\)", "SUBSTITUTED", line)  # $(…): its value is not known here
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands, words, redirect = [], [], False
    for token in lexer:
        if token in CONTROL:
            commands.append(words)
            words = []
        elif redirect:
            redirect = False
        elif REDIRECT.match(token):
            redirect = True
        elif not words and (ASSIGNMENT.match(token) or (token == "$" and not commands)):
            continue
        else:
            words.append(token)
    commands.append(words)
    return [words for words in commands if words]


def ours(program: str) -> bool:
    """A program this repository provides or runs: checked, never taken for output."""
    return (
        program in ("registry-scrub", "make", "bash", "sh", "python", "python3")
        or program.startswith(".venv/bin/")
        or REPO_PATH.match(program) is not None
    )


def commands_of(block: Block) -> list[tuple[str, list[str]]]:
    """``(the line, its words)`` of every command the block holds (see the module docstring)."""
    if block.opted_out or block.lang in SKIPPED_LANGS:
        return []
    if block.lang in SHELL_LANGS:
        lines = logical_lines(block.text)
    elif block.lang == "":
        # Output mixed with commands: a line is a command only when it starts with one of ours.
        physical, lines, i = block.text.splitlines(), [], 0
        while i < len(physical):
            first = physical[i].removeprefix("$ ").split(" ", 1)[0]
            if ours(first):
                snippet = physical[i]
                while snippet.rstrip().endswith("\\") and i + 1 < len(physical):
                    i += 1
                    snippet += "\n" + physical[i]
                lines.extend(logical_lines(snippet))
            i += 1
    else:
        return []  # yaml, json, sql …: data, not commands
    return [(line, words) for line in lines for words in simple_commands(line)]


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE))


def written_by(block: Block) -> set[str]:
    """Files the block's own commands write (``> F``, ``>> F``, ``cp SRC F``): they exist when it runs."""
    return set(re.findall(r"(?:>>?|\bcp \S+)\s+([\w./-]+)", block.text))


def shown_config(block: Block, name: str) -> str | None:
    """A YAML block of the same doc that shows the config file ``name`` (first line ``# NAME``)."""
    for other in fenced_blocks(block.doc):
        if other.lang in ("yaml", "yml") and other.text.lstrip().startswith(f"# {name}\n"):
            return other.text
    return None


def check_script(path: str, args: list[str]) -> list[str]:
    script = REPO / path
    if not script.is_file():
        return [f"{path}: no such file in the repository"]
    source = script.read_text(encoding="utf-8", errors="replace")
    return [
        f"{path} does not take {flag}"
        for flag in (arg.split("=", 1)[0] for arg in args if arg.startswith("--"))
        if flag not in source
    ]


def check_registry_scrub(block: Block, args: list[str], tmp_path: Path) -> list[str]:
    try:
        parsed, beam_args = cli.parse_arguments(args)
    except cli.UsageError as err:
        return [f"refused by the CLI's parser: {err}"]
    except SystemExit as stop:  # --help, --version
        return [] if stop.code in (0, None) else [f"--help/--version exited {stop.code}"]
    problems = []
    config = getattr(parsed, "config", None)
    if config in written_by(block):
        config = None  # built by the commands before it: its keys are not known here
        if parsed.command == "scan":
            return []
    if config and not config.startswith("gs://"):
        if not (REPO / config).is_file():
            shown = shown_config(block, config)
            if shown is None:
                return [f"--config {config}: not in the repository, and no yaml block of the doc shows it"]
            config = tmp_path / Path(config).name
            config.write_text(shown)
    if parsed.command == "scan":
        try:
            load_config(REPO / config if isinstance(config, str) else config, cli.overrides_from(parsed))
        except ConfigError as err:
            problems.append(f"refused by the config loader: {err}")
    if any(arg.replace(" ", "") == "--dry_run=True" for arg in beam_args) and not problems:
        # Offline by design (docs/cli.md, "A Dataflow dry run"): run it as written.
        run = run_offline(args, tmp_path)
        if run.returncode != 0:
            problems.append(f"the dry run exited {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
    return problems


def run_offline(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``registry-scrub ARGS`` as a user runs it, with no emulator and no metadata server to find."""
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST",)}
    return subprocess.run(
        [str(BIN / "registry-scrub"), *args],
        cwd=tmp_path,
        env={**env, "NO_GCE_CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_refused(args: list[str], tmp_path: Path) -> list[str]:
    """A command the docs show being refused: run as written (offline), it must exit 2 with one line."""
    run = run_offline(args, tmp_path)
    said = [line for line in run.stderr.splitlines() if line.startswith("registry-scrub")]
    if run.returncode != 2 or len(said) != 1:
        return [f"shown as refused, but it exited {run.returncode} saying {run.stderr.strip().splitlines()[-3:]}"]
    return []


def check_command(block: Block, words: list[str], tmp_path: Path) -> list[str]:
    program, args = words[0], words[1:]
    if block.refused and program in ("registry-scrub", ".venv/bin/registry-scrub"):
        return check_refused(args, tmp_path)
    paths = [arg for arg in args if REPO_PATH.match(arg) and "*" not in arg]
    missing = [f"{p}: no such file in the repository" for p in paths if not (REPO / p).exists()]
    if program in ("registry-scrub", ".venv/bin/registry-scrub"):
        return check_registry_scrub(block, args, tmp_path)
    if program == "make":
        targets = [arg for arg in args if not arg.startswith("-") and "=" not in arg]
        return [f"make {t}: no such target in the Makefile" for t in targets if t not in makefile_targets()]
    if program in (".venv/bin/python", "python", "python3") and args[:1] == ["-m"] and len(args) > 1:
        found = importlib.util.find_spec(args[1].split(".")[0]) is not None
        return [] if found else [f"{program} -m {args[1]}: no such module in this environment"]
    if program in (".venv/bin/python", "python", "python3", "bash", "sh"):
        if not args or args[0].startswith("-"):
            return [f"{program} {' '.join(args)}: run a script of the repository"]
        return check_script(args[0], args[1:])
    if REPO_PATH.match(program):
        return check_script(program.removeprefix("./"), args)
    if program.startswith(".venv/bin/"):
        tool = program.removeprefix(".venv/bin/")
        return missing + ([] if (BIN / tool).exists() else [f"{program}: not installed by `make setup`"])
    if program in EXTERNAL:
        return missing
    return [f"{program}: a program this test does not know; check it or add it to EXTERNAL"]


def test_the_docs_hold_commands_to_check():
    programs = set()
    for doc in DOCS:
        for block in fenced_blocks(doc):
            try:
                programs |= {words[0] for _, words in commands_of(block)}
            except ValueError:
                pass  # reported by the test below
    assert {"registry-scrub", ".venv/bin/registry-scrub", "make", "jobs/deploy/deploy.sh"} <= programs


def test_every_command_in_the_docs_runs_as_written(tmp_path):
    problems = []
    for doc in DOCS:
        for block in fenced_blocks(doc):
            try:
                commands = commands_of(block)
            except ValueError as err:  # shlex: an unclosed quote
                problems.append(f"{block.where}: not a command a shell can read ({err})")
                continue
            for line, words in commands:
                problems.extend(
                    f"{block.where}: {line}\n    {problem}" for problem in check_command(block, words, tmp_path)
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a --x 'b c' # note\n", [["a", "--x", "b c"]]),
        ("$ make demo && X=1 .venv/bin/tool --y \\\n  z &\n", [["make", "demo"], [".venv/bin/tool", "--y", "z"]]),
        ("make lock  # one \\\n  #   two\n", [["make", "lock"]]),
        ("cat $R/f | jq '\n  .a\n  | .b'\n", [["cat", "$R/f"], ["jq", "\n  .a\n  | .b"]]),
        ("gcloud storage rm -I < plan.txt\n", [["gcloud", "storage", "rm", "-I"]]),
        ('E=$(jq -r .x f) ; s --port "${E##*:}"\n', [["s", "--port", "${E##*:}"]]),
    ],
)
def test_the_reader_splits_commands_as_a_shell_would(text, expected):
    block = Block(REPO / "README.md", 1, "sh", text, False)
    assert [words for _, words in commands_of(block)] == expected


def test_an_illustrative_block_opts_out_and_output_is_not_a_command():
    assert commands_of(Block(REPO / "README.md", 1, "console", "$ registry-scrub --frobnicate\n", False)) == []
    assert commands_of(Block(REPO / "README.md", 1, "sh", "registry-scrub --frobnicate\n", True)) == []
    output = "progress: 3 of 4 objects\nregistry-scrub: unknown argument\nregistry-scrub --bucket b\n"
    assert [w for _, w in commands_of(Block(REPO / "README.md", 1, "", output, False))] == [
        ["registry-scrub", "--bucket", "b"]
    ]


def test_a_block_shown_as_refused_must_be_refused(tmp_path):
    refused = Block(REPO / "docs" / "fleet.md", 1, "sh", "", False, refused=True)
    assert not check_command(refused, ["registry-scrub", "scan", "--scan-org", "my-org", "--plan-only"], tmp_path)
    accepted = check_command(refused, ["registry-scrub", "--help"], tmp_path)
    assert accepted and "shown as refused, but it exited 0" in accepted[0]


def test_a_wrong_command_is_caught(tmp_path):
    block = Block(REPO / "docs" / "cli.md", 1, "sh", "", False)
    assert check_command(block, ["registry-scrub", "--read-concurency", "4"], tmp_path)
    assert check_command(block, ["registry-scrub", "--config", "nowhere.yaml"], tmp_path)
    assert check_command(block, ["make", "no-such-target"], tmp_path)
    assert check_command(block, ["jobs/deploy/deploy.sh", "--no-such-flag"], tmp_path)
    assert check_command(block, ["frobnicate"], tmp_path)
    assert check_command(block, ["python", "-m", "no_such_module_here"], tmp_path)
    assert not check_command(block, ["python", "-m", "json.tool"], tmp_path)


# --- the docs against the CLI's own tables -----------------------------------------------------


def test_top_level_help_and_docs_cli_name_every_command(capsys):
    assert cli.main(["--help"], handle_signals=False) == 0
    shown = capsys.readouterr().out
    synopsis = (REPO / "docs" / "cli.md").read_text()
    for command in cli.build_parser().commands:
        assert re.search(rf"\b{command}\b", shown), f"`registry-scrub --help` does not name `{command}`"
        assert f"registry-scrub {command}" in synopsis or command == "scan", f"docs/cli.md omits `{command}`"
        assert f"registry-scrub {command} --help" in shown or command == "scan"


def _table_rows(doc: Path) -> dict[str, list[str]]:
    rows = {}
    for line in doc.read_text().splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and re.fullmatch(r"`[a-z_.\[\]]+`", cells[0]):
            rows[cells[0].strip("`")] = cells
    return rows


def test_docs_configuration_names_the_flag_of_every_key_that_has_one():
    rows = _table_rows(REPO / "docs" / "configuration.md")
    flag_of = {key: flag for flag, (key, _) in cli.OVERRIDES.items()}
    for key, cells in rows.items():
        flags = set(re.findall(r"--[a-z-]+", cells[2]))
        assert flags == ({flag_of[key]} if key in flag_of else set()), f"docs/configuration.md, {key}: {cells[2]}"
    assert set(flag_of) <= set(rows), f"keys with a flag but no row: {set(flag_of) - set(rows)}"


def test_docs_cli_lists_every_flag():
    text = (REPO / "docs" / "cli.md").read_text()
    for flag in cli.OVERRIDES:
        assert f"| `{flag}" in text, f"docs/cli.md has no row for {flag}"


# Package registries are named by what they are (PyPI, Maven Central), never by host.
REGISTRY_HOSTS = re.compile(
    r"https?://(?:repo\.maven\.apache\.org|repo1\.maven\.org|(?:[\w-]+\.)?pypi\.org|files\.pythonhosted\.org|"
    r"registry\.npmjs\.org|proxy\.golang\.org|crates\.io|static\.crates\.io)\b"
)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_names_a_package_registry_by_its_host(doc):
    assert not REGISTRY_HOSTS.findall(doc.read_text()), doc


def test_yaml_blocks_that_show_a_config_file_are_valid_configs(tmp_path):
    for doc in DOCS:
        for block in fenced_blocks(doc):
            first = block.text.lstrip().split("\n", 1)[0]
            if block.lang in ("yaml", "yml") and re.fullmatch(r"# [\w.-]+\.ya?ml", first):
                if "source" not in (yaml.safe_load(block.text) or {}):
                    continue  # a fragment of a config, not the whole file
                path = tmp_path / first[2:]
                path.write_text(block.text)
                try:
                    load_config(path)
                except ConfigError as err:
                    pytest.fail(f"{block.where}: {err}")
