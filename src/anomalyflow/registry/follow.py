"""Which version a running server should serve while the registry changes under it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from anomalyflow.errors import Refusal
from anomalyflow.registry.errors import RegistryError
from anomalyflow.registry.store import Registry

Model = TypeVar("Model")


class ProductionFollower:
    """Follows production for a server: one ``stat`` per request, one read per change.

    A log that fails verification switches nothing: the server keeps the version it
    serves, the last production it verified, and the refusal is logged once per change
    of the file and kept in :attr:`refusal` until a later change verifies again. So does
    a new production whose files fail verification (:meth:`switch`).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.refusal: str | None = None
        # Noted before the caller first reads the state, so no change slips between.
        self._seen = registry.log.signature()

    def changed(self) -> bool:
        """Whether the log was written since the last poll (a lock-free first look)."""
        return self.registry.log.signature() != self._seen

    def poll(self, serving: str) -> str | None:
        """The verified production to switch to from ``serving``, or None to keep it."""
        signature = self.registry.log.signature()
        if signature == self._seen:
            return None
        self._seen = signature
        try:
            production = self.registry.state().production
        except RegistryError as refusal:
            self.refusal = str(refusal)
            # Looked up here, not at import: BentoML's server set-up disables loggers
            # that exist before it configures logging.
            logging.getLogger(__name__).error("%s; still serving %s", refusal, serving)
            return None
        self.refusal = None
        return production if production not in (None, serving) else None

    def switch(self, serving: str, load: Callable[[str], Model]) -> tuple[str, Model] | None:
        """The new production and its model, loaded by ``load``; None to keep ``serving``.

        A production that ``load`` refuses (its files fail verification) is logged once
        and kept in :attr:`refusal`: the server keeps ``serving``, the last production it
        verified, until the log changes again (a rollback, or another promotion).
        """
        production = self.poll(serving)
        if production is None:
            return None
        try:
            return production, load(production)
        except Refusal as refusal:
            self.refusal = str(refusal)
            logging.getLogger(__name__).error("%s; still serving %s", refusal, serving)
            return None
