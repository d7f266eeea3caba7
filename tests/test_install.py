"""Packaging: a regular (non-editable) install finds the plugin and serves its own frontend.

The wheel is built from a copy of the source tree and installed into a fresh virtual
environment that borrows TensorFlow and TensorBoard from the current one (through a ``.pth``
line, so nothing is downloaded); TensorBoard then runs from a temporary working directory,
so the only frontend it can serve is the one inside the installed package.
"""

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tb_cnnvis import plugin
from tb_cnnvis.testing import write_synthetic_run

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "logs", "artifacts", "node_*"
)


def run(command, **kwargs):
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def listing(url):
    """TensorBoard's ``/data/plugins_listing``."""
    with urllib.request.urlopen(url + "/data/plugins_listing", timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, its site-packages) with tb-cnnvis installed from a built wheel."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=SKIP)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(root / "wheels"), str(source)])  # fmt: skip
    [wheel] = (root / "wheels").glob("tb_cnnvis-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")])
    python = root / "venv" / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).strip()
    )
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--target", str(site), str(wheel)])  # fmt: skip
    # TensorFlow, TensorBoard and friends come from this environment, after the venv's own.
    (site / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site, root


@pytest.mark.slow
def test_the_installed_package_carries_the_frontend_and_the_entry_point(installed):
    python, site, root = installed
    probe = (
        "import json, importlib.metadata as md, tb_cnnvis.plugin as p;"
        "[ep] = [e for e in md.entry_points(group='tensorboard_plugins') if e.name == 'cnnvis'];"
        "loader = ep.load();"
        "print(json.dumps({'plugin': p.__file__, 'frontend': str(p.frontend_dir()),"
        " 'loader': loader.__module__ + ':' + loader.__name__, 'value': ep.value}))"
    )
    facts = json.loads(run([str(python), "-c", probe], cwd=root))
    assert Path(facts["plugin"]).is_relative_to(site)
    assert Path(facts["frontend"]) == site / "tb_cnnvis" / "frontend"
    assert facts["loader"] == facts["value"] == "tb_cnnvis.plugin_loader:CnnVisLoader"
    shipped = sorted(path.name for path in (site / "tb_cnnvis" / "frontend").iterdir())
    in_repo = sorted(
        path.name
        for path in (REPO / "frontend").glob("*")
        if path.suffix in (".js", ".css", ".html")
    )
    assert shipped == in_repo and "index.js" in shipped


@pytest.mark.slow
def test_the_installed_plugin_serves_its_frontend_from_the_installed_package(installed):
    python, site, root = installed
    logdir = root / "logs"
    write_synthetic_run(str(logdir), epochs=2, layers=1, probes=1)
    log_path = root / "tb.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(python), "-m", "tensorboard.main", "--logdir", str(logdir),
             "--host", "127.0.0.1", "--port", "0", "--load_fast=false"],
            stdout=log, stderr=subprocess.STDOUT, cwd=root,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"http://127\.0\.0\.1:\d+", log_path.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        url = match.group(0)
        while not listing(url)["cnnvis"]["enabled"]:  # the first load runs in a thread
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        served = plugin.static_files(REPO / "frontend")
        assert "index.js" in served and "style.css" in served
        for name, content_type in served.items():
            installed_file = site / "tb_cnnvis" / "frontend" / name
            if not installed_file.exists():
                continue
            with urllib.request.urlopen(f"{url}/data/plugin/cnnvis/{name}", timeout=30) as resp:
                assert (
                    resp.read()
                    == installed_file.read_bytes()
                    == (REPO / "frontend" / name).read_bytes()
                )
                assert resp.headers["Content-Type"].startswith(content_type)
    finally:
        process.terminate()
        process.wait(timeout=30)
