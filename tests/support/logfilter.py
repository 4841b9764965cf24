"""The part of Cloud Logging's query language the log-based metrics use, to try their filters on real lines.

Google offers no offline evaluator, so this reads the subset deploy/setup.sh
writes, and refuses anything else rather than guess: comparisons joined by
AND, each `FIELD=VALUE`, `FIELD=(VALUE OR VALUE …)` or `severity>=LEVEL`,
values quoted strings, numbers or bare words. As in Cloud Logging, string
comparisons ignore case and severities are ordered.

`entry(line, resource_type)` turns one of our JSON log lines into the
LogEntry Cloud Logging makes of it: `severity` taken out, the rest in
`jsonPayload`.
"""

from __future__ import annotations

import re

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
SPECIAL = (
    "severity",
    "logging.googleapis.com/trace",
    "logging.googleapis.com/spanId",
    "logging.googleapis.com/trace_sampled",
)

_CLAUSE = re.compile(r'(?P<path>[A-Za-z_][A-Za-z0-9_.]*)(?P<op>>=|=)(?P<value>\(.+\)|"[^"]*"|[A-Za-z0-9_.]+)')
_VALUE = re.compile(r'"[^"]*"|[A-Za-z0-9_.]+')


def entry(line: dict, resource_type: str) -> dict:
    return {
        "severity": line.get("severity", "DEFAULT"),
        "resource": {"type": resource_type},
        "jsonPayload": {k: v for k, v in line.items() if k not in SPECIAL},
    }


def matches(filter_text: str, log_entry: dict) -> bool:
    return all(_clause(clause.strip(), log_entry) for clause in filter_text.split(" AND "))


def _clause(text: str, log_entry: dict) -> bool:
    found = _CLAUSE.fullmatch(text)
    if not found:
        raise ValueError(f"not in the supported subset: {text!r}")
    path, op, value = found.group("path"), found.group("op"), found.group("value")
    actual = _lookup(log_entry, path)
    if op == ">=":
        if path != "severity":
            raise ValueError(f"only severity is compared with >=: {text!r}")
        return SEVERITIES.index(str(actual)) >= SEVERITIES.index(value.upper())
    if value.startswith("("):
        options = value[1:-1].split(" OR ")
        if not all(_VALUE.fullmatch(option.strip()) for option in options):
            raise ValueError(f"not in the supported subset: {text!r}")
        return any(_equal(actual, option.strip()) for option in options)
    return _equal(actual, value)


def _lookup(log_entry: dict, path: str):
    value = log_entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _equal(actual, literal: str) -> bool:
    if actual is None:
        return False
    expected = literal[1:-1] if literal.startswith('"') else literal
    if isinstance(actual, bool):
        actual = "true" if actual else "false"
    return str(actual).lower() == expected.lower()
