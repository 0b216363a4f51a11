"""A background writer that changes records while clients page (C01, C13).

It goes through :meth:`Instance.update`, :meth:`Instance.delete` and
:meth:`Instance.insert`, so ``sys_updated_on``, ``sys_mod_count`` and the
``sys_audit`` DELETED rows come out exactly as for API writes.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING

from connector.emulator.storage import quote_ident

if TYPE_CHECKING:
    from connector.emulator.instance import Instance

LOG = logging.getLogger(__name__)

TEXT_FIELDS = ("short_description", "notes", "name", "title", "question")


class Mutator(threading.Thread):
    """Changes one random record every ``1 / rate`` seconds until stopped."""

    def __init__(
        self,
        instance: Instance,
        *,
        rate: float,
        tables: list[str],
        seed: int,
        delete_ratio: float,
        insert_ratio: float,
    ) -> None:
        super().__init__(name="emulator-mutator", daemon=True)
        self.instance = instance
        self.interval = 1.0 / rate if rate > 0 else 1.0
        self.tables = tables
        self.rng = random.Random(seed)
        self.delete_ratio = delete_ratio
        self.insert_ratio = insert_ratio
        self._stop_event = threading.Event()
        self.updates = self.deletes = self.inserts = 0

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.step()
            except Exception:  # keep mutating whatever happens
                LOG.exception("Mutator step failed")

    def step(self) -> None:
        """One change: delete, insert a copy, or update a text field."""
        table = self.rng.choice(self.tables)
        sys_id = self._random_sys_id(table)
        if sys_id is None:
            return
        dice = self.rng.random()
        if dice < self.delete_ratio:
            self.instance.delete(table, sys_id, user="system")
            self.deletes += 1
        elif dice < self.delete_ratio + self.insert_ratio:
            self._insert_copy(table, sys_id)
        else:
            self._touch(table, sys_id)

    def _random_sys_id(self, table: str) -> str | None:
        store, name = self.instance.store, quote_ident(table)
        top = store.query(f"SELECT MAX(rowid) FROM {name}")[0][0]
        if not top:
            return None
        found = store.query(
            f"SELECT sys_id FROM {name} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
            (self.rng.randint(1, top),),
        )
        return found[0][0] if found else None

    def _insert_copy(self, table: str, sys_id: str) -> None:
        source = self.instance.get(table, sys_id) or {}
        values = {k: v for k, v in source.items() if k not in ("number", "sys_id")}
        self.instance.insert(table, values, user="system")
        self.inserts += 1

    def _touch(self, table: str, sys_id: str) -> None:
        fields = self.instance.registry.fields(table)
        name = next((f for f in TEXT_FIELDS if f in fields), None)
        values = {name: f"mutated {self.rng.randint(0, 10**6)}"} if name else {}
        self.instance.update(table, sys_id, values, user="system")
        self.updates += 1
