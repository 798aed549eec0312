"""The audit of refused keys: every refusal is counted, and written to the audit log at most
once a minute per source address and reason (with the first key id of that minute and how many
more were refused), so a flood of bad keys, made-up key ids included, cannot fill the database."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from capacity import metrics
from capacity.db import Database
from capacity.history.service import record_audit

log = logging.getLogger(__name__)


class FailureAudit:
    def __init__(self, *, db: Database, every_s: float = 60.0) -> None:
        self._db = db
        self._every_s = every_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    async def refused(self, *, reason: str, key_id: str | None, where: str, source: str | None) -> None:
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        who = (source or "unknown")[:200]
        mark = (who, reason)
        now = time.monotonic()
        last = self._last.get(mark)
        if last is not None and last[0] + self._every_s > now:
            self._last[mark] = (last[0], last[1] + 1)
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[mark] = (now, 0)
        detail = {"reason": reason, "where": where[:200], "source": who, "also_refused_since_last_entry": last[1] if last else 0}
        try:
            await record_audit(db=self._db, actor=who, action="auth.refused", target=where[:200], detail=detail, key_id=key_id)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("auth refusal not audited: %s", exc)
