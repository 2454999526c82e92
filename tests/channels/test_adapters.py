"""Adapters and HTTP on real repositories and servers: F-Droid v2 and v1 with their signatures,
a tampered or rolled-back index refused, the JSON feed's validation (against its schema file),
the folder adapter, resumable and hash-checked downloads, retries."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from medrisk.channels.adapters import Adapter, adapter_class, register_adapter
from medrisk.channels.adapters.feed import parse_feed
from medrisk.channels.fetch import HttpClient
from medrisk.channels.model import ChannelError, FetchResult, Listing
from tests.channels.conftest import PACKAGE, RepoServer, make_repo

FEED_SCHEMA = Path(__file__).resolve().parents[2] / "src/medrisk/channels/feed.schema.json"


def _client() -> HttpClient:
    return HttpClient(retries=1, backoff=0, rate_per_second=0)


def test_fdroid_v2_and_v1_list_the_same_apks(repos, apks):
    url = repos.url(repos.thirdparty)
    v2 = adapter_class("fdroid")(url, {"index": "v2"}, _client()).fetch({})
    v1 = adapter_class("fdroid")(url, {"index": "v1"}, _client()).fetch({})
    assert v2.info["signer"] == v1.info["signer"] == repos.thirdparty.fingerprint
    key = lambda r: sorted((x.package, x.version_code, x.apk_sha256, tuple(x.signer_sha256)) for x in r.listings)  # noqa: E731
    assert key(v2) == key(v1)
    tampered = [x for x in v2.listings if x.package == PACKAGE][0]
    assert tampered.signer_sha256 == [apks.attacker_cert]
    blood = [x for x in v2.listings if x.package == "fr.mobdev.blooddonation"][0]
    assert blood.categories == ["Medical"] and blood.developer == "mobdev"
    # incremental: the same index is "unchanged" by HTTP (Last-Modified) and by timestamp
    again = adapter_class("fdroid")(url, {}, _client()).fetch(v2.state)
    assert again.listings is None


def test_fdroid_refuses_wrong_fingerprint_tampered_and_rolled_back_index(tmp_path, fdroid_key, apks):
    repo = make_repo(fdroid_key, tmp_path / "evil", [apks.official])
    srv = RepoServer(tmp_path)
    try:
        url = f"{srv.base}/evil/repo"
        with pytest.raises(ChannelError, match="repository fingerprint"):
            adapter_class("fdroid")(url, {"fingerprint": "00" * 32}, _client()).fetch({})
        good = adapter_class("fdroid")(url, {"fingerprint": repo.fingerprint}, _client()).fetch({})
        assert len(good.listings) == 1
        # an edited index-v2.json no longer matches the digest signed in entry.jar
        index = repo.repo / "index-v2.json"
        doc = json.loads(index.read_text())
        doc["packages"][PACKAGE]["metadata"]["name"] = {"en-US": "Evil"}
        index.write_text(json.dumps(doc))
        with pytest.raises(ChannelError, match="tampered index"):
            adapter_class("fdroid")(url, {"index": "v2"}, _client()).fetch({})
        # a signed index older than the last one seen is a rollback
        state = dict(good.state, timestamp=good.state["timestamp"] + 1000, http={})
        with pytest.raises(ChannelError, match="rollback"):
            adapter_class("fdroid")(url, {"index": "v1"}, _client()).fetch({**state, "format": "v1"})
        # an unsigned / garbage entry.jar
        (repo.repo / "entry.jar").write_bytes(b"PK\x03\x04 not really")
        with pytest.raises(ChannelError, match="signed JAR|not signed"):
            adapter_class("fdroid")(url, {"index": "v2"}, _client()).fetch({})
    finally:
        srv.close()


def _feed(**over: Any) -> dict[str, Any]:
    app = {
        "package": "cn.example.hospital",
        "name": "某某医院",
        "version_name": "3.2.1",
        "version_code": 321,
        "developer": "某某医院信息科",
        "downloads": 12000,
        "rating": 4.5,
        "released_at": "2026-11-30T08:00:00Z",
        "apk_url": "apks/hospital-3.2.1.apk",
        "apk_sha256": "ab" * 32,
        "signer_sha256": ["cd" * 32],
    }
    app.update(over)
    return {"schema": "medrisk-channel-feed/1", "generated_at": "2026-12-01T00:00:00Z", "apps": [app]}


def test_feed_schema_and_validator_agree():
    schema = json.loads(FEED_SCHEMA.read_text())
    good = _feed()
    jsonschema.validate(good, schema)
    listings, generated = parse_feed(good, "https://store.example/feed.json")
    assert listings[0].apk_url == "https://store.example/apks/hospital-3.2.1.apk"
    assert listings[0].downloads == 12000 and generated.year == 2026
    for bad, field in [
        (_feed(rating=9), "rating"),
        (_feed(apk_sha256="xyz"), "apk_sha256"),
        (_feed(version_code=-1), "version_code"),
        (_feed(package=""), "package"),
        (_feed(signer_sha256=["nothex"]), "signer_sha256"),
        (_feed(released_at="yesterday"), "released_at"),
    ]:
        if field != "released_at":  # "format" is an annotation unless a format checker package is installed
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, schema)
        with pytest.raises(ChannelError, match=f"feed.apps\\[0\\].{field}"):
            parse_feed(bad, "https://store.example/feed.json")
    with pytest.raises(ChannelError, match="feed.schema"):
        parse_feed({"apps": []}, "x")


def test_folder_adapter_reads_apks_and_skips_unchanged(tmp_path, apks):
    d = tmp_path / "drop"
    d.mkdir()
    shutil.copy(apks.official, d / "a.apk")
    (d / "broken.apk").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    a = adapter_class("folder")(str(d), {}, _client())
    first = a.fetch({})
    assert [x.package for x in first.listings] == [PACKAGE]
    assert first.listings[0].signer_sha256 == [apks.builder_cert]
    assert first.info["unreadable"] and "broken.apk" in first.info["unreadable"][0]
    assert a.fetch(first.state).listings is None
    with pytest.raises(ChannelError, match="not a folder"):
        adapter_class("folder")(str(tmp_path / "missing"), {}, _client()).fetch({})


def test_plugin_adapter_by_registration_and_module_path():
    @register_adapter
    class StoreApi(Adapter):
        kind = "test-store"

        def fetch(self, state: dict[str, Any]) -> FetchResult:
            return FetchResult([Listing(package="p", version_name="1")], {})

    assert adapter_class("test-store") is StoreApi
    assert adapter_class("medrisk.channels.adapters.feed:FeedAdapter").kind == "feed"
    with pytest.raises(ChannelError, match="unknown channel kind"):
        adapter_class("nope")
    with pytest.raises(ChannelError, match="not a channel adapter"):
        adapter_class("json:dumps")


class _Flaky(BaseHTTPRequestHandler):
    """Serves ``body`` with Range support; fails the first ``fail`` requests; cuts the first transfer."""

    body = b""
    fail = 0
    cut = False
    seen: list[str] = []

    def log_message(self, *a: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        cls = type(self)
        cls.seen.append(self.headers.get("Range") or "")
        if cls.fail > 0:
            cls.fail -= 1
            self.send_error(503)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        data = cls.body[start:]
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cls.cut:
            cls.cut = False
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)


@pytest.fixture
def flaky():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}/x.apk"
    srv.shutdown()
    srv.server_close()


def test_download_retries_resumes_and_checks_the_hash(tmp_path, flaky):
    import hashlib

    _, url = flaky
    body = bytes(range(256)) * 4000
    _Flaky.body, _Flaky.fail, _Flaky.cut, _Flaky.seen = body, 2, False, []
    sha = hashlib.sha256(body).hexdigest()
    c = HttpClient(retries=3, backoff=0, rate_per_second=0)
    assert c.download(url, tmp_path / "a.apk", sha256=sha, size=len(body), max_bytes=10 << 20) == sha
    assert len(_Flaky.seen) == 3  # two 503s retried

    _Flaky.cut, _Flaky.seen = True, []
    with pytest.raises(ChannelError, match="incomplete|will resume|Connection|attempts"):
        c.download(url, tmp_path / "b.apk", sha256=sha, size=len(body), max_bytes=10 << 20)
    assert c.download(url, tmp_path / "b.apk", sha256=sha, size=len(body), max_bytes=10 << 20) == sha
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in _Flaky.seen), _Flaky.seen  # resumed
    assert (tmp_path / "b.apk").read_bytes() == body

    with pytest.raises(ChannelError, match="does not match"):
        c.download(url, tmp_path / "c.apk", sha256="00" * 32, size=len(body), max_bytes=10 << 20)
    assert not (tmp_path / "c.apk").exists() and not (tmp_path / "c.apk.part").exists()
    with pytest.raises(ChannelError, match="exceeds the download limit"):
        c.download(url, tmp_path / "d.apk", sha256=sha, size=len(body), max_bytes=1000)
    with pytest.raises(ChannelError, match="only http"):
        c.get("file:///etc/passwd")
