"""README.md's "Failure behaviour" tables and the tests back each other one-to-one.

Every row of the "Bad input" table names a test case of ``test_bad_input.py`` or of another
``test_bad_input_*.py`` module (``module.py::case``; with its parameter id), every such test case appears
in exactly one row, and every test the other tables name exists.
"""

from __future__ import annotations

import importlib
import re

import pytest

from .conftest import REPO

DOC = REPO / "README.md"
OUTSIDE_TABLE = {"test_real_process_prints_one_line", "test_debug_flag_shows_the_traceback"}  # named below it


def _case_ids(module_name: str) -> set[str]:
    """``name`` or ``name[id]`` for every test case of a module, ids as pytest derives them."""
    module = importlib.import_module(f"tests.reliability.{module_name}")
    cases = set()
    for name, fn in vars(module).items():
        if not (name.startswith("test_") and callable(fn)):
            continue
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        if not marks:
            cases.add(name)
            continue
        assert len(marks) == 1, f"{name}: one parametrize per test, please"
        for value in marks[0].args[1]:
            if hasattr(value, "id") and hasattr(value, "values"):  # pytest.param
                assert value.id, f"{name}: give pytest.param an id"
                cases.add(f"{name}[{value.id}]")
                continue
            parts = value if isinstance(value, tuple) else (value,)
            assert all(isinstance(p, str) for p in parts), f"{name}: non-string parameters need explicit ids"
            cases.add(f"{name}[{'-'.join(parts)}]")
    return cases


def _section(title: str) -> str:
    """The README sub-section ``### title`` (up to the next heading of level 2 or 3)."""
    text = DOC.read_text()
    start = text.index(f"### {title}\n")
    ends = [e for e in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if e > 0]
    return text[start:min(ends) if ends else len(text)]


def _rows(section: str) -> list[list[str]]:
    rows = [line.strip().strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return rows[1:]  # drop the header (the |---| line does not start with "| ")


def _bad_input_cases() -> set[str]:
    """Cases of ``test_bad_input.py`` as ``name[id]``, of the other ``test_bad_input_*.py`` as ``module.py::name[id]``."""
    cases = _case_ids("test_bad_input")
    for path in sorted((REPO / "tests" / "reliability").glob("test_bad_input_*.py")):
        cases |= {f"{path.name}::{case}" for case in _case_ids(path.stem)}
    return cases


def test_bad_input_rows_and_tests_match_one_to_one():
    rows = _rows(_section("Bad input"))
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    named = [re.fullmatch(r"`((?:test_bad_input_\w+\.py::)?test_[^`]+)`", r[-1].strip()).group(1) for r in rows]
    cases = _bad_input_cases()
    assert len(named) == len(set(named)), "a test backs two rows"
    assert set(named) <= cases, sorted(set(named) - cases)
    assert cases - set(named) == OUTSIDE_TABLE, sorted(cases - set(named) - OUTSIDE_TABLE)
    below = _section("Bad input").split("How errors reach the user", 1)[1]
    assert all(f"`{name}`" in below for name in OUTSIDE_TABLE)


def test_stated_count_of_bad_inputs_is_the_number_of_rows():
    stated = re.search(r"\*\*(\d+) bad inputs are tested\*\*", DOC.read_text().split("## Failure behaviour", 1)[1])
    assert stated, "README's Failure behaviour section states how many bad inputs are tested"
    assert int(stated.group(1)) == len(_rows(_section("Bad input"))) == len(_bad_input_cases()) - len(OUTSIDE_TABLE)


@pytest.mark.parametrize("title", ["Untrusted files", "Nothing lost", "Waits and limits", "Determinism", "Fuzzing"])
def test_other_tables_name_existing_tests(title):
    section = _section(title)
    default = re.search(r"test \(`(test_\w+)\.py::`\)", section)
    for row in _rows(section):
        for ref in re.findall(r"`((?:tests/\w+/)?(?:test_\w+\.py::)?test_\w+)", row[-1]):
            path, _, name = ref.rpartition("::")
            if not path:
                assert default, f"{title}: {ref} without a module"
                path = f"tests/reliability/{default.group(1)}.py"
            elif "/" not in path:
                path = f"tests/reliability/{path}"
            source = (REPO / path).read_text()
            assert re.search(rf"^def {name}\(", source, re.M), f"{ref} not found in {path}"
