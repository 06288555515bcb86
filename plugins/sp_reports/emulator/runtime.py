"""The emulator's mutable world: config, stores, quotas, tokens, stats and the fault dice."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .auth import TokenStore
from .config import EmulatorConfig
from .notifications_api import NotificationState
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
        # The ticker thread changes the stores too; every read-modify of them holds this lock. It is
        # never held across I/O, so the event loop waits at most for a few dict operations.
        self.lock = threading.RLock()
        self.generation = 0  # bumped by reset, so work gathered before a reset is not delivered after it
        self.ticker: Any = None
        self.reset()

    def reset(self, restore_config: bool = False) -> None:
        """Forget reports, schedules, documents, destinations, subscriptions, quotas and stats;
        issued access tokens stay valid."""
        with self.lock:
            if restore_config:
                self.config = self.initial_config
            now = self.clock()
            self.store = Store(seed=self.config.seed)
            self.store.run_settlements(self.config, now)  # starts the settlement cycle now, if on
            self.notifications = NotificationState(seed=self.config.seed)
            self.quotas = Quotas(now)
            self.stats.reset()
            self.faults = random.Random(f"{self.config.seed}:faults")
            self.document_cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
            self.generation += 1

    def update_config(self, changes: dict[str, Any]) -> EmulatorConfig:
        with self.lock:
            new = self.config.updated(changes)
            # Tokens earned so far were earned at the old speed.
            self.quotas.settle(self.clock(), self.config.speed)
            if (new.settlement_period_seconds, new.speed) != (self.config.settlement_period_seconds, self.config.speed):
                self.store.next_settlement = None  # a new cycle starts from now
            self.config = new
            self.store.run_settlements(new, self.clock())
            return new

    def advance(self, now: float) -> None:
        """Create the reports schedules and settlements owe by `now` (caller holds the lock)."""
        self.store.run_schedules(self.config, now)
        self.store.run_settlements(self.config, now)

    def roll(self, probability: float) -> bool:
        """A seeded coin flip for injected faults; never consumes randomness when disabled."""
        return probability > 0 and self.faults.random() < probability

    def start_ticker(self) -> None:
        """Start the background thread that runs schedules and settlements and publishes
        notifications without waiting for a request. Idempotent."""
        from .publisher import Ticker  # boto3 is imported only once a notification is sent

        with self.lock:
            if self.ticker is None:
                self.ticker = Ticker(self)
                self.ticker.start()

    def stop_ticker(self) -> None:
        with self.lock:
            ticker, self.ticker = self.ticker, None
        if ticker is not None:
            ticker.stop()
