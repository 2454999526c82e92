"""`medrisk scan` end to end on real corpus APKs: formats, schema, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from medrisk.cli import main

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src/medrisk/schema/scan-result.schema.json").read_text())


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medrisk.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def insecurebank_json(corpus_dir):
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--format", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_json_validates_against_schema(insecurebank_json):
    jsonschema.validate(insecurebank_json, SCHEMA)
    scan = insecurebank_json["scans"][0]
    assert scan["app"]["package"] == "com.android.insecurebankv2"
    assert scan["risk"]["grade"] in ("A", "B", "C")
    assert scan["findings"], "InsecureBankv2 must produce findings"


def test_json_is_deterministic(corpus_dir, insecurebank_json):
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--format", "json")
    assert json.loads(p.stdout) == insecurebank_json


def test_table_chinese_default_and_english(corpus_dir):
    zh = run("scan", str(corpus_dir / "diva-beta.apk"))
    en = run("scan", str(corpus_dir / "diva-beta.apk"), "--lang", "en")
    assert zh.returncode == 0 and en.returncode == 0
    assert "安全评分" in zh.stdout and "修复建议" in zh.stdout and "等级" in zh.stdout
    assert "Score" in en.stdout and "Remediation" in en.stdout and "安全评分" not in en.stdout
    assert "jakhar.aseem.diva" in zh.stdout


def test_fail_under_exit_code(corpus_dir, insecurebank_json):
    grade = insecurebank_json["scans"][0]["risk"]["grade"]
    apk = str(corpus_dir / "InsecureBankv2.apk")
    assert run("scan", apk, "--fail-under", "C").returncode == 0
    expect = 1 if grade != "A" else 0
    assert run("scan", apk, "--fail-under", "A").returncode == expect


def test_sarif_validates(corpus_dir, tmp_path):
    schema_path = os.environ.get("MEDRISK_SARIF_SCHEMA", str(REPO / ".cache/sarif-schema-2.1.0.json"))
    schema = json.loads(Path(schema_path).read_text())
    out = tmp_path / "r.sarif"
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--format", "sarif", "-o", str(out))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema)
    run0 = doc["runs"][0]
    assert run0["results"] and run0["tool"]["driver"]["rules"]
    ids = {r["id"] for r in run0["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in run0["results"]} <= ids


def test_html_is_self_contained_and_escaped(corpus_dir, tmp_path):
    out = tmp_path / "r.html"
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--format", "html", "-o", str(out))
    assert p.returncode == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http-equiv" not in html
    assert "src=" not in html and "<link" not in html
    assert "com.android.insecurebankv2" in html and "修复建议" in html


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_bad_inputs_one_line_errors_and_batch_continues(corpus_dir, tmp_path):
    good = corpus_dir / "diva-beta.apk"
    not_zip = _write(tmp_path / "a_not_zip.apk", b"hello, this is not a zip file" * 10)
    truncated = _write(tmp_path / "b_truncated.apk", good.read_bytes()[: good.stat().st_size // 2])
    empty = _write(tmp_path / "c_empty.apk", b"")
    nomani = tmp_path / "d_nomanifest.apk"
    with zipfile.ZipFile(nomani, "w") as z:
        z.writestr("classes.dex", b"dex\n035\0")
    p = run(
        "scan", not_zip, truncated, empty, str(nomani), str(good), str(tmp_path / "missing.apk"), "--format", "json"
    )
    assert p.returncode == 3
    assert "Traceback" not in p.stderr
    err_lines = [ln for ln in p.stderr.splitlines() if ": error: " in ln]
    assert len(err_lines) == 5, p.stderr
    for name in ("a_not_zip.apk", "b_truncated.apk", "c_empty.apk", "d_nomanifest.apk", "missing.apk"):
        assert any(name in ln for ln in err_lines), name
    doc = json.loads(p.stdout)
    jsonschema.validate(doc, SCHEMA)
    ok = [s for s in doc["scans"] if "error" not in s]
    assert len(ok) == 1 and ok[0]["app"]["package"] == "jakhar.aseem.diva"
    codes = {s["file"]["name"].rsplit("/", 1)[-1]: s["error"]["code"] for s in doc["scans"] if "error" in s}
    assert codes["d_nomanifest.apk"] == "no_manifest"


def test_size_limit(corpus_dir, tmp_path):
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--max-size-mb", "1")
    assert p.returncode == 3 and "file_too_large" in p.stderr and "Traceback" not in p.stderr


def test_huge_sparse_file_refused_fast(tmp_path):
    big = tmp_path / "huge.apk"
    with open(big, "wb") as fh:  # 500 MB sparse file: refused by size before reading
        fh.truncate(500 * 1024 * 1024)
    p = run("scan", str(big))
    assert p.returncode == 3 and "file_too_large" in p.stderr


def test_time_limit(corpus_dir):
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--timeout", "0.001")
    assert p.returncode == 3 and "timeout" in p.stderr and "Traceback" not in p.stderr


def test_memory_limit(corpus_dir):
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--memory-mb", "60")
    assert p.returncode == 3, p.stderr
    assert ("out_of_memory" in p.stderr) and "Traceback" not in p.stderr


def test_jobs_same_output(corpus_dir):
    files = [str(corpus_dir / n) for n in ("diva-beta.apk", "InsecureBankv2.apk", "ovaa.apk", "sieve-eratosthenes.apk")]
    one = run("scan", *files, "--format", "json", "--jobs", "1")
    two = run("scan", *files, "--format", "json", "--jobs", "2")
    assert one.returncode == two.returncode
    assert one.stdout == two.stdout


def test_folder_scan_with_progress(tmp_path, corpus_dir):
    for n in ("diva-beta.apk", "ovaa.apk"):
        (tmp_path / n).symlink_to(corpus_dir / n)
    p = run("scan", str(tmp_path), "--format", "json", "--progress")
    assert p.returncode == 0
    assert "2/2" in p.stderr
    assert [s["app"]["package"] for s in json.loads(p.stdout)["scans"]] == ["jakhar.aseem.diva", "oversecured.ovaa"]


def test_suppressions_are_shown_not_dropped(corpus_dir, tmp_path, insecurebank_json):
    first = insecurebank_json["scans"][0]["findings"][0]["rule_id"]
    s = tmp_path / "s.yaml"
    s.write_text(f"suppressions:\n  - rule: {first}\n    reason: accepted for the test\n", encoding="utf-8")
    p = run("scan", str(corpus_dir / "InsecureBankv2.apk"), "--format", "json", "--suppressions", str(s))
    scan = json.loads(p.stdout)["scans"][0]
    sup = [f for f in scan["findings"] if f["rule_id"] == first]
    assert sup and all(f["suppressed"] and f["suppression_reason"] == "accepted for the test" for f in sup)
    assert scan["risk"]["score"] >= insecurebank_json["scans"][0]["risk"]["score"]


def test_rules_commands():
    assert main(["rules", "lint"]) == 0
    assert main(["rules", "test"]) == 0
    assert main(["rules", "show", "MAN-001"]) == 0
    assert main(["rules", "show", "NOPE-999"]) == 1
