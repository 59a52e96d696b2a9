"""The contract in docs/architecture.md matches the code: every error code the server can send
is declared in dashboard/errors.py and listed in the docs with its status, and every route of
the app is in the docs (and no route that is not)."""

from __future__ import annotations

import ast
import re

import pytest

from dashboard import errors
from tests.conftest import ROOT

DOCS = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
SOURCES = sorted(p for p in (ROOT / "dashboard").rglob("*.py") if "node" not in p.parts)


def section(title: str) -> str:
    """The text of the docs' ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOCS, re.M | re.S)
    assert match, f"docs/architecture.md has no '## {title}' section"
    return match.group(1)


def documented_codes() -> dict[str, int]:
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", section("Errors"), re.M)
    codes = dict((code, int(status)) for code, status in rows)
    assert len(codes) == len(rows), "a code is listed twice"
    return codes


def used_in_source() -> tuple[set[str], set[str]]:
    """(literal error codes, ``errors.<Name>`` classes called) anywhere in dashboard/: a
    ``code=`` keyword or a ``"code": "..."`` entry given as a string, and every raise site."""
    literals, called = set(), set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "code":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    literals.add(node.value.value)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        literals.add(value.value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "errors"
                and node.func.attr[:1].isupper()
            ):
                called.add(node.func.attr)
    return literals, called


def test_the_registry_holds_every_error_class_with_its_status():
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MemdashError) and cls.code
    ]
    assert len(classes) == len(errors.CODES) >= 20  # one class per code, none sharing a code
    for cls in classes:
        assert errors.CODES[cls.code][0] == cls.status, cls
        assert errors.CODES[cls.code][1], f"{cls.__name__} needs a docstring: its meaning"


def test_every_code_used_in_the_code_is_declared():
    literals, called = used_in_source()
    assert literals <= set(errors.CODES), (
        f"undeclared codes: {sorted(literals - set(errors.CODES))}"
    )
    for name in called:
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.MemdashError), (
            f"errors.{name} is raised but not declared in dashboard/errors.py"
        )
        assert cls.code in errors.CODES, f"errors.{name} has no code of its own: raise a subclass"
    assert {"BadRequest", "TooManyWatches", "UnknownEvent", "NotWatching"} <= called


def test_a_base_without_a_code_cannot_be_raised():
    with pytest.raises(TypeError):
        errors.Conflict("which conflict?")


def test_the_docs_list_every_code_with_its_status_and_no_other():
    documented = documented_codes()
    declared = {code: status for code, (status, _meaning) in errors.CODES.items()}
    assert documented == declared


def test_every_route_is_documented_and_every_documented_route_exists(app):
    rules = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert ("GET", "/api/runs/<run_id>/heap-snapshot/<name>") in rules
    documented = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`?]*)", DOCS))
    assert rules - documented == set(), "routes missing from docs/architecture.md"
    assert documented - rules == set(), "docs/architecture.md names routes the app lacks"
