"""A process that owns render workers is killed (SIGKILL): its workers go with it, they
never live on as orphans holding memory; and a worker left spinning is stopped by its own
CPU limit even if its parent cannot stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.support.waiting import eventually

OWNER = """
import asyncio, os, sys
from shared.adapters.rendering import ProcessRenderer
from shared.domain.rendering import SmsTemplate

SLOW = (
    "{% set s = 'x' * 1000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
)

async def main():
    pool = ProcessRenderer(timeout=600.0, workers=1)
    await pool.message(SmsTemplate("warm"), {})
    (worker,) = pool._workers
    slow = asyncio.create_task(pool.message(SmsTemplate(SLOW), {}))
    while not pool.rendering:
        await asyncio.sleep(0.01)
    with open(sys.argv[1] + ".part", "w") as out:  # busy with minutes of work now
        out.write(str(worker.process.pid))
    os.replace(sys.argv[1] + ".part", sys.argv[1])
    await slow  # until killed

asyncio.run(main())
"""


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie its new parent may reap)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status or "\nState:\tX" in status


async def test_killing_the_owner_mid_render_leaves_no_render_worker(tmp_path: Path) -> None:
    # Seen: a worker busy with a long render kept running after its owner was killed.
    said = tmp_path / "worker.pid"
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OWNER,
        str(said),
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    worker = 0
    try:

        async def rendering() -> bool:
            return said.exists()

        await eventually(rendering, timeout=60.0, what="the owner's slow render to start")
        worker = int(said.read_text())
        assert not _gone(worker)
        owner.send_signal(signal.SIGKILL)
        await owner.wait()

        async def worker_gone() -> bool:
            return _gone(worker)

        await eventually(
            worker_gone, timeout=20.0, what=f"render worker {worker} to go with its owner"
        )
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        if worker and not _gone(worker):  # the test's own grandchild, left by a failure
            os.kill(worker, signal.SIGKILL)
