"""A plain ``pip install .`` has every package the commands import at run time (issue 10, row 3).

pandas imports some packages only when a method needs them (``to_markdown`` -> tabulate).
A test-only extra that happens to pull one in (stockpyl -> tabulate) hides the gap from
the test suite, so the source is scanned for those methods and the run-time dependency
list checked. ``.ci/run`` also installs without extras in a fresh venv and runs the demo.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forecasting", "policy_selector", "optimization", "pipelines")
#: pandas method -> the optional package it imports when called
PANDAS_OPTIONAL = {
    r"\.to_markdown\(": "tabulate",
    r"\.to_excel\(|read_excel\(|ExcelWriter\(": "openpyxl",
    r"\.style\b": "jinja2",
}


def _runtime_deps() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in deps}


def _used(pattern: str) -> list[str]:
    return [
        str(p.relative_to(ROOT))
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if re.search(pattern, p.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize(("pattern", "package"), PANDAS_OPTIONAL.items())
def test_pandas_optional_imports_used_at_run_time_are_run_time_dependencies(pattern, package):
    users = _used(pattern)
    assert not users or package in _runtime_deps(), (
        f"{users} call a pandas method that needs {package!r}; add it to [project.dependencies]"
    )


def test_the_scan_finds_the_known_users():
    assert "pipelines" in " ".join(_used(r"\.to_markdown\(")) and _used(r"\.to_excel\(")


def _make_rules() -> dict[str, tuple[list[str], str]]:
    """target -> (prerequisites, recipe text) of the Makefile."""
    rules, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current:
            rules[current][1].append(line.strip())
        elif re.match(r"^[^\s#=]+:(?!=)", line):
            target, prereqs = line.split(":", 1)
            current = target.strip()
            rules[current] = (prereqs.split(), [])
        else:
            current = None
    return {t: (p, "\n".join(r)) for t, (p, r) in rules.items()}


def _recipes_behind(rules, target: str) -> str:
    prereqs, recipe = rules.get(target, ([], ""))
    return recipe + "".join("\n" + _recipes_behind(rules, p) for p in prereqs)


def test_make_demo_installs_runtime_dependencies_only():
    rules = _make_rules()
    behind = _recipes_behind(rules, "demo")
    assert "pip install" in behind and "stockwise demo" in behind
    assert "[test]" not in behind, "make demo must install without the test extra"
    assert "[test]" in _recipes_behind(rules, "test")
