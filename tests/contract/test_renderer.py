"""The renderer port, once for each renderer: it renders what the domain renders, refuses
what the domain refuses; the worker pool also stops a render at its time limit, with
the event loop free meanwhile, and a stopped worker never answers someone else."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.adapters.rendering import InlineRenderer, ProcessRenderer
from shared.domain.campaigns import BUILTIN_SMS_TEMPLATES, BUILTIN_TEMPLATES, message_context
from shared.domain.message_templates import TemplateContentError, sample_trigger
from shared.domain.rendering import (
    RenderedEmail,
    RenderedSms,
    RenderError,
    RenderLimits,
    RenderTooCostly,
    SmsTemplate,
    render_email,
)
from shared.domain.sample_buyer import SAMPLE_PROFILE
from shared.errors import RendererUnavailable
from shared.ports.rendering import Renderer
from tests.support.waiting import eventually

LIMITS = RenderLimits(email=64 * 1024, sms=1024, push=2048)
SLOW = (
    "{% set s = 'x' * 1000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}"
)
"""A billion loop steps: refused by no up-front rule, minutes of work."""
CONTEXT = message_context(SAMPLE_PROFILE, unsubscribe_url="https://unsubscribe.example/x")


async def _rendering(pool: ProcessRenderer) -> bool:
    return pool.rendering > 0


async def pool_free_work(n: int) -> int:
    """Work for the event loop: it finishes only if the loop turns."""
    await asyncio.sleep(0.001)
    return n


@pytest.fixture(params=["inline", "process"])
async def renderer(request: pytest.FixtureRequest) -> AsyncIterator[Renderer]:
    found: Renderer = (
        InlineRenderer(LIMITS)
        if request.param == "inline"
        else ProcessRenderer(limits=LIMITS, timeout=10.0, workers=2)
    )
    yield found
    await found.aclose()


@pytest.fixture
async def pool() -> AsyncIterator[ProcessRenderer]:
    found = ProcessRenderer(limits=LIMITS, timeout=0.5, workers=1)
    yield found
    await found.aclose()


async def test_a_ready_made_email_renders_as_in_the_domain(renderer: Renderer) -> None:
    template = BUILTIN_TEMPLATES["win-back-email"]
    rendered = await renderer.message(template, CONTEXT)
    assert isinstance(rendered, RenderedEmail)
    assert rendered == render_email(template, CONTEXT)


async def test_an_sms_renders_with_its_segment_limit(renderer: Renderer) -> None:
    template = next(iter(BUILTIN_SMS_TEMPLATES.values()))
    rendered = await renderer.message(template, CONTEXT, max_segments=3)
    assert isinstance(rendered, RenderedSms)
    assert rendered.text
    with pytest.raises(RenderError, match="segment"):
        await renderer.message(SmsTemplate("{{ 'ж' * 300 }}"), {}, max_segments=2)


async def test_parts_are_checked_then_rendered(renderer: Renderer) -> None:
    context = {**CONTEXT, "trigger": sample_trigger()}
    parts = await renderer.parts("sms", {"text": "{{ trigger.sku }}: back in stock"}, context)
    assert parts == {"text": "[sku]: back in stock", "segments": 1}
    with pytest.raises(TemplateContentError) as refused:
        await renderer.parts("sms", {"text": "{{ x.__class__ }}"}, context)
    assert refused.value.pointer == "/content/text"
    with pytest.raises(RenderError) as failed:
        await renderer.parts("sms", {"text": "a\n{{ coupon.code }}"}, context)
    assert (failed.value.part, failed.value.line) == ("text", 2)


async def test_output_over_the_renderers_limit_is_refused(renderer: Renderer) -> None:
    with pytest.raises(RenderTooCostly) as refused:
        await renderer.message(SmsTemplate("{% for i in range(600) %}{{ i }}{% endfor %}"), {})
    assert refused.value.limit == "output"
    assert "1024 bytes" in refused.value.message


async def test_a_render_past_the_time_limit_is_stopped_and_the_next_one_renders(
    pool: ProcessRenderer,
) -> None:
    with pytest.raises(RenderTooCostly) as refused:
        await pool.message(SmsTemplate(SLOW), {})
    assert refused.value.limit == "time"
    assert "0.5 s" in refused.value.message
    again = await pool.message(SmsTemplate("Hello {{ name }}"), {"name": "Anna"})
    assert isinstance(again, RenderedSms)
    assert again.text == "Hello Anna"


async def test_the_event_loop_is_free_while_a_slow_render_runs(pool: ProcessRenderer) -> None:
    pool.timeout = 30.0
    slow = asyncio.create_task(pool.message(SmsTemplate(SLOW), {}))
    await eventually(lambda: _rendering(pool), what="the slow render to start")
    others = [asyncio.create_task(pool_free_work(n)) for n in range(10)]
    assert await asyncio.gather(*others) == list(range(10))  # done while the render runs
    assert not slow.done()
    assert pool.rendering == 1
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_a_render_given_up_never_answers_the_next_one(pool: ProcessRenderer) -> None:
    pool.timeout = 30.0
    first = asyncio.create_task(pool.message(SmsTemplate("{{ 'first' }}" + SLOW), {}))
    await eventually(lambda: _rendering(pool), what="the first render to start")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = await pool.message(SmsTemplate("second"), {})
    assert isinstance(second, RenderedSms)
    assert second.text == "second"


async def test_a_render_that_wants_too_much_memory_is_refused() -> None:
    small = ProcessRenderer(limits=LIMITS, timeout=30.0, workers=1, memory_mb=64)
    hog = (
        "{% set a = 'x' * 1000 %}{% set b %}{% for i in range(1000) %}{{ a }}{% endfor %}"
        "{% endset %}{% set c %}{% for i in range(1000) %}{{ b }}{% endfor %}{% endset %}"
        "{{ c|length }}"
    )  # a gigabyte held in a variable, never output
    try:
        with pytest.raises(RenderTooCostly) as refused:
            await small.message(SmsTemplate(hog), {})
        assert refused.value.limit == "output"
        assert "memory" in refused.value.message
        after = await small.message(SmsTemplate("ok"), {})
        assert isinstance(after, RenderedSms)
        assert after.text == "ok"
    finally:
        await small.aclose()


async def test_a_worker_that_died_idle_is_replaced(pool: ProcessRenderer) -> None:
    await pool.message(SmsTemplate("warm"), {})
    for worker in list(pool._workers):
        worker.process.kill()
        worker.process.wait()
    rendered = await pool.message(SmsTemplate("after"), {})
    assert isinstance(rendered, RenderedSms)
    assert rendered.text == "after"


async def test_workers_that_cannot_start_are_a_renderer_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen: RuntimeError("a render worker did not start") escaped the dispatcher's compose.
    broken = ProcessRenderer(limits=LIMITS, timeout=1.0, workers=1, start_timeout=10.0)
    monkeypatch.setattr("shared.adapters.rendering.sys.executable", "/bin/false")
    try:
        with pytest.raises(RendererUnavailable):
            await broken.message(SmsTemplate("hi"), {})
        monkeypatch.undo()
        again = await broken.message(SmsTemplate("hi"), {})  # started once it can
        assert isinstance(again, RenderedSms)
    finally:
        await broken.aclose()
    assert not broken._workers


async def test_a_worker_over_its_processor_time_is_stopped_by_its_own_limit() -> None:
    # The backstop if the serving process could not kill it: RLIMIT_CPU, per render.
    spinning = ProcessRenderer(limits=LIMITS, timeout=60.0, workers=1, cpu_seconds=1)
    try:
        with pytest.raises(RenderTooCostly) as refused:
            await spinning.message(SmsTemplate(SLOW), {})
        assert refused.value.limit == "time"
        assert "processor" in refused.value.message
        for _ in range(3):  # each render gets its own second: a worker's life is not capped
            after = await spinning.message(SmsTemplate("{{ 'ok' }}"), {})
            assert isinstance(after, RenderedSms)
    finally:
        await spinning.aclose()


def _our_workers() -> set[int]:
    """Render worker processes this test process started (and not yet reaped)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == os.getpid() and b"render_worker" in cmdline and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


async def test_a_render_cancelled_while_its_worker_starts_leaves_the_worker_to_the_pool() -> None:
    # Seen: a cancel during the start left a worker no one knew of (never killed).
    before = await asyncio.to_thread(_our_workers)
    pool = ProcessRenderer(limits=LIMITS, timeout=10.0, workers=1)
    try:
        first = asyncio.create_task(pool.message(SmsTemplate("hi"), {}))
        await asyncio.sleep(0)  # the start is under way
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first

        async def adopted() -> bool:
            return bool(pool._idle)

        await eventually(adopted, what="the started worker to join the pool")
        started = await asyncio.to_thread(_our_workers) - before
        assert started == {w.process.pid for w in pool._workers}
        again = await pool.message(SmsTemplate("again"), {})
        assert isinstance(again, RenderedSms)
        assert {w.process.pid for w in pool._workers} == started  # the adopted one served
    finally:
        await pool.aclose()

    async def none_left() -> bool:
        return not (await asyncio.to_thread(_our_workers) - before)

    await eventually(none_left, what="every worker of the pool to be gone")


async def test_a_pool_closed_while_a_worker_starts_leaves_no_worker() -> None:
    before = await asyncio.to_thread(_our_workers)
    pool = ProcessRenderer(limits=LIMITS, timeout=10.0, workers=1)
    first = asyncio.create_task(pool.message(SmsTemplate("hi"), {}))
    await asyncio.sleep(0)  # the start is under way
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await pool.aclose()

    async def none_left() -> bool:
        return not (await asyncio.to_thread(_our_workers) - before)

    await eventually(none_left, timeout=5.0, what="every worker of the pool to be gone")
