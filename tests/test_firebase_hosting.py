"""firebase.json puts the `api` service behind the frontend's own origin.

Firebase Hosting rewrites the API's paths to the Cloud Run service the
build deploys with `_TARGET=run`, so a frontend served by Hosting calls
relative paths (`fetch("/api/checkout/embedded-session")`) with no CORS.
The rewrites must cover exactly the paths main.py routes: a route left out
would reach Hosting's static files instead, a rewrite to nothing would send
visitors to the API's 404.
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from tests.support.cloudbuild import ROOT, load

FIREBASE = ROOT / "firebase.json"


def routes_in_main() -> set[str]:
    """The paths of main.ROUTES, read from main.py without importing it (and its dependencies)."""
    for node in ast.parse((ROOT / "main.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROUTES" for t in node.targets):
            assert isinstance(node.value, ast.Dict), "main.ROUTES is no longer a dict literal: read it another way here"
            return {ast.literal_eval(key) for key in node.value.keys}
    pytest.fail("main.py defines no ROUTES")


def rewrites() -> list[dict]:
    return json.loads(FIREBASE.read_text())["hosting"]["rewrites"]


def glob_matches(pattern: str, path: str) -> bool:
    """Hosting's glob: `**` spans folders, `*` stays within one."""
    regex = "".join(
        ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
        for part in re.split(r"(\*\*|\*)", pattern)
    )
    return re.fullmatch(regex, path) is not None


def test_every_route_in_main_is_rewritten_to_the_api_service():
    sources = [rewrite["source"] for rewrite in rewrites()]
    unreached = [path for path in routes_in_main() if not any(glob_matches(source, path) for source in sources)]
    assert unreached == []


def test_every_rewrite_reaches_a_route_in_main():
    routes = routes_in_main()
    to_nothing = [
        rewrite["source"] for rewrite in rewrites() if not any(glob_matches(rewrite["source"], path) for path in routes)
    ]
    assert to_nothing == []


def test_rewrites_go_to_the_service_and_region_the_build_deploys():
    defaults = load()["substitutions"]
    assert {json.dumps(rewrite["run"], sort_keys=True) for rewrite in rewrites()} == {
        json.dumps({"serviceId": defaults["_SERVICE"], "region": defaults["_REGION"]}, sort_keys=True)
    }
