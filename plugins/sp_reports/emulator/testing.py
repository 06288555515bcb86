"""Run the emulator inside a test: `with running_emulator(speed=100) as emu: ...`."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from .app import create_app
from .config import REGIONS, Authorisation, EmulatorConfig

STARTUP_TIMEOUT_SECONDS = 10.0


class EmulatorCredentials(dict[str, str]):
    """client_id / client_secret / refresh_token of the first authorisation (a plain dict, as
    ``emu.credentials`` always was); call it to get another seller's: ``emu.credentials("A2SELLER", "EU")``
    or ``emu.credentials(refresh_token=...)``."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        super().__init__(self._for(config.authorisations()[0]))

    def __call__(
        self, seller_id: str | None = None, region: str | None = None, refresh_token: str | None = None
    ) -> dict[str, str]:
        return self._for(authorisation(self._config, seller_id, region, refresh_token))

    def _for(self, granted: Authorisation) -> dict[str, str]:
        c = self._config
        return {"client_id": c.client_id, "client_secret": c.client_secret, "refresh_token": granted.refresh_token}


def authorisation(
    config: EmulatorConfig, seller_id: str | None = None, region: str | None = None, refresh_token: str | None = None
) -> Authorisation:
    """The one authorisation of `config` matching the arguments (none given: the first)."""
    region = region.upper() if region else None
    matches = [
        a for a in config.authorisations()
        if (seller_id is None or a.seller_id == seller_id)
        and (region is None or a.region in (None, region))
        and (refresh_token is None or a.refresh_token == refresh_token)
    ]  # fmt: skip
    if seller_id is None and region is None and refresh_token is None:
        matches = matches[:1]
    if len(matches) != 1:
        raise ValueError(f"no single authorisation for seller_id={seller_id!r} region={region!r}: {len(matches)} match")
    return matches[0]


class RunningEmulator:
    """Handle to an emulator served on 127.0.0.1; `config`, `stats` and `reset` call its control API."""

    def __init__(self, base_url: str, config: EmulatorConfig) -> None:
        self.base_url = base_url
        self.lwa_url = base_url + "/auth/o2/token"
        self.initial_config = config
        self._http = httpx.Client(base_url=base_url, timeout=10.0)

    def endpoint(self, region: str | None = None) -> str:
        """The SP-API base URL: `base_url` (any region) for None, else the regional endpoint
        (``{base_url}/na``, ``/eu``, ``/fe``) that refuses other regions' tokens and marketplaces."""
        if region is None:
            return self.base_url
        if region.upper() not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
        return f"{self.base_url}/{region.lower()}"

    @property
    def credentials(self) -> EmulatorCredentials:
        """client_id / client_secret / refresh_token the emulator accepts (as started): the first
        authorisation's; ``emu.credentials(seller_id, region)`` for another's."""
        return EmulatorCredentials(self.initial_config)

    def config(self, **changes: Any) -> dict[str, Any]:
        """Apply `changes` (none: just read) and return the full config."""
        response = (
            self._http.post("/_emulator/config", json=changes) if changes else self._http.get("/_emulator/config")
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        response = self._http.get("/_emulator/stats")
        response.raise_for_status()
        return response.json()

    def reset(self, config: bool = False) -> None:
        """Clear reports, schedules, destinations, subscriptions, quotas and stats; `config=True` also
        restores the starting config."""
        self._http.post("/_emulator/reset", json={"config": config}).raise_for_status()

    def access_token(
        self, seller_id: str | None = None, region: str | None = None, refresh_token: str | None = None
    ) -> str:
        """A fresh access token from the LWA endpoint (refresh_token grant), for the first
        authorisation or the one named (a seller, in a region, or by its refresh token)."""
        return self._token({"grant_type": "refresh_token", **self.credentials(seller_id, region, refresh_token)})

    def grantless_token(self, scope: str = "sellingpartnerapi::notifications") -> str:
        """A fresh grantless access token (client_credentials grant), e.g. for createDestination."""
        creds = self.credentials
        return self._token({"grant_type": "client_credentials", "scope": scope, "client_id": creds["client_id"],
                            "client_secret": creds["client_secret"]})  # fmt: skip

    def _token(self, form: dict[str, str]) -> str:
        response = self._http.post("/auth/o2/token", data=form)
        response.raise_for_status()
        return response.json()["access_token"]

    def close(self) -> None:
        self._http.close()


class SqsQueue:
    """A throwaway SQS queue (e.g. on moto_server) to point a notification destination at."""

    def __init__(self, client: Any, url: str, arn: str) -> None:
        self.client, self.url, self.arn = client, url, arn

    def receive(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Message bodies (parsed JSON), deleted once read, until `count` arrived and a further
        look finds no more, or `timeout` passed; so extra (duplicate) messages show up too."""
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = 1 if len(bodies) < count else 0
            response = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            messages = response.get("Messages", [])
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            if len(bodies) >= count and not messages:
                break
        return bodies


@contextlib.contextmanager
def sqs_queue(endpoint_url: str, region: str = "us-east-1") -> Iterator[SqsQueue]:
    """Create a uniquely named queue at `endpoint_url` (dummy credentials), delete it afterwards."""
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    url = client.create_queue(QueueName=f"sp-reports-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        yield SqsQueue(client, url, arn)
    finally:
        client.delete_queue(QueueUrl=url)


@contextlib.contextmanager
def running_emulator(**config_overrides: Any) -> Iterator[RunningEmulator]:
    """Serve an emulator with these EmulatorConfig fields, e.g. ``running_emulator(speed=100,
    sellers=[{"seller_id": ..., "region": "NA", "refresh_token": ..., "marketplace_ids": [...]}])``."""
    config = EmulatorConfig(**config_overrides)
    # Binding here (port 0) gives a free port with no race against other processes.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sp-api-emulator-{port}", daemon=True
    )
    thread.start()
    handle = RunningEmulator(f"http://127.0.0.1:{port}", config)
    # lifespan is off, so the ticker (schedules, settlements, notifications) is started here.
    app.state.emulator.start_ticker()
    try:
        _wait_until_started(server, thread)
        yield handle
    finally:
        app.state.emulator.stop_ticker()
        handle.close()
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the SP-API emulator exited during startup")
        if time.monotonic() > deadline:
            raise RuntimeError("the SP-API emulator did not start in time")
        time.sleep(0.01)
