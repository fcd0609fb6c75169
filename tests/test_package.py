"""tj as a package: the README's notebook section and the example notebook run as written from a folder outside
the repository; pyproject.toml and requirements.txt pin the same versions."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_notebook_section() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## In a notebook", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def outside_env():
    """This interpreter's environment without the repository on its path: `import tj` must come from the install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "TJ_THREADS": "2"}


def test_the_readmes_notebook_section_runs_as_written(tmp_path):
    proc = subprocess.run([sys.executable, "-c", readme_notebook_section()], cwd=tmp_path, env=outside_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "the section prints σ₁ and the region counts"


@pytest.mark.slow
def test_the_example_notebook_runs_from_outside_the_repository(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "docs" / "examples" / "your_model.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    old = os.environ.get("PYTHONPATH")
    os.environ.pop("PYTHONPATH", None)  # the kernel inherits this environment: tj must come from the install
    try:
        client.execute()
    finally:
        if old is not None:
            os.environ["PYTHONPATH"] = old
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "sigma_1" in printed and "bulk" in printed and "chaotic" in printed
    assert not list(tmp_path.glob("*.npz"))  # it wrote nothing


def test_pyproject_and_requirements_pin_the_same_versions():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {re.split("==", d)[0]: d for d in project["dependencies"] + project["optional-dependencies"]["app"]}
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = {re.split("==", line)[0]: line for line in lines if "==" in line}
    assert listed == pins
    assert pins["torch"] == "torch==2.13.0"


@pytest.mark.slow
def test_a_fresh_virtualenv_installs_the_package_and_imports_it_from_anywhere(tmp_path):
    # Over this interpreter's packages (what requirements.txt installed), so pip checks the package's own pins
    # against them and installs only tj: a venv that downloads and unpacks torch again costs a minute of CPU here.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-e", str(ROOT)], capture_output=True, text=True,
                             timeout=1800)
    assert install.returncode == 0, install.stderr[-2000:]
    installed = next((line for line in install.stdout.splitlines() if line.startswith("Successfully installed")),
                     install.stdout[-2000:])
    names = {token.rsplit("-", 1)[0] for token in installed.split()[2:]}
    assert "training-jacobian-lab" in names and names <= {"training-jacobian-lab", "setuptools", "wheel"}, installed
    proc = subprocess.run([str(py), "-c", readme_notebook_section()], cwd=tmp_path, env=outside_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
