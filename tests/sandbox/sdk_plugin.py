"""A pytest plugin for running the official SDK's own tests against the sandbox.

Given on the command line (``-p sdk_plugin``) by ``test_sdk_suite.py``; no file of the
SDK's is edited. It does three things:

- skips the tests that download from the internet (:data:`INTERNET`), with that reason;
- makes the app that ``tests/test_app.py``'s dataset tests work in when its
  ``test_create_app`` is deselected (``-k dataset``): in the SDK's own CI that test runs
  first and makes it; here the plugin makes it the same way (``User.create_app``) before
  the tests and deletes it after (as ``test_delete_app`` would);
- writes each test's outcome to the JSON file named by ``SDK_SUITE_REPORT``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

INTERNET = {
    "test_list_inputs": "downloads its inputs from their URLs, one of them "
    "https://samples.clarifai.com/metro-north.jpg (Inputs.download_inputs): the internet",
}
"""Tests that download from the internet, by name, with why."""

_outcomes: dict[str, str] = {}
_made_apps: list[tuple[Any, str]] = []


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        reason = INTERNET.get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_collection_finish(session: Any) -> None:
    selected = {item.name for item in session.items}
    modules = {item.module for item in session.items if item.module.__name__.endswith("test_app")}
    for module in modules:
        if "test_create_app" in selected or not hasattr(module, "CREATE_APP_ID"):
            continue
        from clarifai.client.user import User

        user = User(user_id=module.CREATE_APP_USER_ID, base_url=module.CLARIFAI_API_BASE)
        user.create_app(app_id=module.CREATE_APP_ID)
        _made_apps.append((user, module.CREATE_APP_ID))


def pytest_runtest_logreport(report: Any) -> None:
    counts = report.when == "call" or report.outcome != "passed"
    if counts and _outcomes.get(report.nodeid, "passed") == "passed":
        _outcomes[report.nodeid] = report.outcome


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    for user, app_id in _made_apps:
        user.delete_app(app_id)
    path = os.environ.get("SDK_SUITE_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(_outcomes, fh, indent=1, sort_keys=True)
