"""``nudge score``: what cannot be done is said in one line."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli import app

runner = CliRunner()


def test_score_refuses_an_as_of_that_is_not_a_moment() -> None:
    result = runner.invoke(app, ["score", "--as-of", "last tuesday", "--db", "sqlite:///x.db"])

    assert result.exit_code == 2
    assert "--as-of" in result.output
    assert "ISO 8601" in result.output
