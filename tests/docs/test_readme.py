"""README.md stays a short front page whose every link lands on a documentation page and heading."""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def links(markdown: str) -> list[str]:
    """Relative link targets outside code blocks (web addresses left out)."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", prose) if not re.match(r"^[a-z]+:", target)]


def heading_ids(page: Path) -> set[str]:
    """The ids MkDocs gives the page's headings (``toc``'s default slugify, or an explicit ``{#id}``)."""
    ids = set()
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"),
                                                 flags=re.S | re.M), flags=re.M):
        explicit = re.search(r"\{#([\w-]+)\}\s*$", heading)
        ids.add(explicit.group(1) if explicit else slugify(heading.replace("`", ""), "-"))
    return ids


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) < 250


def test_every_readme_link_lands_on_a_file_and_heading():
    targets = links(README.read_text(encoding="utf-8"))
    assert len(targets) > 20
    generated = {"docs/reference/configuration.md", "docs/reference/cli.md"}  # written by docs/hooks at build time
    for target in targets:
        path, _, anchor = target.partition("#")
        if path in generated:
            continue
        assert (ROOT / path).is_file(), f"README links to {path}, which does not exist"
        if anchor:
            assert anchor in heading_ids(ROOT / path), f"README links to {target}: no such heading"


def test_heading_ids_follow_mkdocs_slugs(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Serving over HTTP\n## `seqadapt-verify`, measured\n### Other {#custom}\n")
    assert heading_ids(page) == {"serving-over-http", "seqadapt-verify-measured", "custom"}
