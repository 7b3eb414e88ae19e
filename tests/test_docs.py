"""The documentation site builds with warnings as errors and has the pages a reader looks for.

The build is the one of the README and CONTRIBUTING.md (``python -m sphinx -W --keep-going
-b html docs OUT``) into a temporary folder: a broken cross-reference, a docstring that
numpydoc cannot parse, a Markdown page with a bad link or a notebook cell that raises
fails it. The test extra installs the docs extra, so this test runs in CI, never skipped.
"""

import importlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The modules whose ``__all__`` the API reference lists, and their names without a page
#: of their own (the version string; subpackages that have their own section).
API_MODULES = ["lni_geometry", "lni_geometry.theory", "lni_geometry.torch", "lni_geometry.experiments",
               "lni_geometry.backends"]
NO_PAGE = {"lni_geometry": {"__version__", "theory"}}


def project_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once for this module; the output folder and the build's log."""
    import myst_nb  # noqa: F401  - the docs extra, installed by the test extra
    import numpydoc  # noqa: F401
    import pydata_sphinx_theme  # noqa: F401
    import sphinx  # noqa: F401

    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
           "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    log = run.stdout + run.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert run.returncode == 0, (f"the site did not build cleanly (exit {run.returncode}):\n"
                                 + "\n".join(warnings[:40]) + "\n" + log[-3000:])
    print(f"site built in {time.perf_counter() - t0:.0f} s")
    return out / "html", log


def test_site_builds_without_warnings(site):
    html, log = site
    assert "build succeeded" in log
    for page in ["index", "getting_started", "user_guide", "accuracy", "heavy_tails", "cuda", "dask",
                 "streams", "notebooks", "api", "benchmarks", "changelog", "contributing"]:
        assert (html / f"{page}.html").is_file(), page


def test_api_pages_of_named_functions(site):
    html, _ = site
    for name in ["lni_geometry.sample_angles", "lni_geometry.compare", "lni_geometry.angle_budget",
                 "lni_geometry.torch.Lion", "lni_geometry.torch.Enim", "lni_geometry.theory.BisectorAngle",
                 "lni_geometry.backends.get_backend", "lni_geometry.experiments.RunConfig"]:
        page = html / "generated" / f"{name}.html"
        assert page.is_file(), name
        text = page.read_text(encoding="utf-8")
        assert f'id="{name}"' in text, f"{name}: no API entry on its page"
    lion = (html / "generated" / "lni_geometry.torch.Lion.html").read_text(encoding="utf-8")
    assert "Parameters" in lion and "telemetry" in lion  # numpydoc sections rendered


def test_every_public_name_has_a_page(site):
    html, _ = site
    missing = []
    for modname in API_MODULES:
        module = importlib.import_module(modname)
        assert (html / "generated" / f"{modname}.html").is_file(), modname
        for name in module.__all__:
            if name in NO_PAGE.get(modname, ()):
                continue
            if not (html / "generated" / f"{modname}.{name}.html").is_file():
                missing.append(f"{modname}.{name}")
    assert not missing, f"public names without an API page: {missing}"


def test_notebooks_rendered_with_outputs(site):
    html, _ = site
    pages = sorted((html / "notebooks").glob("0*.html"))
    assert [p.stem for p in pages] == [p.stem for p in sorted((ROOT / "notebooks").glob("0*.ipynb"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "cell_output" in text, f"{page.name}: no outputs"
        if "matplotlib" in (ROOT / "notebooks" / f"{page.stem}.ipynb").read_text(encoding="utf-8"):
            assert re.search(r'<img[^>]+src="[^"]*\.png"', text), f"{page.name}: no figure"


def test_site_builds_offline():
    """No intersphinx (inventories come from the network) and no remote images or scripts
    in the configuration; MathJax comes from the docs extra."""
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    assert "sphinx.ext.intersphinx" not in conf and "intersphinx_mapping" not in conf
    assert not re.search(r"https?://", conf)
    extras = project_metadata()["optional-dependencies"]
    assert "lni-geometry[docs]" in extras["test"]
    for package in ["sphinx", "pydata-sphinx-theme", "numpydoc", "myst-parser", "myst-nb", "jupyter-server-mathjax"]:
        assert any(re.match(rf"{package}\b", req) for req in extras["docs"]), package


def test_versions_agree():
    """pyproject's version is the newest entry of CHANGELOG.md, CITATION.cff's and the README's."""
    version = project_metadata()["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(r"^## (\S+)", changelog, re.M).group(1) == version
    assert re.search(r"^version: (\S+)", (ROOT / "CITATION.cff").read_text(encoding="utf-8"), re.M).group(1) == version
    assert f"version = {{{version}}}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_test_command_is_ci():
    """The README's test command is exactly what .ci/run runs, with the constraints file."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == 'python -m pip install -c constraints.txt -e ".[test]" && python -m pytest'
    assert ci in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "constraints.txt").is_file()
    extras = project_metadata()["optional-dependencies"]
    torch_pins = [req for reqs in extras.values() for req in reqs if req.startswith("torch")]
    assert torch_pins and all("<" not in req for req in torch_pins), torch_pins  # no cap in the metadata


def readme_examples():
    """The Python blocks of the README's "Three examples" (the site's Getting started includes them)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("<!-- examples:start -->"):text.index("<!-- examples:end -->")]
    return section, re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_examples_run_and_print_what_the_readme_says(tmp_path):
    section, blocks = readme_examples()
    assert len(blocks) == 3
    outputs = []
    for code in blocks:
        run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        outputs.append(run.stdout)
    own, sampled, training = outputs
    assert own.splitlines()[0].startswith("37.07")
    assert "bisector mean 37.0712 deg, std 0.0079 deg" in sampled and "KS=0.0256 (p=0.523)" in sampled
    assert "chi2 p=0.345" in section and "p=0.345)" in sampled
    printed = re.search(r"prints `(sign angle [^`]*)`", section.replace("\n", " ")).group(1)
    assert printed == training.strip()
