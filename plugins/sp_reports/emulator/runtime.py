"""The emulator's mutable world: config, stores, quotas, tokens, stats and the fault dice."""

from __future__ import annotations

import random
import secrets
import time
from collections import OrderedDict
from typing import Any, Callable

from .auth import TokenStore
from .config import EmulatorConfig
from .quotas import Quotas
from .state import Store
from .stats import Stats


class Emulator:
    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.initial_config = config
        self.config = config
        self.clock = clock
        self.tokens = TokenStore()
        # Pre-signed URLs only need to be unforgeable within one emulator run.
        self.signing_key = secrets.token_bytes(32)
        self.stats = Stats()
        self.reset()

    def reset(self, restore_config: bool = False) -> None:
        """Forget reports, schedules, documents, quotas and stats; issued access tokens stay valid."""
        if restore_config:
            self.config = self.initial_config
        now = self.clock()
        self.store = Store(seed=self.config.seed)
        self.quotas = Quotas(now)
        self.stats.reset()
        self.faults = random.Random(f"{self.config.seed}:faults")
        self.document_cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()

    def update_config(self, changes: dict[str, Any]) -> EmulatorConfig:
        new = self.config.updated(changes)
        # Tokens earned so far were earned at the old speed.
        self.quotas.settle(self.clock(), self.config.speed)
        self.config = new
        return new

    def roll(self, probability: float) -> bool:
        """A seeded coin flip for injected faults; never consumes randomness when disabled."""
        return probability > 0 and self.faults.random() < probability
