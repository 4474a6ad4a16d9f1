"""A non-editable install carries the shipped model as package data and loads it from site-packages."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_wheel_installs_model_as_package_data(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("mtdetect-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    folder = REPO / "models" / (REPO / "models" / "DEFAULT").read_text().strip()
    listed = [line.split()[1] for line in (folder / "SHA256SUMS").read_text().splitlines() if line.strip()]
    assert "word_zipf.json.gz" in listed
    for f in (*listed, "SHA256SUMS"):  # every file of the shipped folder's manifest travels in the wheel
        assert f"detector/models/{folder.name}/{f}" in names, f
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("import detector, sys; from detector import Detector; d = Detector.load(); "
            "print(detector.__file__); print(d.path); print(d.info()['checksum']); print(d.backend)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("MTDETECT_MODEL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         check=True).stdout.split("\n")
    assert out[0].startswith(str(target)) and out[1].startswith(str(target)) and out[2] == "ok"
    assert out[3] == "onnx"  # the installed model carries its graph: the default backend needs no torch
