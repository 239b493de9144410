"""The README is the front door: its configuration table must name every setting."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from analyzer.settings import AnalyzerSettings
from flokraft_core.settings import CoreSettings
from flokraft_devstack.settings import REPO_ROOT
from query_api.settings import QueryApiSettings
from rerun_api.settings import RerunApiSettings

README = (REPO_ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "settings_class", [CoreSettings, QueryApiSettings, RerunApiSettings, AnalyzerSettings]
)
def test_every_setting_is_documented(settings_class: type[BaseSettings]) -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README))
    missing = {name.upper() for name in settings_class.model_fields} - documented
    assert not missing, f"README's configuration table lacks {sorted(missing)}"


def test_readme_names_the_two_commands() -> None:
    assert "make dev" in README
    assert "make test" in README
