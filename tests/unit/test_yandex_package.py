"""`make yandex-package` builds one zip per function that Cloud Functions can run: the function's
app.py at the root (entry point app.handler) beside the whole leadflow package, reproducibly. The
handler in an unpacked zip answers a Yandex API Gateway event on its own (dependencies aside,
which the real build adds for the runtime's platform)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from leadflow_local.template import _CfnLoader

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("yandex_package", ROOT / "deploy" / "yandex" / "package.py")
assert spec and spec.loader
package = importlib.util.module_from_spec(spec)
spec.loader.exec_module(package)


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("yandex")
    return out, package.build(out, with_deps=False)


def test_one_zip_per_function_of_the_template(zips):
    out, hashes = zips
    functions = {
        name.removesuffix("Function").lower()
        for name, r in yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)[  # noqa: S506
            "Resources"
        ].items()
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Function"
    }
    assert set(hashes) == functions
    assert all((out / f"{name}.zip").exists() for name in functions)


def test_each_zip_holds_its_app_and_the_whole_package(zips):
    out, _ = zips
    package_files = {
        "leadflow/" + p.relative_to(package.PACKAGE).as_posix() for p in package.files_under(package.PACKAGE)
    }
    assert "leadflow/adapters/platform/yandex.py" in package_files
    for name in ("ingest", "score"):
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            names = set(archive.namelist())
            assert archive.read("app.py") == (ROOT / "functions" / name / "app.py").read_bytes()
        assert package_files <= names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_zips_are_reproducible(zips, tmp_path):
    _, first = zips
    assert package.build(tmp_path, with_deps=False) == first


def test_the_unpacked_ingest_answers_a_yandex_api_gateway_event(zips, tmp_path):
    out, _ = zips
    with zipfile.ZipFile(out / "ingest.zip") as archive:
        archive.extractall(tmp_path)
    event = ROOT / "events" / "yandex" / "ingest_whatsapp_verify.json"
    # The invocation context as Yandex's documentation dumps it (functions/lang/python/handler.md).
    script = (
        "import json, sys, types, leadflow, app\n"
        "assert leadflow.__file__.startswith(sys.argv[1]), leadflow.__file__\n"
        "context = types.SimpleNamespace(aws_request_id='6e8356f9-489b-4c7b-8ba6-c8cd74f25455',\n"
        "    deadline_ms=1657713543198, function_name='d4eo2faf62', function_version='d4e3vrugh3',\n"
        "    invoked_function_arn='d4eo2faf62', log_group_name='ckgjmanjlh', log_stream_name='d4e3vrugh3',\n"
        "    memory_limit_in_mb=128, request_id='6e8356f9-489b-4c7b-8ba6-c8cd74f25455',\n"
        "    get_remaining_time_in_millis=lambda: 9000)\n"
        "print(json.dumps(app.handler(json.load(open(sys.argv[2])), context)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH"))}
    env |= {"AWS_DEFAULT_REGION": "ru-central1", "META_VERIFY_TOKEN": "dev-meta-verify-token",
            "LEADFLOW_PLATFORM": "yandex", "POWERTOOLS_METRICS_DISABLED": "true",
            "SCORE_QUEUE_URL": "https://message-queue.api.cloud.yandex.net/b1g8ad42m6he1ooql78r/dj6000000000/leadflow-salon-score",
            "ROUTE_QUEUE_URL": "https://message-queue.api.cloud.yandex.net/b1g8ad42m6he1ooql78r/dj6000000001/leadflow-salon-route"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(event)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["statusCode"], answer["body"]) == (200, "1158201444")
