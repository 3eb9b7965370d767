"""The package as a user gets it: a wheel built from the sources, installed with its
dependencies into a fresh virtual environment outside the checkout, runs the README's main
job and `logpipe es setup` against the test Elasticsearch.

This is what catches files that exist only in a source checkout (the index template once
was found only next to the repository). It needs the network or a pip cache for the
dependencies, like the README's own `pip install` does; CI runs it with the other tests."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from logpipe.es.setup import POLICY_FILE, TEMPLATE_FILE, default_assets_dir

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".venv", ".logpipe", "logs", "logpipe-archive",
             ".pytest_cache", ".ruff_cache", "target"}


def test_repo_elasticsearch_dir_is_the_packaged_one() -> None:
    """One source of truth: the repository's elasticsearch/ (compose mounts it, kibana/generate.py
    reads it) must be the package's assets, not a copy that can drift."""
    root = REPO / "elasticsearch"
    assert root.resolve() == default_assets_dir().resolve(), "elasticsearch/ must stay a symlink to logpipe/assets/elasticsearch"
    for name in (TEMPLATE_FILE, POLICY_FILE):
        assert (default_assets_dir() / name).is_file()


def _copy_sources(dest: Path) -> None:
    """The checkout's files without caches and run output (the build writes next to its sources)."""
    for path in REPO.iterdir():
        if path.name in SKIP_DIRS or path.name == "tests":
            continue
        target = dest / path.name
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_dir():
            shutil.copytree(path, target, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS, "*.pyc"))
        else:
            shutil.copy2(path, target)


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.mark.es
@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_main_job_and_es_setup(tmp_path: Path, es_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
           and not k.startswith("LOGPIPE_")}
    src, dist, run = tmp_path / "src", tmp_path / "dist", tmp_path / "run"
    src.mkdir()
    run.mkdir()
    _copy_sources(src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], tmp_path, env)
    (wheel,) = dist.glob("logpipe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in (TEMPLATE_FILE, POLICY_FILE):
        assert f"logpipe/assets/elasticsearch/{name}" in names, f"the wheel lacks {name}"

    venv = tmp_path / "venv"
    # --without-pip + pip's --python: no ensurepip needed (Debian's python3 lacks it without python3-venv)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    bindir = venv / "bin"
    _run([sys.executable, "-m", "pip", "--python", str(bindir / "python"), "install", "-q",
          "--disable-pip-version-check", str(wheel)], run, env)
    where = _run([str(bindir / "python"), "-c", "import logpipe; print(logpipe.__file__)"], run, env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"logpipe imported from {where}, not the venv"

    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    main_job = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[0].strip()
    steps = [shlex.split(step) for step in main_job.split("&&")]
    assert steps[0][:2] == ["pip", "install"]  # the install step is what this test did with the wheel
    outputs = [_run(step, run, env, timeout=300) for step in steps[1:]]
    assert [s[:2] for s in steps[1:]] == [["logpipe", "demo"], ["logpipe", "tail"], ["logpipe", "report"]]
    assert "log records" in outputs[1].stderr and "delivered to" in outputs[1].stderr
    assert list((run / "logpipe-archive").rglob("*.ndjson.gz")), "tail --once archived nothing"
    assert outputs[2].stdout.strip(), "report printed nothing"

    setup = _run(["logpipe", "es", "setup", "--es", es_url], run, env, timeout=120)
    assert "index template logpipe:" in setup.stdout, setup.stdout
