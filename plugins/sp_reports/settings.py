"""Every ``SP_REPORTS_*`` setting, read in one place (the README's "Settings" table lists them).

Read when asked, not at import, so a test or a process that changes its environment sees the change. A value
that cannot be used fails with the variable's name, never with a bare ``ValueError`` from deep inside a task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The registry shipped inside the package: found the same way by an editable install, a wheel and the image.
PACKAGED_REGISTRY = Path(__file__).resolve().parent / "report_types.yaml"


# The connection a single-seller deployment has always used (the hook's default).
DEFAULT_ACCOUNT = "selling_partner_default"


class SettingsError(ValueError):
    """An ``SP_REPORTS_*`` variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    lake: str
    """``SP_REPORTS_LAKE``: the lake root, a folder or ``s3://bucket/prefix``."""
    aws_conn_id: str
    """``SP_REPORTS_AWS_CONN_ID``: the Airflow AWS connection of an ``s3://`` lake."""
    registry: Path
    """``SP_REPORTS_REGISTRY``: the report-type registry."""
    poll_interval: float
    """``SP_REPORTS_POLL_INTERVAL``: seconds between getReport checks of a report DAG's wait."""
    schedules_enabled: bool
    """``SP_REPORTS_DISABLE_SCHEDULES`` unset or false: DAGs run on their schedules."""
    notifications_queue_url: str | None
    """``SP_REPORTS_NOTIFICATIONS_QUEUE_URL``: the SQS queue Amazon notifies; unset means no notification DAG."""
    sqs_aws_conn_id: str
    """``SP_REPORTS_SQS_AWS_CONN_ID``: the Airflow AWS connection that reads that queue."""
    notifications_poll_seconds: int
    """``SP_REPORTS_NOTIFICATIONS_POLL_SECONDS``: the notification DAG's SQS long-poll wait."""
    accounts: tuple[str, ...]
    """``SP_REPORTS_ACCOUNTS``: the ``selling_partner`` connections (comma-separated ids) the DAGs serve."""
    quota_redis_url: str | None
    """``SP_REPORTS_QUOTA_REDIS_URL``: the Redis holding the SP-API quota buckets the whole fleet shares; unset: the
    Celery broker's when that is Redis; ``none`` or no Redis: the file store below."""
    quota_dir: Path | None
    """``SP_REPORTS_QUOTA_DIR``: the folder of the quota buckets every process of this machine shares (one small file
    each), used when there is no Redis store; unset: ``sp_reports/quota`` in Airflow's home; ``none``: each process
    keeps its own buckets."""
    parse_queue: str | None
    """``SP_REPORTS_PARSE_QUEUE``: the executor queue (a Celery queue) of ``parse_document``, the CPU- and
    memory-heavy step, e.g. to run it on bigger workers; unset means Airflow's default queue."""


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``, else ``~/airflow``, as Airflow itself decides: the same folder for the DAGs, the tasks and
    the ``sp-reports`` command, whatever their working directory."""
    return Path(os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser()))


def default_lake_root() -> str:
    """``lake/`` in Airflow's home."""
    return str(airflow_home() / "lake")


def settings() -> Settings:
    return Settings(
        lake=_text("SP_REPORTS_LAKE") or default_lake_root(),
        aws_conn_id=_text("SP_REPORTS_AWS_CONN_ID") or "aws_default",
        registry=Path(_text("SP_REPORTS_REGISTRY") or PACKAGED_REGISTRY),
        poll_interval=_number("SP_REPORTS_POLL_INTERVAL", 30.0),
        schedules_enabled=not _flag("SP_REPORTS_DISABLE_SCHEDULES"),
        notifications_queue_url=_text("SP_REPORTS_NOTIFICATIONS_QUEUE_URL"),
        sqs_aws_conn_id=_text("SP_REPORTS_SQS_AWS_CONN_ID") or "aws_default",
        notifications_poll_seconds=int(_number("SP_REPORTS_NOTIFICATIONS_POLL_SECONDS", 20, maximum=20)),
        accounts=_names("SP_REPORTS_ACCOUNTS", DEFAULT_ACCOUNT),
        quota_redis_url=_quota_redis_url(),
        quota_dir=_quota_dir(),
        parse_queue=_text("SP_REPORTS_PARSE_QUEUE"),
    )


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _quota_redis_url() -> str | None:
    name = "SP_REPORTS_QUOTA_REDIS_URL"
    text = _text(name)
    if text is None:
        # The distributed topology's Redis (docker-compose.yaml): the Celery broker, when it is one.
        broker = _text("AIRFLOW__CELERY__BROKER_URL") or ""
        return broker if broker.startswith(("redis://", "rediss://")) else None
    if text.lower() == "none":
        return None
    if not text.startswith(REDIS_SCHEMES):
        # The value is not repeated: it may hold a password.
        raise SettingsError(f"{name} must be a redis://, rediss:// or unix:// URL, or none")
    return text


def _quota_dir() -> Path | None:
    text = _text("SP_REPORTS_QUOTA_DIR")
    if text is None:
        return airflow_home() / "sp_reports" / "quota"
    return None if text.lower() == "none" else Path(text).expanduser()


def _text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _names(name: str, default: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in (_text(name) or default).split(",") if n.strip()))
    if not names:
        raise SettingsError(f"{name} must name at least one connection id")
    return names


def _number(name: str, default: float, maximum: float | None = None) -> float:
    text = _text(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number") from None
    if value <= 0 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum:g}" if maximum is not None else ""
        raise SettingsError(f"{name}={text!r} must be greater than 0{limit}")
    return value


def _flag(name: str) -> bool:
    text = (_text(name) or "").lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={text!r} must be 1/true/yes or 0/false/no")
