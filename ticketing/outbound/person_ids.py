"""The Person IDs of incidents, as the mail about them names them, read once a transaction.

Composing after a commit needs them twice: for the acknowledgements (their subject
names the incident's Person IDs) and for the desk copies of the same incidents (their
head block does).  One ``PersonIds`` serves both, so each incident's rows are read once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from ticketing.store.models import IncidentConsumer

__all__ = ["PersonIds"]


class PersonIds:
    """The Person IDs of each incident, in the order they were found, read from
    ``session`` the first time the incident is asked for and remembered after."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[int, list[str]] = {}

    def of(self, incident_ids: Iterable[int | None]) -> dict[int, list[str]]:
        """Each of ``incident_ids`` (``None`` left out) with its Person IDs."""
        wanted = {i for i in incident_ids if i is not None}
        self._read(wanted - self._known.keys())
        return {i: self._known[i] for i in wanted}

    def _read(self, incident_ids: set[int]) -> None:
        if not incident_ids:
            return
        query = (
            select(IncidentConsumer.incident_id, IncidentConsumer.person_id)
            .where(col(IncidentConsumer.incident_id).in_(incident_ids))
            .order_by(col(IncidentConsumer.id))
        )
        for incident_id in incident_ids:
            self._known[incident_id] = []
        for incident_id, person_id in self._session.exec(query):
            self._known[incident_id].append(person_id)
