"""The README documents every setting and every command, so the docs cannot drift."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from app import cli, config
from tasks.scanner_config import SCANNER_SETTINGS
from tasks.settings import ORCHESTRATOR_SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted({*config.DEFAULTS, *ORCHESTRATOR_SETTINGS, *SCANNER_SETTINGS}))
def test_every_setting_is_in_the_configuration_table(name):
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("command", ["up", "web", "db upgrade", "token create", "user create"])
def test_every_command_is_documented(command):
    assert f"`vmclarity {command}" in README
    result = CliRunner().invoke(cli.main, command.split() + ["--help"])
    assert result.exit_code == 0
