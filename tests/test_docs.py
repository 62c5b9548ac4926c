"""The documentation stays true to the repository.

Every relative link in README.md and docs/**/*.md points to an existing file
(and, with a ``#fragment``, to an existing heading of it); every repository
path and dotted module name the docs mention exists; the configuration guide's
complete examples load and equal the code's defaults; the README stays short.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
PACKAGES = ("forecasting", "optimization", "policy_selector", "pipelines", "benchmarks")

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*```")
_ROOTS = "|".join(PACKAGES)
_PATH = re.compile(r"(?<![\w/.-])((?:" + _ROOTS + r"|tests)/[\w/.-]*)")
_DOTTED = re.compile(r"(?<![\w/.-])((?:" + _ROOTS + r")(?:\.\w+)+)")


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _prose(text: str) -> list[str]:
    """Lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path.read_text()):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path) -> list[str]:
    targets = []
    for line in _prose(path.read_text()):
        targets += [t for t in _LINK.findall(line) if not re.match(r"^[a-z]+:", t)]
    return targets


@pytest.mark.parametrize("doc", _doc_files(), ids=_ids(_doc_files()))
def test_every_relative_link_points_to_an_existing_file_and_heading(doc):
    broken = []
    for target in _links(doc):
        file_part, _, fragment = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {dest.relative_to(ROOT)})")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links: {broken}"


def _module_file(parts: list[str]) -> tuple[Path | None, list[str]]:
    """The longest prefix of ``parts`` that is a module or package, and the rest."""
    for k in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:k])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, parts[k:]
    return None, parts


@pytest.mark.parametrize("doc", _doc_files(), ids=_ids(_doc_files()))
def test_every_repository_path_and_module_named_exists(doc):
    text = doc.read_text()
    missing = []
    for raw in set(_PATH.findall(text)):
        path = raw.rstrip(".")
        # benchmark results are not in git; links to docs are checked by the link test
        if path.startswith("benchmarks/results") or path.endswith(".md"):
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    for name in set(_DOTTED.findall(text)):
        if name.endswith(".md"):
            continue
        module, rest = _module_file(name.split("."))
        if module is None or (rest and not re.search(rf"\b{re.escape(rest[0])}\b", module.read_text())):
            missing.append(name)
    assert not missing, f"{doc.relative_to(ROOT)} names paths or modules that do not exist: {sorted(missing)}"


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move detail into docs/ (limit {README_MAX_LINES})"


def _yaml_blocks(path: Path) -> list[dict]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.DOTALL)]


def test_configuration_guide_examples_are_complete_and_hold_the_defaults():
    from pipelines.data.config import RunConfig
    from pipelines.flows.train import TrainSettings

    run, train = _yaml_blocks(ROOT / "docs" / "guide" / "configuration.md")
    documented = RunConfig(**run)
    assert set(run) == set(RunConfig.model_fields), "the run config example must show every key"
    for section in ("forecast", "scenario", "error_model"):
        assert set(run[section]) == set(type(getattr(documented, section)).model_fields)
    assert documented.model_dump(exclude={"data"}) == RunConfig().model_dump(exclude={"data"})
    assert set(train["train"]) == set(TrainSettings.model_fields), "the train example must show every key"
    assert TrainSettings(**train["train"]) == TrainSettings()


def _guide_table(heading: str) -> dict[str, str]:
    """The ``| `column` | meaning |`` rows of one section of the planner guide."""
    text = (ROOT / "docs" / "guide" / "planners.md").read_text()
    section = text.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", section, re.MULTILINE))


def test_planner_guide_lists_every_recommendation_column_as_the_schema_defines_it():
    from pipelines.report.schema import RECOMMENDATION_COLUMNS

    rows = _guide_table("The recommendations columns")
    assert list(rows) == list(RECOMMENDATION_COLUMNS)
    assert rows == RECOMMENDATION_COLUMNS


def test_planner_guide_lists_every_plan_column_as_the_schema_defines_it():
    from pipelines.report.schema import PLAN_COLUMNS

    rows = _guide_table("The time-phased plan")
    assert list(rows) == list(PLAN_COLUMNS)
    assert rows == PLAN_COLUMNS


def test_readme_item_master_columns_are_the_validators():
    from pipelines.data.validation import ITEM_OPTIONAL_DEFAULTS, ITEM_REQUIRED

    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `items` |"))
    columns = re.sub(r"\([^)]*\)", "", row.split("|")[3])
    required, _, optional = columns.partition("optional")
    assert sorted(re.findall(r"`(\w+)`", required)) == sorted(c for c in ITEM_REQUIRED if c != "unique_id")
    assert sorted(re.findall(r"`(\w+)`", optional)) == sorted(ITEM_OPTIONAL_DEFAULTS)
