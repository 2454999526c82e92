"""Real parts for channel monitoring: APKs re-signed with our own keys (Debian's keytool,
zipalign, apksigner), real F-Droid repositories built by Debian's fdroidserver, served over
HTTP on loopback by a server that can be taken down, and a platform per backend with real
scans and a real SMTP server (aiosmtpd).

Fixtures are made from a corpus APK (DMS, a diabetes-management app) in the session's temp
folder; no APK is stored in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from medrisk.channels.apkinfo import apk_identity
from medrisk.loop.clock import FakeClock
from medrisk.loop.notify import NotifyConfig
from medrisk.platform.scanning import ThreadScanRunner
from tests.loop.conftest import Mailbox, free_port_for_tests, smtp  # noqa: F401
from tests.platform.fixtures import BACKENDS, _fast_argon2, make_platform, new_url, pg_server  # noqa: F401
from tests.platform.world import World, build_world

CORPUS = Path(os.environ.get("MEDRISK_CORPUS", Path(__file__).resolve().parents[2] / "../shared/corpus/apks"))
BASE_APK = "DiabetesIntegration-DMS-app-release.apk"
PACKAGE = "com.example.kbb12.dms"
LOOKALIKE_PACKAGE = "com.example.kbb12.dns"  # same length: patched in the binary manifest's string pool


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180, check=False)
    except FileNotFoundError as exc:
        raise AssertionError(f"{cmd[0]} is not installed (scripts/test.sh installs it with apt-get)") from exc
    assert p.returncode == 0, f"{' '.join(cmd)} failed: {p.stderr[-2000:]}"
    return p.stdout


def make_key(path: Path, cn: str) -> Path:
    _run(
        ["keytool", "-genkeypair", "-keystore", str(path), "-storetype", "PKCS12", "-storepass", "testpass"]
        + ["-alias", "k", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650", "-dname", f"CN={cn}"]
    )
    return path


def patch_manifest(manifest: bytes, replace: dict[str, str]) -> bytes:
    """Same-length UTF-16 string replacements in a binary manifest (package, versionName)."""
    for old, new in replace.items():
        assert len(old) == len(new)
        enc_old, enc_new = old.encode("utf-16le"), new.encode("utf-16le")
        if old.replace(".", "").isdigit() or old.count(".") == 1 and len(old) <= 4:
            # a version name: replace the whole pool entry (length prefix + text + NUL) only
            enc_old = len(old).to_bytes(2, "little") + enc_old + b"\0\0"
            enc_new = len(new).to_bytes(2, "little") + enc_new + b"\0\0"
        assert enc_old in manifest, f"{old!r} not in the manifest's string pool"
        manifest = manifest.replace(enc_old, enc_new)
    return manifest


def build_apk(
    src: Path,
    out: Path,
    key: Path,
    *,
    manifest: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Copy ``src`` without its signature, patch the manifest / add files, zipalign and sign with ``key``."""
    raw = out.with_suffix(".unsigned.apk")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(raw, "w") as zout:
        for info in zin.infolist():
            if info.filename.startswith("META-INF/"):
                continue
            data = zin.read(info)
            if info.filename == "AndroidManifest.xml" and manifest:
                data = patch_manifest(data, manifest)
            zout.writestr(info, data, compress_type=info.compress_type)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    aligned = out.with_suffix(".aligned.apk")
    _run(["zipalign", "-f", "-p", "4", str(raw), str(aligned)])
    _run(
        ["apksigner", "sign", "--ks", str(key), "--ks-pass", "pass:testpass", "--ks-key-alias", "k"]
        + ["--out", str(out), str(aligned)]
    )
    raw.unlink()
    aligned.unlink()
    Path(str(out) + ".idsig").unlink(missing_ok=True)
    return out


@dataclass
class Apks:
    official: Path  # the builder's release 1.0, signed with the builder's key
    official_v2: Path  # the builder's 2.0
    tampered: Path  # same package, a changed resource, another key
    lookalike: Path  # another package, same name and icon, another key
    unfiled: Path  # a medical app nobody filed (blood donation)
    builder_cert: str
    attacker_cert: str


@pytest.fixture(scope="session")
def apks(tmp_path_factory: pytest.TempPathFactory) -> Apks:
    src = CORPUS / BASE_APK
    assert src.is_file(), f"corpus APK {src} is missing (set MEDRISK_CORPUS)"
    d = tmp_path_factory.mktemp("apks")
    builder = make_key(d / "builder.p12", "Hospital Builder")
    attacker = make_key(d / "attacker.p12", "Someone Else")
    a = Apks(
        official=build_apk(src, d / "dms-1.0.apk", builder),
        official_v2=build_apk(src, d / "dms-2.0.apk", builder, manifest={"1.0": "2.0"}),
        tampered=build_apk(src, d / "dms-tampered.apk", attacker, extra={"assets/offer.html": b"<a href=x>pay</a>"}),
        lookalike=build_apk(src, d / "dns-lookalike.apk", attacker, manifest={PACKAGE: LOOKALIKE_PACKAGE}),
        unfiled=CORPUS / "exodus-blooddonation.apk",
        builder_cert=apk_identity((d / "dms-1.0.apk").read_bytes()).signer_sha256[0],
        attacker_cert=apk_identity((d / "dms-tampered.apk").read_bytes()).signer_sha256[0],
    )
    assert apk_identity(a.official_v2.read_bytes()).version_name == "2.0"
    assert apk_identity(a.lookalike.read_bytes()).package == LOOKALIKE_PACKAGE
    return a


@dataclass
class Repo:
    root: Path  # the folder holding repo/
    fingerprint: str

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def update(self, add: list[Path] = (), remove: list[str] = ()) -> None:  # type: ignore[assignment]
        for p in add:
            shutil.copy(p, self.repo / p.name)
        for name in remove:
            (self.repo / name).unlink()
        _run(["fdroid", "update", "-c"], self.root)


@pytest.fixture(scope="session")
def fdroid_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `fdroid init` (its keystore and config) for every repository of the session."""
    d = tmp_path_factory.mktemp("fdroid-init")
    _run(["fdroid", "init"], d)
    return d


def make_repo(fdroid_key: Path, root: Path, apks: list[Path], metadata: dict[str, str] | None = None) -> Repo:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(exist_ok=True)
    for package, text in (metadata or {}).items():  # F-Droid app metadata (categories, author, summary)
        (root / "metadata" / f"{package}.yml").write_text(text, encoding="utf-8")
    shutil.copy(fdroid_key / "config.yml", root / "config.yml")
    shutil.copy(fdroid_key / "keystore.p12", root / "keystore.p12")
    os.chmod(root / "config.yml", 0o600)
    (root / "repo").mkdir(exist_ok=True)
    for p in apks:
        shutil.copy(p, root / "repo" / p.name)
    out = subprocess.run(["fdroid", "update", "-c"], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fp = ""
    for line in out.stderr.splitlines() + out.stdout.splitlines():
        if "Creating signed index with this key" in line:
            continue
        parts = line.split("INFO: ")[-1].split()
        if len(parts) == 32 and all(len(x) == 2 for x in parts):
            fp = "".join(parts).lower()
    assert fp, "fdroid update did not print the repository key fingerprint"
    return Repo(root, fp)


class RepoServer:
    """Serves a folder over HTTP on loopback; ``up = False`` answers 503 to everything."""

    def __init__(self, root: Path) -> None:
        self.up = True
        self.requests: list[str] = []
        server = self

        class H(SimpleHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                if not server.up:
                    self.send_error(503, "down for maintenance")
                    return
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(H, directory=str(root)))
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Repos:
    official: Repo
    thirdparty: Repo
    drift: Repo
    server: RepoServer

    def url(self, repo: Repo) -> str:
        return f"{self.server.base}/{repo.root.name}/repo"


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory, fdroid_key: Path, apks: Apks) -> Iterator[Repos]:
    top = tmp_path_factory.mktemp("channels")
    r = Repos(
        official=make_repo(fdroid_key, top / "official", [apks.official]),
        thirdparty=make_repo(
            fdroid_key,
            top / "thirdparty",
            [apks.tampered, apks.lookalike, apks.unfiled],
            {"fr.mobdev.blooddonation": "Categories:\n  - Medical\nAuthorName: mobdev\nSummary: Blood donation\n"},
        ),
        drift=make_repo(fdroid_key, top / "drift", [apks.official_v2]),
        server=RepoServer(top),
    )
    yield r
    r.server.close()


# a fake clock just ahead of real time: authorisation codes are issued with the real clock
START = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)


@pytest.fixture(params=BACKENDS)
def cw(request: pytest.FixtureRequest, tmp_path: Path, smtp) -> Iterator[World]:  # noqa: F811
    """A world with real scans, a fake clock and e-mail to the session's aiosmtpd server."""
    url = new_url(request, request.param, tmp_path)
    ctx = make_platform(url, tmp_path, ThreadScanRunner())
    assert ctx.loop is not None and ctx.channels is not None
    ctx.loop.clock = FakeClock(START)
    ctx.loop.config = NotifyConfig(smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_tls="none", webhook_timeout=3)
    w = build_world(ctx)
    w.mailbox = smtp[0]  # type: ignore[attr-defined]
    yield w
    ctx.close()


def file_dms(w: World, apks: Apks, version: str = "1.0", **over: Any) -> dict[str, Any]:
    """The builder files DMS (its certificate) and the regional reviewer approves it."""
    body = {
        "package": PACKAGE,
        "name": "DMS",
        "current_version": version,
        "signing_certificates": [apks.builder_cert],
        "contacts": [
            {"name": "张三", "phone": "+86 138 0000 0000", "email": f"dms-{w.tag}@example.org", "role": "负责人"}
        ],
        **over,
    }
    f = w.file_app(**body)
    w.approve(f["id"])
    return f


def add_channel(w: World, name: str, url: str, fingerprint: str | None = None, **cfg: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{name}-{w.tag}",
        "kind": "fdroid",
        "url": url,
        "config": {"backoff_seconds": 0, **cfg},
    }
    if fingerprint:
        body["fingerprint"] = fingerprint
    r = w.client.post("/api/v1/channels", json=body, headers=w.h("hz_reg"))
    assert r.status_code == 201, r.text
    return r.json()
