"""The README and docs/*.md hold together: relative links resolve (anchors included), every
`make <target>` they name is a Makefile target, and the README stays a short front page that
links every docs page. Pure text, no subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 320

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.M)
# `make`, its options and VAR=value assignments skipped, then the target.
MAKE = re.compile(r"(?<![\w./-])make(?:\s+(?:-\S+|\w+=\S+))*\s+([A-Za-z0-9][A-Za-z0-9-]*)")
SHELL_BLOCKS = {"bash", "sh", "shell", "console", "zsh"}
MAKEFILE_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)[ \t]*:(?!=)", re.M)


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def split_code(text: str) -> tuple[str, list[str]]:
    """The prose (fenced blocks and inline code blanked out) and the code that may name make
    targets: inline code, shell blocks (```bash, sh, shell, console), and the `$ ` command lines
    of other blocks (not their output, where "make" is just a word)."""
    code: list[str] = []

    def fenced(match: re.Match) -> str:
        block = match.group(0)
        info = block.split("\n", 1)[0].strip("`~ \t").split(" ")[0].lower()
        if info in SHELL_BLOCKS:
            code.append(block)
        else:
            code.extend(line for line in block.splitlines() if line.lstrip().startswith("$ "))
        return "\n" * block.count("\n")

    def inline(match: re.Match) -> str:
        code.append(match.group(0))
        return "\n" * match.group(0).count("\n")

    prose = FENCE.sub(fenced, text)
    prose = INLINE_CODE.sub(inline, prose)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped (hyphens, underscores and
    spaces kept), lowercase, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, repeats numbered as GitHub numbers them."""
    prose = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(prose):
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(path: Path) -> list[str]:
    prose, _ = split_code(path.read_text(encoding="utf-8"))
    return [m.group(1) for m in LINK.finditer(prose)]


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def makefile_targets() -> set[str]:
    return set(MAKEFILE_TARGET.findall((REPO / "Makefile").read_text(encoding="utf-8")))


def make_targets_named(path: Path) -> set[str]:
    _, code = split_code(path.read_text(encoding="utf-8"))
    return {m.group(1) for block in code for m in MAKE.finditer(block)}


def test_there_are_docs_pages():
    assert DOCS, "no docs/*.md"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page):
        if is_external(target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file or folder")
        elif fragment and dest.is_file() and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{fragment} in {_name(dest)}")
    assert not broken, f"{_name(page)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_make_targets_exist(page: Path):
    missing = sorted(make_targets_named(page) - makefile_targets())
    assert not missing, f"{_name(page)} names make targets the Makefile lacks: {missing}"


def test_readme_is_a_short_front_page_that_links_every_docs_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    )
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in relative_links(README)
        if not is_external(target) and not target.startswith("#")
    }
    unlinked = [_name(doc) for doc in DOCS if doc.resolve() not in linked]
    assert not unlinked, f"README.md does not link: {unlinked}"


def test_every_docs_page_links_back_to_the_readme():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{_name(doc)} does not start with a '# Title'"
        assert "../README.md" in relative_links(doc), f"{_name(doc)} has no link back to the README"


def test_the_checks_catch_what_they_should():
    """The extractors on made-up text, so a regex that matches nothing cannot pass silently."""
    text = (
        "See [a](docs/x.md#part), [b](https://e.org), [c](#here), `[not](a-link.md)`, and\n"
        "```bash\nmake -s browse RUN=x  # make lint\n[no](link.md)\n```\n"
        "```\n$ make report RUN=x\nthe stills make at most 1 keyframe\n```\n"
        "Run `make\nbench-dedup` or `make curate SOURCES=a`; people make the same update.\n"
    )
    prose, code = split_code(text)
    assert [m.group(1) for m in LINK.finditer(prose)] == [
        "docs/x.md#part",
        "https://e.org",
        "#here",
    ]
    assert {m.group(1) for block in code for m in MAKE.finditer(block)} == {
        "browse",
        "lint",
        "report",
        "bench-dedup",
        "curate",
    }
    assert slug("Profiles (`configs/curate/`)") == "profiles-configscurate"
    assert slug("Dedup at Panda-70M scale") == "dedup-at-panda-70m-scale"
    assert slug("The omni model and its trainer (`make train-stage1/2/3`)") == (
        "the-omni-model-and-its-trainer-make-train-stage123"
    )
    assert {"curate", "test", "setup"} <= makefile_targets()
