"""The package installs as a wheel, not only as an editable checkout: a new user's `pip install`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment outside the checkout with the wheel of the committed files
    installed; third-party packages come from the test environment, our packages only from the wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(work / "dist")], source, env)
    (wheel,) = (work / "dist").glob("maas-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], work, env)
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work, env).strip()
    )
    # A plain path line: the test environment's packages are importable, but its .pth files (the
    # editable install of this checkout among them) are not run.
    (site / "third-party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], work, env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return venv, env


def test_the_wheel_holds_every_package_and_the_migrations(wheel_env: tuple[Path, dict[str, str]]) -> None:
    venv, env = wheel_env
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            (
                "import maas.api.bookings, maas.db, maas.bench.server, routing.dispatch.dispatcher, routing.builder, ext.raptor;"
                "from importlib.resources import files;"
                "print(maas.db.__file__);"
                "print(sorted(p.name for p in files('maas.db').joinpath('migrations').iterdir()))"
            ),
        ],
        venv.parent,
        env,
    )
    module_file, migrations = where.splitlines()
    assert module_file.startswith(str(venv)), f"maas.db came from {module_file}, not from the wheel"
    assert "0001_core.sql" in migrations


def test_the_installed_command_builds_and_serves(wheel_env: tuple[Path, dict[str, str]], database_url: str) -> None:
    venv, env = wheel_env
    work = venv.parent
    assert "network" in _run(["maas", "--help"], work, env)
    region = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import maas, pathlib; print(pathlib.Path(maas.__file__).parent / 'data' / 'region-herrenberg')",
        ],
        work,
        env,
    ).strip()
    assert region.startswith(str(venv))
    _run(
        [
            "maas",
            "network",
            "build",
            "--osm",
            f"{region}/herrenberg-and-around.osm.pbf",
            "--gtfs",
            f"{region}/gtfs/vvs-s1-only.gtfs.zip",
            "--out",
            str(work / "net"),
        ],
        work,
        env,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_env = {**env, "MAAS_DATABASE_URL": database_url, "MAAS_DATA_DIR": str(work / "data")}
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        ["maas", "serve", "--network", str(work / "net"), "--port", str(port)],
        cwd=work,
        env=serve_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, (work / "serve.log").read_text()[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
