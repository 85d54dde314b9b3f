"""What every registry servicer holds: the registry's context."""

from __future__ import annotations

from registry.context import RegistryContext


class ServicerBase:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx
