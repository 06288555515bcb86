# The Airflow image docker-compose.yaml runs: the official image plus the sp-reports package.
#
# The tag's Airflow version must equal the apache-airflow pin in requirements.txt and constraints.txt
# (tests/test_docker_compose.py checks it); the Python version matches the one the project is tested on.
FROM apache/airflow:3.3.2-python3.11

# The official image expects extra packages to be installed as the airflow user, never as root.
USER airflow

# Only what the package build needs (.dockerignore allows nothing else into the context; README.md is
# pyproject.toml's long description). Owned by airflow because pip builds the package in place.
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt /opt/airflow/project/
COPY --chown=airflow:0 plugins/sp_reports /opt/airflow/project/plugins/sp_reports

# The runtime part of requirements.txt, pinned by the project's constraints.txt:
#   * the package and its runtime dependencies (httpx, pyarrow, deltalake, PyYAML) plus the `airflow` extra
#     (apache-airflow, apache-airflow-providers-amazon); it registers the selling_partner connection type
#     through its apache_airflow_provider entry point; and the `celery` extra (providers-celery, celery 5.6 with
#     redis, psycopg 3 for the postgresql+psycopg URLs of docker-compose.yaml, asyncpg), pinned as
#     `make demo-distributed` runs them;
#   * not the test tooling (pytest, moto, hypothesis, ...) nor the emulator's FastAPI/uvicorn;
#   * a regular (not editable) install: the image carries its own copy of the code;
#   * "apache-airflow==$AIRFLOW_VERSION" (AIRFLOW_VERSION is set by the base image) guards against pip
#     ever replacing the image's Airflow; packages the image has and the project does not pin (the fab and
#     postgres providers, psycopg2, ...) stay as the image built them.
RUN pip install --no-cache-dir \
        --constraint /opt/airflow/project/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/opt/airflow/project[airflow,celery]" \
    && rm -rf /opt/airflow/project/build /opt/airflow/project/plugins/*.egg-info \
    && mkdir -p /opt/airflow/lake
