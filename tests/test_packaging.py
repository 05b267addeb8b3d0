"""The package works without the checkout: a wheel carries config.yaml, its schema and the report's templates, and finds them."""

import shutil
import subprocess
import sys
import zipfile

from conftest import REPO


def copy_of_the_sources(to):
    """What a wheel is built from, copied with the package's symlinks as they are (setuptools writes build/ beside it)."""
    to.mkdir()
    for name in ("pyproject.toml", "README.md", "config.yaml"):
        shutil.copy2(REPO / name, to / name)
    shutil.copytree(REPO / "workflow" / "schemas", to / "workflow" / "schemas")
    shutil.copytree(
        REPO / "workflow" / "nightskynet", to / "workflow" / "nightskynet", symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    return to


def test_a_wheel_carries_the_config_and_its_schema_and_finds_them(tmp_path):
    source = copy_of_the_sources(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("nightskynet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nightskynet/config.yaml" in names and "nightskynet/config.schema.yaml" in names
    modules = {str(p.relative_to(REPO / "workflow")) for p in (REPO / "workflow/nightskynet").rglob("*.py")}
    assert modules <= set(names), f"the wheel lacks {sorted(modules - set(names))}"  # every folder of the package
    templates = {str(p.relative_to(REPO / "workflow")) for p in (REPO / "workflow/nightskynet/stages/templates").rglob("*") if p.is_file()}
    assert (
        {"nightskynet/stages/templates/report/report.html.j2", "nightskynet/stages/templates/report/sections.html.j2"}
        <= templates
        <= set(names)
    )
    assert any(n.endswith("entry_points.txt") for n in names)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True, timeout=300
    )
    code = (
        "import nightskynet, nightskynet.core.config as c; "
        "assert str(c.DEFAULT_CONFIG).startswith(%r), c.DEFAULT_CONFIG; "
        "cfg = c.load_config(); print(cfg['source'], cfg['scrape']['size']); "
        "import nightskynet.stages.report as r; page = r.render_section('header', r.header_section(cfg)); "
        "assert 'votes and sky positions are simulated' in page, page" % str(target)
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["demo", "120"]
