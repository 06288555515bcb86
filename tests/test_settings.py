"""sp_reports.settings: every SP_REPORTS_* variable, its default, and a clear error for a value it can't use."""

from __future__ import annotations

from pathlib import Path

import pytest

from sp_reports.registry import load_registry
from sp_reports.settings import PACKAGED_REGISTRY, SettingsError, settings

NAMES = (
    "SP_REPORTS_LAKE", "SP_REPORTS_AWS_CONN_ID", "SP_REPORTS_REGISTRY", "SP_REPORTS_POLL_INTERVAL",
    "SP_REPORTS_DISABLE_SCHEDULES", "SP_REPORTS_NOTIFICATIONS_QUEUE_URL", "SP_REPORTS_SQS_AWS_CONN_ID",
    "SP_REPORTS_NOTIFICATIONS_POLL_SECONDS", "SP_REPORTS_ACCOUNTS", "SP_REPORTS_QUOTA_REDIS_URL",
    "AIRFLOW__CELERY__BROKER_URL", "SP_REPORTS_PARSE_QUEUE", "SP_REPORTS_QUOTA_DIR",
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    return monkeypatch


def test_defaults(env, tmp_path):
    s = settings()
    # One lake default for the DAGs, the tasks and the command line, whatever their working directory.
    assert s.lake == str(tmp_path / "airflow-home" / "lake")
    assert s.registry == PACKAGED_REGISTRY and s.poll_interval == 30.0 and s.schedules_enabled
    assert (s.aws_conn_id, s.sqs_aws_conn_id, s.notifications_queue_url) == ("aws_default", "aws_default", None)
    assert s.notifications_poll_seconds == 20
    assert s.accounts == ("selling_partner_default",)
    assert s.quota_redis_url is None  # no Redis anywhere: the machine's processes share quota files
    assert s.quota_dir == tmp_path / "airflow-home" / "sp_reports" / "quota"
    assert s.parse_queue is None  # Airflow's default queue


def test_the_lake_default_follows_airflow_home_or_its_own_default(env):
    env.delenv("AIRFLOW_HOME")
    assert settings().lake == str(Path("~/airflow/lake").expanduser())
    assert settings().quota_dir == Path("~/airflow/sp_reports/quota").expanduser()


def test_the_packaged_registry_is_package_data_and_loads():
    assert PACKAGED_REGISTRY.parent.name == "sp_reports" and PACKAGED_REGISTRY.is_file()
    assert "GET_MERCHANT_LISTINGS_ALL_DATA" in load_registry(PACKAGED_REGISTRY)
    assert load_registry() == load_registry(PACKAGED_REGISTRY)


def test_every_variable_is_read(env, tmp_path):
    values = {
        "SP_REPORTS_LAKE": "s3://bucket/lake", "SP_REPORTS_AWS_CONN_ID": "lake_aws",
        "SP_REPORTS_REGISTRY": str(tmp_path / "mine.yaml"), "SP_REPORTS_POLL_INTERVAL": "2.5",
        "SP_REPORTS_DISABLE_SCHEDULES": "true", "SP_REPORTS_NOTIFICATIONS_QUEUE_URL": "http://q",
        "SP_REPORTS_SQS_AWS_CONN_ID": "sqs_aws", "SP_REPORTS_NOTIFICATIONS_POLL_SECONDS": "5",
        "SP_REPORTS_ACCOUNTS": " amazon_a_na, amazon_a_fe,,amazon_a_na ",
        "SP_REPORTS_QUOTA_REDIS_URL": "redis://quotas:6379/3", "SP_REPORTS_PARSE_QUEUE": " parsing ",
        "SP_REPORTS_QUOTA_DIR": str(tmp_path / "quotas"),
    }
    for name, value in values.items():
        env.setenv(name, value)
    s = settings()
    assert (s.lake, s.aws_conn_id, s.registry, s.poll_interval) == (
        "s3://bucket/lake", "lake_aws", tmp_path / "mine.yaml", 2.5)
    assert (s.schedules_enabled, s.notifications_queue_url, s.sqs_aws_conn_id, s.notifications_poll_seconds) == (
        False, "http://q", "sqs_aws", 5)
    assert s.accounts == ("amazon_a_na", "amazon_a_fe")
    assert s.quota_redis_url == "redis://quotas:6379/3"
    assert s.parse_queue == "parsing"
    assert s.quota_dir == tmp_path / "quotas"


@pytest.mark.parametrize("broker, own, expected", [
    ("redis://:@redis:6379/0", None, "redis://:@redis:6379/0"),  # docker-compose.yaml's broker
    ("rediss://:pw@cache.example:6380/1", None, "rediss://:pw@cache.example:6380/1"),
    ("amqp://guest@rabbit//", None, None),  # a broker that is not Redis: in-process buckets
    (None, None, None),
    ("redis://redis:6379/0", "none", None),  # disabled explicitly
    ("redis://redis:6379/0", "NONE", None),
    ("redis://redis:6379/0", "redis://quotas:6379/5", "redis://quotas:6379/5"),  # its own Redis wins
    (None, "unix:///run/redis.sock", "unix:///run/redis.sock"),
])
def test_the_quota_redis_defaults_to_a_redis_celery_broker(env, broker, own, expected):
    if broker is not None:
        env.setenv("AIRFLOW__CELERY__BROKER_URL", broker)
    if own is not None:
        env.setenv("SP_REPORTS_QUOTA_REDIS_URL", own)
    assert settings().quota_redis_url == expected


@pytest.mark.parametrize("value, expected", [
    ("none", None), (" None ", None),  # each process keeps its own buckets
    ("/var/lib/sp-reports/quota", Path("/var/lib/sp-reports/quota")),
    ("~/quota", Path("~/quota").expanduser()),
])
def test_the_quota_folder_can_be_moved_or_disabled(env, value, expected):
    env.setenv("SP_REPORTS_QUOTA_DIR", value)
    assert settings().quota_dir == expected


def test_a_quota_redis_url_that_is_not_redis_fails_without_repeating_it(env):
    env.setenv("SP_REPORTS_QUOTA_REDIS_URL", "http://user:hunter2@quotas")
    with pytest.raises(SettingsError, match="SP_REPORTS_QUOTA_REDIS_URL must be a redis://") as caught:
        settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("name, value, message", [
    ("SP_REPORTS_POLL_INTERVAL", "soon", "SP_REPORTS_POLL_INTERVAL='soon' is not a number"),
    ("SP_REPORTS_POLL_INTERVAL", "0", "must be greater than 0"),
    ("SP_REPORTS_NOTIFICATIONS_POLL_SECONDS", "30", "at most 20"),
    ("SP_REPORTS_DISABLE_SCHEDULES", "maybe", "SP_REPORTS_DISABLE_SCHEDULES='maybe' must be"),
    ("SP_REPORTS_ACCOUNTS", " , ", "SP_REPORTS_ACCOUNTS must name at least one connection id"),
])
def test_an_unusable_value_names_its_variable(env, name, value, message):
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        settings()


def test_blank_means_unset(env):
    env.setenv("SP_REPORTS_LAKE", "  ")
    env.setenv("SP_REPORTS_REGISTRY", "")
    assert settings().registry == PACKAGED_REGISTRY and settings().lake.endswith("lake")


def test_the_parse_queue_reaches_parse_document_only(env):
    """SP_REPORTS_PARSE_QUEUE sends parse_document, and only it, to that queue; unset, no task names a queue
    (each gets Airflow's default, [operators] default_queue)."""
    from airflow.sdk import DAG

    from sp_reports.landing_tasks import landing_tasks

    def queues() -> dict[str, str]:
        with DAG("parse_queue_probe", schedule=None) as dag:
            landing_tasks({"report_id": "1"}, via="request", report=next(iter(load_registry().values())))
        return {task_id: task.queue for task_id, task in dag.task_dict.items()}

    default = queues()
    assert len(set(default.values())) == 1
    env.setenv("SP_REPORTS_PARSE_QUEUE", "sp_reports_parse")
    parsed = queues()
    assert parsed.pop("parse_document") == "sp_reports_parse"
    assert parsed == {task_id: q for task_id, q in default.items() if task_id != "parse_document"}
