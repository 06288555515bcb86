"""The package on its own, as the Docker image installs it: `pip install .` (with the project's constraints, not
requirements.txt) into an empty virtualenv, then `sp-reports land` of an emulator document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_cli_land import LISTINGS, US, fetch

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_alone_lands_a_document(emulator, tmp_path):
    source = tmp_path / "source"  # a copy, so the build writes nothing into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "plugins", source / "plugins", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              "--constraint", str(ROOT / "constraints.txt"), str(source)],
                             capture_output=True, text=True, env=env, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    document, content_type = fetch(emulator, tmp_path, LISTINGS, US)

    landed = subprocess.run(
        [str(venv / "bin" / "sp-reports"), "land", str(document), "--report-type", LISTINGS, "--marketplace-id", US,
         "--selling-partner-id", "A3EMULATORSELLER", "--lake", str(tmp_path / "lake"), "--content-type", content_type],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )

    assert landed.returncode == 0, landed.stderr[-3000:]
    manifest = json.loads(landed.stdout)
    assert manifest["rows_landed"] == 20 and manifest["rows_quarantined"] == 0
    assert (tmp_path / "lake" / "tables" / LISTINGS.lower() / "_delta_log").is_dir()
    # Nothing of Airflow came with it: the package's runtime needs stand on their own.
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, env=env, check=True)
    assert "apache-airflow" not in {p["name"] for p in json.loads(listed.stdout)}
    # No --registry above: the installed package found the registry it ships. Its version has one source.
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m, sp_reports; "
                              "print(m.version('sp-reports'), sp_reports.__version__, "
                              "sp_reports.get_provider_info()['versions'][0])"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    installed, package, provider = version.stdout.split()
    assert installed == package == provider
