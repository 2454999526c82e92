"""Channel monitoring speed (issue 7): crawl and diff a synthetic channel of 50,000 listings against
10,000 filed apps.

    python benchmarks/channel_crawl.py [--listings 50000] [--filings 10000] [--db-url URL]

What it does:
1. Seeds a SQLite database (migrations as `medrisk serve` runs them; `--db-url` for PostgreSQL):
   a national root, 31 provinces, 3,100 institutions and the approved filings (Chinese names built
   from a medical vocabulary, packages, signing certificates, current versions).
2. Writes a JSON feed (the `feed` adapter's schema) with the listings and serves it over HTTP on
   loopback with ETag / Last-Modified: 10 % genuine copies of filed apps (same package and signer,
   a third of them at another version), 0.5 % tampered copies (filed package, another signer),
   1 % look-alikes (a filed name with a suffix, or the institution as developer), the rest other
   apps (some medical: the unfiled inventory).
3. In a fresh child process (so its peak RSS is the crawl's, not the seeding's), times:
   - the first crawl: fetch, validate, store 50,000 listings with their first observation, match
     every listing against every filing (name and pinyin similarity, containment, developer),
     store the verdicts and raise the closed-loop events;
   - an unchanged re-crawl (HTTP 304, the normal case between crawls);
   - a full re-read of the same content (ETag and timestamp forgotten: parse, validate and diff
     all 50,000 listings, nothing new to match);
   and reads the peak RSS.
4. The floor, in the same child: `json.loads` of the same feed, a dict diff of its keys against
   the previous crawl's, and rapidfuzz `process.cdist` of the 50,000 names against the 10,000
   filed names (text and pinyin) — the bare library calls any implementation needs, without
   storage, history, verdicts or events. Printed with the ratio.
Targets: first crawl <= 30 s, memory <= 500 MB, unchanged re-crawl <= 2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import insert  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
WORDS = "健康 医院 人民 中医 妇幼 儿童 口腔 眼科 肿瘤 心血管 协和 同仁 仁济 华山 湘雅 齐鲁".split()
WORDS += "华西 瑞金 附属 第一 第二 第三 中心".split()
CITIES = "杭州 宁波 温州 南京 苏州 无锡 广州 深圳 成都 武汉 长沙 西安 济南 青岛 郑州 合肥 福州 厦门 昆明 贵阳".split()
SUFFIX = "掌上医院 互联网医院 在线问诊 预约挂号 健康通 云医院 医生 便民服务 智慧医疗 健康管家".split()
OTHER = "天气 相机 音乐 日历 地图 记账 阅读 翻译 笔记 健身 购物 外卖 出行 游戏 视频 新闻 理财 词典 壁纸 时钟".split()


def _name(rng: random.Random) -> str:
    return rng.choice(CITIES) + rng.choice(WORDS) + rng.choice(WORDS) + rng.choice(SUFFIX)


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def seed(url: str, data_dir: Path, n_filings: int, rng: random.Random) -> list[dict]:
    from medrisk.store import migrate
    from medrisk.store.db import Database
    from medrisk.store.models import Filing, Organisation

    migrate.upgrade(url)
    db = Database(url)
    with db.session() as s:
        root = Organisation(name="国家卫生健康委员会", kind="national", region_code="100000")
        s.add(root)
        s.flush()
        root.path = f"/{root.id}/"
        insts = []
        for p in range(31):
            prov = Organisation(name=f"省卫生健康委员会{p:02d}", kind="provincial", parent_id=root.id)
            s.add(prov)
            s.flush()
            prov.path = f"{root.path}{prov.id}/"
            for i in range(100):  # 3,100 institutions: about 3 apps each, as filed hospitals have
                name = f"{CITIES[(p + i) % len(CITIES)]}市第{p * 100 + i + 1}人民医院"
                inst = Organisation(name=name, kind="hospital", parent_id=prov.id)
                s.add(inst)
                s.flush()
                inst.path = f"{prov.path}{inst.id}/"
                insts.append((inst.id, name))
    filings, names = [], set()
    for i in range(n_filings):
        name = _name(rng)
        while name in names:
            name = _name(rng) + str(rng.randint(2, 99))
        names.add(name)
        org_id, inst_name = insts[i % len(insts)]
        filings.append(
            {
                "id": i + 1,
                "org_id": org_id,
                "name": name,
                "package": f"cn.hospital{i}.app",
                "platform": "android",
                "app_type": "问诊挂号类",
                "current_version": f"3.{i % 5}",
                "privacy_policy_url": "https://example.org/p",
                "channels": [],
                "sdks": [],
                "contacts_enc": [],
                "signing_certificates": [_hex(f"signer{i}")],
                "status": "approved",
                "revision": 1,
                "approved_revision": 1,
                "approved_version_range": f">=3.{i % 5},<3.{i % 5 + 1}",
                "created_at": NOW,
                "updated_at": NOW,
                "_institution": inst_name,
            }
        )
    with db.session() as s:
        rows = [{k: v for k, v in f.items() if not k.startswith("_")} for f in filings]
        for start in range(0, len(rows), 2000):
            s.execute(insert(Filing), rows[start : start + 2000])
    db.dispose()
    return filings


def feed(filings: list[dict], n: int, rng: random.Random) -> tuple[dict, dict[str, int]]:
    apps, kinds = [], {"genuine": 0, "tampered": 0, "lookalike": 0, "other": 0}
    for i in range(n):
        f = filings[rng.randrange(len(filings))]
        r = rng.random()
        entry = {"version_code": 100 + i % 50, "downloads": rng.randint(0, 10**6), "rating": round(rng.random() * 5, 1)}
        if r < 0.10:  # genuine, a third at another patch version
            kinds["genuine"] += 1
            v = f["current_version"] + (".1" if i % 3 == 0 else "")
            entry |= {"package": f["package"], "name": f["name"], "version_name": v}
            entry |= {"signer_sha256": f["signing_certificates"], "developer": f["_institution"]}
        elif r < 0.105:
            kinds["tampered"] += 1
            entry |= {"package": f["package"], "name": f["name"], "version_name": f["current_version"]}
            entry |= {"signer_sha256": [_hex(f"attacker{i}")], "developer": "某科技有限公司"}
        elif r < 0.115:
            kinds["lookalike"] += 1
            if i % 2:
                entry |= {"package": f"com.fake{i}.app", "name": f["name"] + "Plus", "version_name": "1.0"}
            else:
                entry |= {"package": f"com.fake{i}.app", "name": "便民" + rng.choice(OTHER), "version_name": "1.0"}
                entry["developer"] = f["_institution"] + "信息科"
        else:
            kinds["other"] += 1
            name = rng.choice(OTHER) + rng.choice(OTHER) + str(i)
            cats = ["Medical"] if i % 40 == 0 else ["Tools"]
            entry |= {"package": f"org.other{i}.app", "name": name, "version_name": f"{i % 9}.{i % 7}"}
            entry |= {"categories": cats, "developer": f"开发者{i % 997}"}
        apps.append(entry)
    return {"schema": "medrisk-channel-feed/1", "generated_at": NOW.isoformat(), "apps": apps}, kinds


class _Feed(BaseHTTPRequestHandler):
    body: bytes = b""
    etag = '"v1"'

    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def child(args: argparse.Namespace) -> None:
    """The measured part, in its own process: the platform as `medrisk serve` builds it."""
    from medrisk.platform.principal import SYSTEM
    from medrisk.platform.service import ServiceConfig, build
    from medrisk.store.models import Channel

    ctx = build(
        ServiceConfig(
            data_dir=Path(args.data_dir),
            db_url=args.db_url,
            jobs="inline",
            scan_runner="thread",
            allow_generated_keystore_password=True,
            keystore_iterations=100_000,
            migrate=False,
        )
    )
    svc = ctx.channels
    with ctx.db.session() as db:
        ch = svc.add(db, SYSTEM, name="bench", kind="feed", url=args.feed_url, config={"download": False})
        cid = ch.id
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict = {}
    t = time.perf_counter()
    rep = svc.crawl(cid)
    out["first"] = time.perf_counter() - t
    out["first_counts"] = rep.counts
    assert rep.status == "ok", rep.to_dict()
    t = time.perf_counter()
    rep = svc.crawl(cid)
    out["unchanged_304"] = time.perf_counter() - t
    assert rep.status == "unchanged", rep.to_dict()
    with ctx.db.session() as db:
        db.get(Channel, cid).state = {**db.get(Channel, cid).state, "http": {}, "generated_at": None}
    t = time.perf_counter()
    rep = svc.crawl(cid)
    out["full_reread"] = time.perf_counter() - t
    out["reread_counts"] = rep.counts
    out["rss_start_mb"] = rss0
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["floor"] = floor(Path(args.feed_path), args.filings_path)
    print(json.dumps(out))


def floor(feed_path: Path, filings_path: str) -> float:
    import numpy as np
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    from medrisk.channels import names

    filed = json.loads(Path(filings_path).read_text())
    t = time.perf_counter()
    doc = json.loads(feed_path.read_bytes())
    prev = {f"{a['package']}@{a['version_name']}" for a in doc["apps"][::2]}
    current = {f"{a['package']}@{a['version_name']}": a for a in doc["apps"]}
    _new = [k for k in current if k not in prev]
    for convert in (names.normalise, names.pinyin):
        choices = [convert(n) for n in filed]
        queries = [convert(a["name"]) for a in doc["apps"]]
        for start in range(0, len(queries), 2000):
            process.cdist(
                queries[start : start + 2000],
                choices,
                scorer=Indel.normalized_similarity,
                score_cutoff=0.85,
                dtype=np.float32,
                workers=-1,
            )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listings", type=int, default=50_000)
    ap.add_argument("--filings", type=int, default=10_000)
    ap.add_argument("--db-url", help="default: a SQLite file in a temporary directory")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--feed-url", help=argparse.SUPPRESS)
    ap.add_argument("--feed-path", help=argparse.SUPPRESS)
    ap.add_argument("--filings-path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if os.environ.get("MEDRISK_BENCH_PROFILE"):  # cProfile the child: python -m pstats FILE
            import cProfile

            cProfile.runctx("child(args)", globals(), {"args": args}, os.environ["MEDRISK_BENCH_PROFILE"])
        else:
            child(args)
        return
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="medrisk-bench-channels-") as tmp:
        data = Path(tmp)
        url = args.db_url or f"sqlite:///{data / 'medrisk.db'}"
        t = time.perf_counter()
        filings = seed(url, data, args.filings, rng)
        doc, kinds = feed(filings, args.listings, rng)
        body = json.dumps(doc, ensure_ascii=False).encode()
        (data / "feed.json").write_bytes(body)
        (data / "filings.json").write_text(json.dumps([f["name"] for f in filings], ensure_ascii=False))
        print(
            f"seeded {args.filings} filings and a {len(body) / 1e6:.1f} MB feed of {args.listings} listings {kinds} "
            f"in {time.perf_counter() - t:.1f} s"
        )
        _Feed.body = body
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cmd = [sys.executable, __file__, "--child", "--data-dir", str(data), "--db-url", url]
        cmd += [
            "--feed-url",
            f"http://127.0.0.1:{server.server_port}/feed.json",
            "--feed-path",
            str(data / "feed.json"),
        ]
        cmd += ["--filings-path", str(data / "filings.json")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        server.shutdown()
        if proc.returncode:
            sys.exit(f"child failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    c = r["first_counts"]
    store = url.split(":", 1)[0].split("+")[0]
    print(f"store: {store}; {args.listings} listings x {args.filings} filings")
    print(
        f"first crawl            {r['first']:7.2f} s   (target <= 30 s)  new={c.get('new')} matched={c.get('matched')} "
        f"tampered={c.get('verdict_tampered')} lookalike={c.get('verdict_lookalike')} drift={c.get('verdict_drift')} "
        f"unfiled={c.get('verdict_unfiled')} events={c.get('events')}"
    )
    print(f"unchanged re-crawl     {r['unchanged_304']:7.3f} s   (target <= 2 s; HTTP 304)")
    print(
        f"full re-read, same     {r['full_reread']:7.2f} s   (ETag forgotten; new={r['reread_counts'].get('new')} "
        f"changed={r['reread_counts'].get('changed')} matched={r['reread_counts'].get('matched')})"
    )
    print(
        f"peak RSS               {r['rss_peak_mb']:7.0f} MB  (target <= 500 MB; "
        + f"{r['rss_start_mb']:.0f} MB after start-up)"
    )
    print(
        f"floor (json.loads + key diff + rapidfuzz cdist text+pinyin, no storage) {r['floor']:.2f} s; "
        f"first crawl / floor = {r['first'] / r['floor']:.1f}x"
    )


if __name__ == "__main__":
    main()
