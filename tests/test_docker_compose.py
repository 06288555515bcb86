"""Static checks of the Docker deployment (docker-compose.yaml, Dockerfile, .dockerignore, .env.example).

No Docker engine is needed: the files are parsed and their structure asserted. Only the last test runs
`docker compose config` (or a standalone docker-compose), and only where one is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"

REQUIRED_SERVICES = {
    "postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    "airflow-worker", "airflow-worker-parse", "airflow-triggerer", "airflow-init",
}
# Long-running Airflow components and the command each runs.
COMPONENT_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-worker-parse": ["celery", "worker", "--queues", "${SP_REPORTS_PARSE_QUEUE:-sp_reports_parse}"],
    "airflow-triggerer": "triggerer",
}
# Environment variables sp_reports (and the DAG file) read at runtime.
PACKAGE_ENV = ("SP_REPORTS_LAKE", "SP_REPORTS_AWS_CONN_ID", "SP_REPORTS_REGISTRY", "SP_REPORTS_POLL_INTERVAL",
               "SP_REPORTS_PARSE_QUEUE")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}; `$${...}` is an escape.
VAR_REF = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
ONLY_VAR_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}$")
SECRETISH_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|^AIRFLOW_CONN_", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(compose, services) -> dict:
    """Services built on the x-airflow-common anchor (recognised by its image)."""
    image = compose["x-airflow-common"]["image"]
    return {name: svc for name, svc in services.items() if svc.get("image") == image}


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _volumes(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax volume."""
    out = []
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def _env_example() -> dict[str, str]:
    """Assigned (uncommented) variables of .env.example, with compose's quoting rules applied."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _var_refs(text: str) -> list[re.Match]:
    return list(VAR_REF.finditer(text))


def _resolve(value: str) -> str:
    """``value`` as compose would interpolate it, with ``__NAME__`` standing for a variable from .env
    (and a variable's default when it has one), so that URLs can be parsed."""
    def one(ref: re.Match) -> str:
        if ref["op"] in ("-", ":-"):
            return ref["arg"]
        return f"__{ref['name']}__"
    return VAR_REF.sub(one, value)


# --- services ---------------------------------------------------------------------------------------

def test_required_services_present(services):
    assert REQUIRED_SERVICES <= set(services), f"missing: {sorted(REQUIRED_SERVICES - set(services))}"


def test_every_airflow_service_uses_the_common_image_and_build(compose, services, airflow_services):
    common = compose["x-airflow-common"]
    assert common["build"]["context"] == "."
    assert (ROOT / common["build"].get("dockerfile", "Dockerfile")).is_file()
    expected = {name for name in services if name.startswith("airflow-") or name == "flower"}
    assert set(airflow_services) == expected
    for name, svc in airflow_services.items():
        assert svc["build"] == common["build"], name
        assert svc["user"] == common["user"] or name == "airflow-init", name


def test_components_run_their_airflow_command(services):
    for name, command in COMPONENT_COMMANDS.items():
        assert services[name]["command"] == command, name
        assert services[name].get("restart") == "always", name
        assert "healthcheck" in services[name], name
    init = services["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "restart" not in init  # one-shot: the others wait for it to complete


def test_celery_executor_with_postgres_and_redis(airflow_services):
    for name, svc in airflow_services.items():
        env = {key: _resolve(value) for key, value in _env(svc).items()}
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        # psycopg 3, pinned in constraints.txt: SQLAlchemy 2.1's postgresql driver (make demo-distributed's too).
        assert db.scheme == "postgresql+psycopg" and db.hostname == "postgres", name
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert backend.scheme == "db+postgresql+psycopg" and backend.hostname == "postgres", name
        # Celery results and the metadata DB are the same database.
        assert backend.netloc == db.netloc and backend.path == db.path, name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis" and broker.port == 6379, name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        # Shared signing keys: each component must agree on them (no per-container generated value).
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert re.fullmatch(r"__\w+__", env[key]), (name, key)


def test_parse_document_has_a_worker_of_its_own(airflow_services):
    """SP_REPORTS_PARSE_QUEUE names parse_document's queue in every component (the DAG processor reads it), and
    airflow-worker-parse serves exactly that queue while airflow-worker serves the default one: the topology
    of make demo-distributed (scripts/demo_distributed.py, DEMO_WORKERS)."""
    queues = {_resolve(_env(svc)["SP_REPORTS_PARSE_QUEUE"]) for svc in airflow_services.values()}
    assert queues == {"sp_reports_parse"}
    command = airflow_services["airflow-worker-parse"]["command"]
    assert _resolve(command[command.index("--queues") + 1]) == "sp_reports_parse"
    assert "--queues" not in airflow_services["airflow-worker"]["command"]
    assert _env(airflow_services["airflow-worker-parse"]) == _env(airflow_services["airflow-worker"])


def test_every_component_shares_the_quota_buckets_in_the_brokers_redis(airflow_services, monkeypatch):
    """The workers and the triggerer take SP-API quota tokens from one Redis (the native topology's too): with
    SP_REPORTS_QUOTA_REDIS_URL empty, settings() falls back to the Celery broker's Redis in every component."""
    from sp_reports.settings import settings

    for name, svc in airflow_services.items():
        env = {key: _resolve(value) for key, value in _env(svc).items()}
        assert env["SP_REPORTS_QUOTA_REDIS_URL"] == "", name
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert settings().quota_redis_url == env["AIRFLOW__CELERY__BROKER_URL"], name
        assert settings().quota_redis_url.startswith("redis://"), name


def test_depends_on_targets_exist_and_can_satisfy_the_condition(services):
    for name, svc in services.items():
        depends_on = svc.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: use the long depends_on form with conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert not set(services[target].get("profiles", [])), f"{name} depends on optional {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert "restart" not in services[target], f"{target} must run once and exit"
    for name in COMPONENT_COMMANDS:
        conditions = {t: s["condition"] for t, s in services[name]["depends_on"].items()}
        assert conditions["postgres"] == conditions["redis"] == "service_healthy", name
        assert conditions["airflow-init"] == "service_completed_successfully", name


def test_ports(services):
    api_ports = services["airflow-apiserver"]["ports"]
    assert [p.rsplit(":", 1)[1] for p in api_ports] == ["8080"]
    # The database and the broker stay on the compose network.
    assert "ports" not in services["postgres"]
    assert "ports" not in services["redis"]
    # Only the API server (and optional flower) publish anything.
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published <= {"airflow-apiserver", "flower"}


def test_optional_services_are_behind_profiles(services):
    assert services["flower"]["profiles"] == ["flower"]
    assert services["airflow-cli"]["profiles"] == ["debug"]
    for name in REQUIRED_SERVICES:
        assert "profiles" not in services[name], name


# --- volumes and package configuration ---------------------------------------------------------------

def test_volumes_mount_project_folders_that_exist(compose, airflow_services):
    named = set(compose.get("volumes") or {})
    for name, svc in airflow_services.items():
        mounts = {target: (source, mode) for source, target, mode in _volumes(svc)}
        assert mounts["/opt/airflow/dags"] == ("./dags", "ro"), name
        assert mounts["/opt/airflow/include"] == ("./include", "ro"), name
        assert "/opt/airflow/logs" in mounts, name
        # plugins/ holds the sp-reports package (installed in the image); as Airflow's plugins folder
        # every module in it would be imported as a top-level plugin module.
        assert "/opt/airflow/plugins" not in mounts, name
    for svc in compose["services"].values():
        for source, target, _ in _volumes(svc):
            if source.startswith((".", "/", "$")):
                assert (ROOT / source).exists(), f"bind mount source {source} is not in the repository"
            else:
                assert source in named, f"named volume {source} is not declared"
    assert (ROOT / "dags" / "sp_report_dags.py").is_file()


def test_package_env_vars_are_set(airflow_services):
    for name, svc in airflow_services.items():
        env = _env(svc)
        for key in PACKAGE_ENV:
            assert env.get(key), (name, key)
        # Unset by default: the registry the package (and so the image) ships; a user's own goes in ./include.
        assert env["SP_REPORTS_REGISTRY"] == "${SP_REPORTS_REGISTRY:-}", name
        assert env["SP_REPORTS_LAKE"].startswith("${SP_REPORTS_LAKE"), name
        # The lake's connection id names the connection the compose file defines from .env.
        assert f"AIRFLOW_CONN_{env['SP_REPORTS_AWS_CONN_ID'].upper()}" in env, name
        assert "AIRFLOW_CONN_SELLING_PARTNER_DEFAULT" in env, name


# --- secrets --------------------------------------------------------------------------------------------

def test_no_literal_secret_values(services):
    for name, svc in services.items():
        for key, value in _env(svc).items():
            if SECRETISH_NAME.search(key):
                assert ONLY_VAR_REF.match(value), f"{name}: {key} must only reference a variable from .env"
            if "://" in value:
                password = urlsplit(_resolve(value)).password
                assert not password or re.fullmatch(r"__\w+__", password), f"{name}: {key} embeds a password"
    text = COMPOSE_FILE.read_text()
    for pattern in (r"AKIA[0-9A-Z]{16}", r"Atzr\|", r"amzn1\.application-oa2-client\.[0-9a-f]{8}"):
        assert not re.search(pattern, text), pattern


def test_env_example_documents_every_variable(services):
    text = COMPOSE_FILE.read_text()
    assigned = _env_example()
    example_text = ENV_EXAMPLE.read_text()
    refs = _var_refs(text)
    assert refs
    for ref in refs:
        name, op = ref["name"], ref["op"] or ""
        if op in ("", "?", ":?"):  # no default: it must come from .env
            assert name in assigned, f"${{{name}}} has no default and .env.example does not set it"
        else:  # optional: at least explained (possibly commented out)
            assert re.search(rf"\b{name}\b", example_text), f"${{{name}}} is not mentioned in .env.example"


def test_env_example_holds_placeholders_only():
    values = _env_example()
    for key in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                "_AIRFLOW_WWW_USER_PASSWORD"):
        assert values[key] == "", f"{key} must be left empty in .env.example"
    for key, value in values.items():
        if key.startswith("AIRFLOW_CONN_"):
            assert "REPLACE_ME" in value, key


def test_env_example_connections_are_valid_airflow_connections():
    from airflow.models.connection import Connection

    from sp_reports.hooks.selling_partner import SellingPartnerHook

    values = _env_example()
    sp = Connection.from_json(values["AIRFLOW_CONN_SELLING_PARTNER_DEFAULT"], conn_id="selling_partner_default")
    assert sp.conn_type == "selling_partner"
    kwargs = SellingPartnerHook().client_kwargs(sp)  # the hook accepts it (all required fields present)
    assert kwargs["region"] in ("NA", "EU", "FE")
    assert sp.extra_dejson["marketplace_ids"]
    aws = Connection.from_json(values["AIRFLOW_CONN_AWS_DEFAULT"], conn_id="aws_default")
    assert aws.conn_type == "aws"
    assert aws.extra_dejson.get("region_name")


# --- image --------------------------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), " ".join(args.split())))
    return out


def _pin(path: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)\s*$", path.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {path.name}"
    return match[1]


def test_dockerfile_airflow_version_matches_the_pins():
    froms = [args for instruction, args in _dockerfile_instructions() if instruction == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(?P<version>\d+\.\d+\.\d+)-python(?P<python>3\.\d+)", froms[0])
    assert match, f"unexpected base image {froms[0]}"
    assert match["version"] == _pin(ROOT / "requirements.txt", "apache-airflow")
    assert match["version"] == _pin(ROOT / "constraints.txt", "apache-airflow")


def test_dockerfile_installs_the_project_with_the_constraints():
    instructions = _dockerfile_instructions()
    copied = []
    for instruction, args in instructions:
        if instruction == "COPY":
            *sources, _dest = [a for a in args.split() if not a.startswith("--")]
            copied += sources
    for source in copied:
        if not any(ch in source for ch in "*?["):
            assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
    assert {"pyproject.toml", "constraints.txt", "plugins/sp_reports"} <= set(copied)
    assert instructions[-1] != ("USER", "root")
    installs = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
    assert len(installs) == 1
    install = installs[0]
    assert re.search(r"(--constraint|-c) /opt/airflow/project/constraints\.txt", install)
    assert '"/opt/airflow/project[airflow,celery]"' in install
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install


def test_dockerignore_allows_only_the_build_inputs():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # allow-list: .env, .venv, lake data and .git never reach the build context
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not any(p.startswith(".env") for p in allowed)
    assert {"pyproject.toml", "constraints.txt", "plugins/sp_reports"} <= allowed


# --- docker compose itself (only where the plugin exists) ------------------------------------------------

def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin), else a standalone `docker-compose`; None when neither works."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]):
            result = subprocess.run([*command, "version"], capture_output=True, text=True)
            if result.returncode == 0:
                return command
    return None


@pytest.mark.skipif(_compose_command() is None, reason="no docker compose plugin (`docker compose version` "
                    "fails) nor docker-compose; the static checks above still ran")
def test_docker_compose_config_is_valid(tmp_path):
    """Compose's own validation and interpolation (needs no engine), fed .env.example with its empty
    required values filled with dummies."""
    env_file = tmp_path / "compose.env"
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        lines.append(line + "dummy" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=", line) else line)
    env_file.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [*_compose_command(), "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
