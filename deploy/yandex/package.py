"""`make yandex-package`: one zip per function for Yandex Cloud Functions (python312).

Cloud Functions has no layers: each zip holds the function's ``app.py`` (entry point
``app.handler``), the ``leadflow`` package and every dependency, boto3 included, all at the zip's
root. Dependencies are installed for the runtime's platform (CPython 3.12, manylinux x86_64) from
wheels only, whatever machine builds. The zips are reproducible (sorted entries, fixed times), so
an unchanged function keeps its hash and Terraform leaves it alone.

    python deploy/yandex/package.py [--out build/yandex] [--no-deps]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
PACKAGE = ROOT / "layers" / "common" / "leadflow"
COMMON_REQUIREMENTS = [
    ROOT / "layers" / "common" / "requirements.txt",
    Path(__file__).with_name("requirements.txt"),
]
PLATFORM = ["--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.12"]
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
SKIP = {"__pycache__"}


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def own_requirements(name: str) -> list[str]:
    path = FUNCTIONS / name / "requirements.txt"
    if not path.exists():
        return []
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def install(target: Path, requirements: list[Path], extra: list[str]) -> None:
    if target.exists():
        shutil.rmtree(target)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target),
               *PLATFORM, "--only-binary=:all:"]  # fmt: skip
    for path in requirements:
        command += ["-r", str(path)]
    subprocess.run([*command, *extra], check=True)


def files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not SKIP.intersection(path.relative_to(root).parts) and path.suffix != ".pyc":
            yield path


def write_zip(out: Path, entries: dict[str, Path]) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())


def build(out: Path, *, with_deps: bool = True, names: list[str] | None = None) -> dict[str, str]:
    """The zips in ``out``; returns each one's sha256."""
    out.mkdir(parents=True, exist_ok=True)
    deps_root = out / ".deps"
    common = deps_root / "common"
    if with_deps:
        install(common, COMMON_REQUIREMENTS, [])
    hashes = {}
    for name in names or function_names():
        entries: dict[str, Path] = {"app.py": FUNCTIONS / name / "app.py"}
        entries |= {f"leadflow/{p.relative_to(PACKAGE).as_posix()}": p for p in files_under(PACKAGE)}
        if with_deps:
            deps = common
            if extra := own_requirements(name):  # e.g. openai for score alone
                deps = deps_root / name
                install(deps, COMMON_REQUIREMENTS, extra)
            entries = {p.relative_to(deps).as_posix(): p for p in files_under(deps)} | entries
        zip_path = out / f"{name}.zip"
        write_zip(zip_path, entries)
        hashes[name] = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return hashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "yandex")
    parser.add_argument("--no-deps", action="store_true", help="only app.py and leadflow (for a quick look)")
    args = parser.parse_args(argv)
    for name, digest in build(args.out, with_deps=not args.no_deps).items():
        size = (args.out / f"{name}.zip").stat().st_size
        print(f"{args.out / name}.zip  {size / 1e6:.1f} MB  sha256 {digest[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
