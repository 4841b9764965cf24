"""An instance's context: built from the settings it is given, wherever they come from."""

from __future__ import annotations

from common.context import Context
from common.settings import Settings


def test_a_context_made_from_a_mapping_takes_its_settings_from_it_not_from_the_process(monkeypatch):
    monkeypatch.setenv("FRONTEND_URL", "https://elsewhere.example")

    context = Context({"FRONTEND_URL": "https://shop.example"})

    assert context.settings.frontend_url == "https://shop.example"


def test_shared_rate_limit_counts_are_kept_in_the_google_cloud_project_the_settings_name():
    """Not the one Google's client would guess from the process: a context's settings may come from elsewhere.

    Opening the counts dials nothing; they connect on the first request.
    """
    settings = Settings(rate_limit_storage_uri="firestore://rate_limits", google_cloud_project="hero-me")

    assert Context(settings=settings).limiter().counts.project == "hero-me"
