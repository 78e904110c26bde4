"""Fetch uv into the project's own cache, with nothing but the Python standard library.

    python3 local/bootstrap_uv.py .cache/uv/uv

Works where ``pip install --user`` does not: Debian's and Ubuntu's externally managed system
Python, a Python without pip, and inside an activated virtualenv (uv lands in ``.cache``, never
in someone else's environment). The wheel comes from PyPI's simple index and must match the hash
pinned here. uv's static (musl) Linux build runs on any Linux.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
import sys
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"
WHEELS = {
    "x86_64": (
        "musllinux_1_1_x86_64",
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    ),
    "aarch64": (
        "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
}
"""Per machine: the wheel's platform tag and its sha256 (from PyPI, for ``UV_VERSION``)."""
INDEX = os.environ.get("CHAT_SESSIONS_PYPI_SIMPLE", "https://pypi.org/simple")


def fetch(url: str, **headers: str) -> bytes:
    """An https URL's body (no other scheme: the index could point anywhere)."""
    if not url.startswith("https://"):
        raise SystemExit(f"bootstrap_uv: refusing a non-https URL: {url}")
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - https only
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - https only
        body: bytes = response.read()
    return body


def wheel_url(filename: str) -> str:
    index = fetch(f"{INDEX}/uv/", Accept="application/vnd.pypi.simple.v1+json")
    files = json.loads(index)["files"]
    for entry in files:
        if entry["filename"] == filename:
            return str(entry["url"])
    raise SystemExit(f"bootstrap_uv: {filename} is not on {INDEX}")


def main(target: Path) -> None:
    machine = platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")
    if sys.platform != "linux" or machine not in WHEELS:
        raise SystemExit("bootstrap_uv: install uv yourself (https://docs.astral.sh/uv/)")
    tag, digest = WHEELS[machine]
    filename = f"uv-{UV_VERSION}-py3-none-{tag}.whl"
    wheel = fetch(wheel_url(filename))
    if hashlib.sha256(wheel).hexdigest() != digest:
        raise SystemExit(f"bootstrap_uv: {filename} does not match its pinned sha256")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        binary = archive.read(f"uv-{UV_VERSION}.data/scripts/uv")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)  # a run cut short leaves no half-written uv behind
    print(f"bootstrap_uv: uv {UV_VERSION} in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
