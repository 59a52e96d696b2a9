"""The wheel is self-contained: page, JS modules and the Socket.IO client, no node needed."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_wheel_serves_the_page_and_every_asset_without_the_source_tree(tmp_path):
    # Given a wheel built from this tree (set-up has copied the npm client into the package)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("memdash-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dashboard/_assets/socket.io.min.js" in names
    assert "dashboard/templates/index.html" in names
    assert "dashboard/scenarios/catalogue.json" in names
    assert "dashboard/static/js/main.js" in names
    assert not any("node_modules" in n for n in names)
    # When it is unpacked somewhere else and imported from there
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import dashboard, sys\n"
        f"assert dashboard.__file__.startswith({str(site)!r}), dashboard.__file__\n"
        "import re\n"
        "client = dashboard.create_app().test_client()\n"
        "page = client.get('/').get_data(as_text=True)\n"
        'paths = re.findall(r\'(?:src|href)="(/static/[^"]+)"\', page)\n'
        "names = {p.split('/', 3)[3] for p in paths}\n"
        "assert names == {'vendor/plotly.min.js', 'vendor/socket.io.min.js', 'js/main.js',"
        " 'css/style.css'}, names\n"
        "for path in paths:\n"
        "    status = client.get(path).status_code\n"
        "    print(path, status)\n"
        "    assert status == 200, path\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then the page and every asset are served from the installed package
    assert result.returncode == 0, result.stdout + result.stderr
