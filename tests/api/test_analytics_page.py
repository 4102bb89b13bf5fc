"""The console's analytics page: the models checked on the shop's own history, as
``nudge models validate`` checks them, for any logged-in user: a form with the two dates,
the verdict, the tables and the calibration/holdout plot inline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from shared.adapters.store.scoring import SqlScoringBase
from shared.ports.scoring import ScoringRecord
from tests.api.console_fixtures import *  # noqa: F403 - the fixtures
from tests.conftest import T0
from tests.support.console_app import session_client
from tests.support.order_history import seed_order_history

HTML = {"Accept": "text/html"}


@pytest.fixture
async def analyst(app: FastAPI, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed_order_history(sqlite_url, 1500)
    async with session_client(app, "ivan") as client:
        yield client


def text_of(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.text)))


async def test_the_form_asks_for_the_calibration_and_holdout_ends(
    analyst: httpx.AsyncClient,
) -> None:
    page = await analyst.get("/analytics", headers=HTML)
    assert page.status_code == 200
    assert 'name="calibration_end"' in page.text
    assert 'name="holdout_end"' in page.text
    assert 'id="verdict"' not in page.text
    assert "The base has not been scored yet" in text_of(page)


async def test_the_page_says_how_the_scores_in_force_were_made_and_what_fell_back(
    analyst: httpx.AsyncClient, sqlite_url: str
) -> None:
    scoring = SqlScoringBase(create_async_engine(sqlite_url))
    await scoring.record_run(
        ScoringRecord(
            scored_at=T0,
            recorded_at=T0,
            buyers=60,
            scored=58,
            purchase_model="empirical rate (fallback)",
            spend_model="Gamma-Gamma",
            fallbacks=("purchases",),
            notes=("BG/NBD landed on degenerate parameters (r at its bound)",),
        )
    )
    await scoring.engine.dispose()
    page = await analyst.get("/analytics", headers=HTML)
    text = text_of(page).replace(" ,", ",")
    assert "58 of 60 buyers, purchases by empirical rate (fallback), spend by Gamma-Gamma" in text
    fallback = re.search(r'id="scoring-fallback">(.*?)</p>', page.text, re.S)
    assert fallback
    assert "fell back to the empirical purchases model" in fallback.group(1)
    assert "BG/NBD landed on degenerate parameters (r at its bound)" in text


async def test_the_report_shows_the_verdict_the_tables_and_the_plot(
    analyst: httpx.AsyncClient,
) -> None:
    page = await analyst.get(
        "/analytics",
        params={"calibration_end": "2025-06-23", "holdout_end": "2025-12-20"},
        headers=HTML,
    )
    assert page.status_code == 200, page.text
    text = text_of(page)
    assert "BG/NBD beats the naive baseline on held-out orders per buyer" in text
    choice = re.search(r'<p id="model-choice">(.*?)</p>', page.text, re.S)
    assert choice
    assert "wins on held-out orders per buyer" in choice.group(1)
    assert "MBG/NBD mean absolute error" in choice.group(1)
    assert "BG/NBD mean absolute error" in choice.group(1)
    assert "1,500 buyers predicted" in text
    assert "top decile of value found" in text
    groups = re.search(r'<table id="groups">(.*?)</table>', page.text, re.S)
    assert groups
    assert ">7+<" in groups.group(1)
    parameters = re.search(r'<table id="parameters">(.*?)</table>', page.text, re.S)
    assert parameters
    for name in ("r", "alpha", "a", "b", "p", "q", "v"):
        assert f"<td>{name}</td>" in parameters.group(1), name
    plot = re.search(r'<figure id="calibration-plot">\s*<svg (.*?)</svg>', page.text, re.S)
    assert plot
    assert plot.group(1).count("<polyline") == 3


async def test_a_calibration_end_too_early_to_fit_says_what_to_do(
    analyst: httpx.AsyncClient,
) -> None:
    page = await analyst.get("/analytics", params={"calibration_end": "2024-01-02"}, headers=HTML)
    assert page.status_code == 422
    assert "pick a later calibration end" in text_of(page)
    assert 'value="2024-01-02"' in page.text, "the form keeps what was asked"


async def test_a_date_that_is_not_one_is_a_problem_pointing_at_its_field(
    analyst: httpx.AsyncClient,
) -> None:
    answer = await analyst.get("/analytics", params={"calibration_end": "June"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"] == [{"pointer": "/calibration_end"}]
