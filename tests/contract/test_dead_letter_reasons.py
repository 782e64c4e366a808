"""Every dead-letter reason the code can give has a documented meaning, in one table.

The code is scanned (ast), not imported, so a new ``Rejected("some-code", ...)`` anywhere in services/ or
shared/ fails here until shared/contracts/dead_letters.py says what it means; a code listed there that
nothing raises any more fails too. Reasons are the first argument of any exception class whose
``__init__`` takes ``reason`` first (Rejected, InvalidEvent, InvalidReport, Refused, and any new one), and
the reason given to the runtime's ``dead_letters.send``."""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

from clinic.asyncapi import DOCUMENT
from shared.contracts import dead_letters
from shared.contracts.dead_letters import REASONS, RUNTIME

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "shared")


def sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for folder in SCANNED for path in sorted((ROOT / folder).rglob("*.py"))}


def raiser(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[1] if parts[0] == "services" else RUNTIME


def reason_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """Classes whose constructor takes the reason first: ``def __init__(self, reason, ...)``."""
    found = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__" and [a.arg for a in item.args.args[1:2]] == ["reason"]:
                        found.add(node.name)
    return found


def returned_strings(trees: dict[Path, ast.Module], function: str) -> list[str]:
    """The string constants a function (found by name anywhere scanned) can return."""
    strings = []
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == function:
                for ret in (n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None):
                    strings += [c.value for c in ast.walk(ret.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return strings


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _resolve(name: str, scope: ast.AST, trees: dict[Path, ast.Module]) -> list[str] | None:
    """A reason held in a variable: the strings returned by the function whose result was assigned to it."""
    for node in ast.walk(scope):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.NamedExpr) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(node.value, ast.Call):  # type: ignore[union-attr]
            called = _name(node.value.func)  # type: ignore[union-attr]
            strings = returned_strings(trees, called) if called else []
            return strings or None
    return None


def _dead_letters(call: ast.Call) -> bool:
    """The runtime's dead-letter call: ``<...>.dead_letters.send(record, reason, detail)``."""
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "send" and isinstance(func.value, ast.Attribute) and func.value.attr == "dead_letters"


def scan() -> tuple[dict[str, set[str]], list[str]]:
    """reason -> who raises it (a service, or runtime), and the call sites whose reason could not be told."""
    trees = sources()
    classes = reason_classes(trees)
    raised: dict[str, set[str]] = defaultdict(set)
    unresolved = []
    for path, tree in trees.items():
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = _name(call.func)
            if name in classes and call.args:
                argument = call.args[0]
            elif _dead_letters(call) and len(call.args) >= 2:
                argument = call.args[1]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                raised[argument.value].add(raiser(path))
            elif isinstance(argument, ast.Attribute) and argument.attr == "reason":
                continue  # passes on the reason of an exception raised (and scanned) elsewhere
            elif isinstance(argument, ast.Name):
                scope = next((f for f in functions if f.lineno <= call.lineno <= (f.end_lineno or f.lineno)), tree)
                strings = _resolve(argument.id, scope, trees)
                if strings is None:
                    unresolved.append(where)
                for value in strings or ():
                    raised[value].add(raiser(path))
            elif not _dead_letters(call):  # the runtime forwarding error.reason in a variable it was handed
                unresolved.append(where)
    return dict(raised), unresolved


RAISED, UNRESOLVED = scan()


def test_the_scan_finds_the_reason_classes_and_the_runtime_and_service_reasons():
    assert {"Rejected", "InvalidEvent", "InvalidReport", "Refused"} <= reason_classes(sources())
    assert {"malformed", "schema-invalid", "oversized", "handler-error", "internal-error", "wrong-topic"} <= RAISED.keys()
    assert {"unknown-session", "unknown-rule", "severity-scale-mismatch", "lot-conflict", "onset-after-report"} <= RAISED.keys()


def test_every_reason_raised_anywhere_has_a_documented_meaning():
    undocumented = sorted(RAISED.keys() - REASONS.keys())
    assert undocumented == [], f"add {undocumented} to shared/contracts/dead_letters.py (then make asyncapi and make rules)"
    assert UNRESOLVED == [], f"reasons that are neither a string literal nor resolvable: {UNRESOLVED}"


def test_every_documented_reason_is_still_raised_by_whom_the_table_says():
    assert sorted(REASONS.keys() - RAISED.keys()) == [], "documented reasons nothing raises any more"
    assert {code: sorted(RAISED[code]) for code in REASONS} == {code: sorted(r.raised_by) for code, r in REASONS.items()}


def test_every_meaning_is_a_sentence():
    for reason in REASONS.values():
        assert reason.meaning[:1].isupper() and reason.meaning.endswith("."), reason.code


def test_the_asyncapi_dlq_reason_header_is_described_from_the_table():
    headers = json.loads(DOCUMENT.read_text())["components"]["schemas"]["DeadLetterHeaders"]["properties"]
    description = headers["dlq_reason"]["description"]
    assert description == dead_letters.describe()
    assert all(f"`{code}`" in description for code in REASONS)
