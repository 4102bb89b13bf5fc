"""SMS and push into a folder: one JSON file per message, named by its key.

The demo's phone: what would have been sent, readable after the run. Like a
real provider, it delivers once per idempotency key: a message sent again
finds its file and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shared.ports.providers import PushMessage, SendReceipt, SmsMessage

__all__ = ["PushFolderProvider", "SmsFolderProvider"]


class _Folder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def _keep(self, key: str, record: dict[str, object]) -> SendReceipt:
        path = self.folder / f"{key}.json"
        await asyncio.to_thread(self._write, path, record)
        return SendReceipt(provider_message_id=path.stem)

    def _write(self, path: Path, record: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as file:
                json.dump(record, file, ensure_ascii=False, indent=1)
        except FileExistsError:
            pass  # sent before: once per key


class SmsFolderProvider(_Folder):
    def __init__(self, folder: Path, sender: str) -> None:
        super().__init__(folder)
        self.sender = sender

    async def send(self, message: SmsMessage) -> SendReceipt:
        record: dict[str, object] = {
            "to": message.to,
            "from": message.sender or self.sender,
            "text": message.text,
            "idempotency_key": message.idempotency_key,
        }
        return await self._keep(message.idempotency_key, record)


class PushFolderProvider(_Folder):
    async def send(self, message: PushMessage) -> SendReceipt:
        content = message.content
        record: dict[str, object] = {
            "token": message.token,
            "title": content.title,
            "body": content.body,
            "deep_link": content.deep_link,
            "data": dict(content.data),
            "idempotency_key": message.idempotency_key,
        }
        return await self._keep(message.idempotency_key, record)
