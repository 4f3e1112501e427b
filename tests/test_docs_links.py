"""The user documentation (README.md, docs/) links only to what exists, and never to a
``shared/`` folder (it is not part of the repository: cite the original sources instead).

Relative links are checked as GitHub renders them: ``[text](path)``, ``[text](path#anchor)``,
``[text](#anchor)`` and reference definitions ``[id]: path``, outside code blocks and code
spans; a path must exist (file or folder), and an anchor into a Markdown file must be one of its
headings' GitHub slugs. External links (http, https, mailto) are not fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((n, line))
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if not m:
            continue
        slug = _slug(m.group(2))
        k = seen.get(slug, 0)
        seen[slug] = k + 1
        anchors.add(slug if k == 0 else f"{slug}-{k}")
    return anchors


def _links(path: Path) -> list[tuple[int, str]]:
    found = []
    for n, line in _prose_lines(path.read_text(encoding="utf-8")):
        bare = _CODE_SPAN.sub("", line)
        found += [(n, m.group(1)) for m in _INLINE.finditer(bare)]
        ref = _REFDEF.match(bare)
        if ref:
            found.append((n, ref.group(1)))
    return found


def _broken(doc: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for n, target in _links(doc):
        if _EXTERNAL.match(target):
            continue
        where = f"{doc.relative_to(root)}:{n}: {target}"
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            problems.append(f"{where}: no such file or folder")
            continue
        if root not in dest.parents and dest != root:
            problems.append(f"{where}: points outside the repository")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert _broken(doc) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shared_folder(doc: Path) -> None:
    hits = [
        f"{doc.relative_to(ROOT)}:{n}"
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"(?<![\w.-])shared/", line)
    ]
    assert hits == [], "cite the original sources (data sheets, papers), not a shared/ folder"


def test_checker_catches_what_it_should(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing anchor and links in code are told apart."""
    doc = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Exit codes\n\n```\n# not a heading\n```\n## Two words\n")
    doc.write_text(
        "[ok](b.md#exit-codes) [ok](b.md#two-words) [ok](#title) [ext](https://x.invalid/y)\n"
        "# Title\n[bad](missing.md) [bad anchor](b.md#not-a-heading) `[code](nowhere.md)`\n"
        "```\n[in a fence](nowhere.md)\n```\n"
    )
    targets = [t for _, t in _links(doc)]
    assert "nowhere.md" not in targets
    broken = _broken(doc, tmp_path.resolve())
    assert [b.split(": ", 2)[1] for b in broken] == ["missing.md", "b.md#not-a-heading"]
    assert _anchors(tmp_path / "b.md") == {"exit-codes", "two-words"}
    assert _slug("`edgekit bench`: the whole tick") == "edgekit-bench-the-whole-tick"
    assert _slug("4. When torch.export fails") == "4-when-torchexport-fails"


def test_every_key_of_the_denoise_block_is_documented():
    from edgekit.loop.blocks.calls import Denoise

    text = (Path(__file__).resolve().parents[1] / "docs" / "your-own-policy.md").read_text()
    table = text.split("The `denoise` block's keys:")[1].split("\n\n")[1]
    rows = {line.split("|")[1] for line in table.splitlines()[2:]}
    missing = [k for k in Denoise.model_fields if k != "block" and not any(f"`{k}`" in r
               for r in rows)]  # fmt: skip
    assert not missing, f"undocumented denoise keys: {missing}"
