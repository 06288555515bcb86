"""The emulator's mutable world: config, accounts (a store and quotas per seller and region), tokens,
stats and the fault dice."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .auth import TokenStore
from .config import AccountKey, EmulatorConfig
from .notifications_api import NotificationState
from .quotas import Quotas
from .state import Report, Store
from .stats import Stats
from .tokens import RestrictedTokenStore


@dataclass
class Account:
    """One seller in one region (`key`; None = the default seller): its own reports, schedules,
    documents and report-id space, and its own usage-plan buckets."""

    key: AccountKey
    store: Store
    quotas: Quotas


class Emulator:
    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.initial_config = config
        self.config = config
        self.clock = clock
        self.tokens = TokenStore()
        self.restricted_tokens = RestrictedTokenStore()
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
            self.accounts: dict[AccountKey, Account] = {}
            for authorisation in self.config.authorisations():
                self.account(authorisation.key)  # starts its settlement cycle now, if on
            self.notifications = NotificationState(seed=self.config.seed)
            # Grantless operations (notification destinations) are metered per application.
            self.app_quotas = Quotas(now)
            self.stats.reset()
            self.faults = random.Random(f"{self.config.seed}:faults")
            self.document_cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
            self.generation += 1

    def account(self, key: AccountKey) -> Account:
        """The account of `key`, created on first use (caller holds the lock). Every store of a region starts
        from the same seed, so two sellers' first reports there get the same reportId."""
        account = self.accounts.get(key)
        if account is None:
            now = self.clock()
            if key is None:
                store = Store(seed=self.config.seed)
            else:
                store = Store(seed=self.config.seed, seller_id=key[0], owner=f"{key[0]}.{key[1]}", region=key[1])
            account = self.accounts[key] = Account(key, store, Quotas(now))
            self._run_settlements(account, now)
        return account

    @property
    def default_account(self) -> Account:
        """The first authorisation's account (the default seller's when no sellers are configured)."""
        return self.account(self.config.authorisations()[0].key)

    @property
    def store(self) -> Store:
        """The default account's store."""
        return self.default_account.store

    @property
    def quotas(self) -> Quotas:
        """The default account's buckets."""
        return self.default_account.quotas

    def all_quotas(self) -> list[Quotas]:
        return [self.app_quotas, *(a.quotas for a in self.accounts.values())]

    def find_document(self, document_id: str) -> Report | None:
        """The report a document id belongs to, whoever owns it (pre-signed URLs are not per seller)."""
        for account in list(self.accounts.values()):  # the download route does not hold the lock
            report_id = account.store.documents.get(document_id)
            if report_id is not None:
                return account.store.reports.get(report_id)
        return None

    def update_config(self, changes: dict[str, Any]) -> EmulatorConfig:
        with self.lock:
            new = self.config.updated(changes)
            # Tokens earned so far were earned at the old speed.
            for quotas in self.all_quotas():
                quotas.settle(self.clock(), self.config.speed)
            if (new.settlement_period_seconds, new.speed) != (self.config.settlement_period_seconds, self.config.speed):
                for account in self.accounts.values():
                    account.store.next_settlement = None  # a new cycle starts from now
            self.config = new
            for authorisation in new.authorisations():
                self.account(authorisation.key)  # sellers added at run time
            for account in list(self.accounts.values()):
                self._run_settlements(account, self.clock())
            return new

    def advance(self, now: float) -> None:
        """Create the reports schedules and settlements owe by `now` (caller holds the lock)."""
        for account in list(self.accounts.values()):
            account.store.run_schedules(self.config, now)
            self._run_settlements(account, now)

    def _run_settlements(self, account: Account, now: float) -> None:
        """Settlements per authorisation, for its marketplaces (the default seller's: the configured
        settlement_marketplace_ids); an account whose authorisation was removed gets none."""
        if account.key is None:
            if self.config.sellers:
                return
            account.store.run_settlements(self.config, now)
            return
        for authorisation in self.config.authorisations():
            if authorisation.key == account.key:
                account.store.run_settlements(self.config, now, list(authorisation.marketplace_ids))
                return

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
