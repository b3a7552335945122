"""The registry's refusals: each says what was asked and why nothing was changed."""

from __future__ import annotations

from anomalyflow.errors import Refusal


class RegistryError(Refusal):
    """A registry request that cannot be carried out; nothing was changed."""


class RegistryConflict(RegistryError):
    """Someone else changed the registry between our look and our commit."""


class AuditLogTampered(RegistryError):
    """A line of the audit log is malformed, unknown, out of order or breaks the chain.

    The stages are a fold over the log, so the registry reads nothing from a log it
    cannot verify, and writes nothing to it either.
    """
