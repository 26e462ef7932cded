"""The documents check themselves: README.md, CONTRIBUTING.md, benchmarks/README.md and docs/.

- every ```python block compiles and uses no name it never imports or defines (pyflakes), and what it
  imports from ganforge (and from the built-in plugins) exists;
- every ```toml block parses, and every recipe shown (a block with ``extends``) resolves against the
  installed plugins;
- every relative link and picture points at an existing file (and heading, for ``#anchors``), and
  every repository path, ``ganforge.*`` name and ``python -m benchmarks.*`` harness mentioned exists;
- no document narrates history (ticket numbers, working sessions, dates);
- the plugin guide documents every hook, every member of the run interface and every capability;
- README.md starts with the two commands, and ``mkdocs build --strict`` passes.

Everything but the recipe and mkdocs checks reads files only (no torch), so it is fast.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
USER_DOCS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "benchmarks" / "README.md",
                    *DOCS.rglob("*.md")])
# Example names the guides make up: a plugin package a reader writes, not one that exists here.
EXAMPLE_MODULES = {"ganforge_mything"}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- reading documents --------------------------------------------------------------------------
@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str

    def __str__(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)")


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (fences may be indented, e.g. inside a list)."""
    found, lines, i = [], path.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, start = len(m["indent"]), m["fence"], i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        found.append(Block(path, start + 1, m["lang"].lower(), "\n".join(body) + "\n"))
        i += 1
    return found


def prose(path: Path) -> str:
    """The file's text without fenced blocks and inline code (links inside code are not links)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def all_blocks(lang: str) -> list[Block]:
    return [b for path in USER_DOCS for b in blocks(path) if b.lang == lang]


PYTHON_BLOCKS = all_blocks("python")
TOML_BLOCKS = all_blocks("toml")


# --- python blocks --------------------------------------------------------------------------------
def undefined_names(code: str, filename: str = "<snippet>") -> list[str]:
    """pyflakes' complaints about names used but never imported or defined."""
    from pyflakes import checker, messages

    tree = ast.parse(code, filename)
    bad = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)
    return [f"line {m.lineno}: {m.message % m.message_args}"
            for m in checker.Checker(tree, filename).messages if isinstance(m, bad)]


def test_python_blocks_exist():
    assert PYTHON_BLOCKS, "no ```python block found: the extraction is broken"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_block_compiles_and_imports_what_it_uses(block: Block):
    pytest.importorskip("pyflakes", reason="pyflakes is in the test extra: pip install -e '.[test]'")
    try:
        compile(block.code, str(block), "exec")
    except SyntaxError as exc:
        pytest.fail(f"{block}: the snippet does not compile: {exc}")
    problems = undefined_names(block.code, str(block))
    assert not problems, f"{block}: the snippet uses names it never imports or defines:\n" + "\n".join(problems)


def test_undefined_name_check_catches_a_missing_import():
    pytest.importorskip("pyflakes", reason="pyflakes is in the test extra: pip install -e '.[test]'")
    snippet = ("from ganforge.testing import isolated_plugins\n\n"
               "def test_it(tmp_path):\n"
               "    with use_plugins(isolated_plugins()):\n"
               "        CliRunner().invoke(app, ['recipes'])\n")
    found = " ".join(undefined_names(snippet))
    assert all(name in found for name in ("use_plugins", "CliRunner", "app")), found
    assert "tmp_path" not in found and "isolated_plugins" not in found


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _public_api() -> set[str]:
    """``from ganforge import X``: the names of ``_PUBLIC`` in ganforge/__init__.py, and what it defines."""
    init = REPO / "ganforge" / "__init__.py"
    names = _top_level_names(init)
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_PUBLIC" for t in node.targets):
            names.update(ast.literal_eval(node.value))
    return names


def _module_file(dotted: str) -> Path | None:
    """The source file of a module of this repository (core or built-in plugin), else None."""
    parts = dotted.split(".")
    base = REPO if parts[0] == "ganforge" else REPO / "plugins"
    for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _check_ganforge_name(dotted: str) -> str | None:
    """Why ``dotted`` (a module, or a module then one attribute) does not exist; None when it does."""
    if _module_file(dotted) is not None:
        return None
    module, _, name = dotted.rpartition(".")
    path = _module_file(module) if module else None
    if path is None:
        return f"no module {module or dotted}"
    defined = _public_api() if module == "ganforge" else _top_level_names(path)
    sub = path.parent / name if path.name == "__init__.py" else None
    if name in defined or (sub is not None and (sub.is_dir() or sub.with_suffix(".py").is_file())):
        return None
    return f"{module} has no {name}"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_block_imports_exist(block: Block):
    problems = []
    for node in ast.walk(ast.parse(block.code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            top = target.split(".")[0]
            if top in EXAMPLE_MODULES or not (top == "ganforge" or top.startswith("ganforge_")):
                continue
            problem = _check_ganforge_name(target)
            if problem:
                problems.append(f"import of {target}: {problem}")
    assert not problems, f"{block}: " + "; ".join(problems)


# --- toml blocks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("block", TOML_BLOCKS, ids=str)
def test_toml_block_parses(block: Block):
    try:
        tomllib.loads(block.code)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{block}: not valid TOML: {exc}")


# A recipe shipped by the reader's own plugin starts with a comment naming its file in that package.
RECIPE_BLOCKS = [b for b in TOML_BLOCKS
                 if re.search(r"^extends\s*=", b.code, re.M) and not re.match(r"#\s*ganforge_", b.code)]


@pytest.mark.parametrize("block", RECIPE_BLOCKS, ids=str)
def test_recipe_block_resolves(block: Block, tmp_path: Path):
    from ganforge import get_registry, load_recipe

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(block.code, encoding="utf-8")
    load_recipe(str(recipe), get_registry())  # raises RecipeError naming every problem


# --- links, pictures and mentioned paths ----------------------------------------------------------
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


def _slugs(heading: str) -> set[str]:
    """The anchors GitHub and MkDocs give a heading (they differ only in corner cases)."""
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip()).lower()
    github = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
    mkdocs = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip())
    return {github, mkdocs}


def _anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose_with_code_spans(path).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            found |= _slugs(m.group(1))
    return found


def prose_with_code_spans(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", "", text, flags=re.S | re.M)


def _links(path: Path) -> list[str]:
    text = prose(path)
    return _MD_LINK.findall(text) + _HTML_LINK.findall(text)


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_relative_links_and_pictures_exist(path: Path):
    problems = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{target}: no such file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{target}: {_rel(resolved)} has no heading with the anchor #{anchor}")
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


_REPO_PATH = re.compile(r"(?<![\w./~-])((?:benchmarks|tests|plugins|examples|ganforge|docs)/[\w./-]*[\w/])")
_DOTTED = re.compile(r"(?<![\w./-])((?:ganforge|ganforge_\w+)(?:\.\w+)+)")
_HARNESS = re.compile(r"python -m (benchmarks\.\w+)")


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_mentioned_paths_and_modules_exist(path: Path):
    """Repository paths, ``ganforge.x.y`` / ``ganforge_plugin.module`` names and benchmark harnesses
    that a document mentions exist, so moving a file or module cannot leave the guide behind."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\]\([^)]*\)|(?:src|href)=\"[^\"]*\"|https?://\S+", "", text)  # links are checked above
    problems = []
    for mention in sorted(set(_REPO_PATH.findall(text))):
        if not (REPO / mention).exists():
            problems.append(f"path {mention} does not exist")
    for dotted in sorted(set(_DOTTED.findall(text))):
        if dotted.split(".")[0] in EXAMPLE_MODULES or re.search(r"\.(py|toml|json|md|png|jpg|safetensors)$", dotted):
            continue
        problem = _check_ganforge_name(dotted)
        if problem:
            problems.append(f"{dotted}: {problem}")
    for harness in sorted(set(_HARNESS.findall(text))):
        if _module_file(harness) is None and not (REPO / (harness.replace(".", "/") + ".py")).is_file():
            problems.append(f"python -m {harness}: no such module")
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


# --- wording ----------------------------------------------------------------------------------------
HISTORY = {
    "a ticket number": re.compile(r"\b(issue|ticket|PR)s?\s*#?\d+", re.I),
    "a working session": re.compile(r"\bsessions?\b", re.I),
    "a date": re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b"),
    "a past working day": re.compile(r"\b(yesterday|today|working day|last week)\b", re.I),
}


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_documents_describe_what_is_not_history(path: Path):
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for what, pattern in HISTORY.items():
            m = pattern.search(line)
            if m:
                problems.append(f"line {number} mentions {what} ({m.group(0)!r}): {line.strip()[:100]}")
    assert not problems, f"{_rel(path)} narrates history; say what was measured and on which CPU:\n" + "\n".join(problems)


# --- the plugin guide covers the interfaces -------------------------------------------------------
GUIDE = DOCS / "plugins.md"


def _documented(name: str) -> bool:
    return re.search(rf"`[^`\n]*\b{re.escape(name)}\b[^`\n]*`", GUIDE.read_text(encoding="utf-8")) is not None


def _class_members(path: Path, cls: str, *, fields: bool = False) -> list[str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            if fields:
                return [n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
            return [n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    raise AssertionError(f"class {cls} not found in {_rel(path)}")


def test_plugin_guide_documents_every_hook():
    tree = ast.parse((REPO / "ganforge" / "core" / "hookspecs.py").read_text(encoding="utf-8"))
    hooks = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
             and any(ast.unparse(d) == "hookspec" for d in n.decorator_list)]
    assert hooks, "no @hookspec found"
    missing = [h for h in hooks if not _documented(h)]
    assert not missing, f"docs/plugins.md does not document the hooks {missing}"


def test_plugin_guide_documents_the_run_interface_and_capabilities():
    run = _class_members(REPO / "ganforge" / "train" / "run.py", "Run")
    caps = _class_members(REPO / "ganforge" / "core" / "components.py", "Capabilities", fields=True)
    assert run and caps
    missing = [f"Run.{m}" for m in run if not _documented(m)] + [f"Capabilities.{f}" for f in caps if not _documented(f)]
    assert not missing, f"docs/plugins.md does not document {missing}"


# --- README and the site ------------------------------------------------------------------------------
TWO_COMMANDS = [
    "make demo    # sets up .venv, trains the quickstart DCGAN on built-in shapes (a few minutes on a CPU), writes samples",
    "make test    # sets up .venv and runs the whole test suite (what CI runs)",
]


def test_readme_starts_with_the_two_commands():
    lines = [l for l in (REPO / "README.md").read_text(encoding="utf-8").splitlines() if l.strip()]
    assert lines[0].startswith("# "), "README.md starts with its title"
    assert lines[1].startswith("```"), "the first thing after the title is the two commands"
    assert lines[2:4] == TWO_COMMANDS and lines[4].startswith("```"), lines[1:5]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"the Makefile has no `{target}` target"


def _missing_docs_tools() -> str | None:
    for module, package in (("mkdocs", "mkdocs"), ("material", "mkdocs-material"),
                            ("mkdocstrings_handlers.python", "mkdocstrings[python]")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{package} is not installed (pip install -e '.[docs]')"
    return None


def test_site_builds_strictly(tmp_path: Path):
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(f"cannot build the documentation site: {missing}")
    result = subprocess.run(
        # Never --quiet: it hides the warnings from the --strict count too, and the build passes.
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    for page in ("index.html", "plugins/index.html", "reference/run/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    # The reference is generated from the docstrings, not left empty.
    assert "report_real_scores" in (tmp_path / "site" / "reference" / "run" / "index.html").read_text(encoding="utf-8")
