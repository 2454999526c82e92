"""Gate load benchmark (issue 6): decisions/s and p50/p99 latency with 10,000 filed apps, and
offline status-list checks/s in the client library. Prints figures; not a timed test.

    python benchmarks/gate_load.py                       # builds a throwaway platform (SQLite)
    python benchmarks/gate_load.py --filings 10000 --seconds 10 --connections 32
    python benchmarks/gate_load.py --url http://127.0.0.1:8000 --codes codes.txt   # a running service

Three figures:
1. server work: ``Gate.decide`` in process (what one request costs the service);
2. HTTP: ``GET /api/v1/gate`` against uvicorn on loopback in a separate process, driven by a
   small asyncio keep-alive client (the load generator shares the machine's cores);
3. offline: ``GateClient.check`` against the SM2-signed status list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

PASSWORD = "benchmark-keystore-password-1"  # noqa: S105 - a throwaway key store


def _config(data_dir: Path):
    from medrisk.platform.service import ServiceConfig

    return ServiceConfig(data_dir=data_dir, jobs="inline", scan_runner="thread", keystore_iterations=100_000)


def populate(data_dir: Path, n: int, suspended_share: float = 0.1) -> list[str]:
    """n approved filings, each with an authorisation code; a share of them suspended."""
    from medrisk.platform import authcode
    from medrisk.platform.orgs import create_root
    from medrisk.platform.service import build
    from medrisk.store.models import Disposition, Filing, Organisation, utcnow

    ctx = build(_config(data_dir))
    codes: list[str] = []
    with ctx.db.session() as db:
        root = create_root(db, "国家卫生健康委员会")
        org = Organisation(name="基准医院", kind="hospital", parent_id=root.id)
        db.add(org)
        db.flush()
        org.path = f"{root.path}{org.id}/"
        org_id = org.id
    batch = 500
    for start in range(0, n, batch):
        with ctx.db.session() as db:
            for i in range(start, min(n, start + batch)):
                f = Filing(
                    org_id=org_id,
                    name=f"App {i}",
                    package=f"com.bench.app{i}",
                    platform="android",
                    app_type="问诊挂号类",
                    current_version="2.3.1",
                    privacy_policy_url="https://example.org/p",
                    signing_certificates=["ab" * 32],
                    status="approved",
                    approved_revision=1,
                    approved_version_range=">=2.3,<2.4",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                db.add(f)
                db.flush()
                codes.append(authcode.issue(ctx, db, f, None).code)
                if random.random() < suspended_share:  # noqa: S311
                    db.add(
                        Disposition(
                            filing_id=f.id, org_id=org_id, state="suspended", cause="bench", updated_at=utcnow()
                        )
                    )
        print(f"  filed {min(n, start + batch)}/{n}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    ctx.close()
    return codes


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def bench_in_process(data_dir: Path, codes: list[str], seconds: float) -> dict[str, float]:
    from medrisk.platform.service import build

    ctx = build(_config(data_dir))
    gate = ctx.loop.gate
    gate.warm()
    for c in codes:  # first sight of each code verifies its SM2 signature once
        gate.decide(c, "2.3.5")
    lat: list[float] = []
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        c = random.choice(codes)  # noqa: S311
        t = time.perf_counter()
        gate.decide(c, "2.3.5")
        lat.append(time.perf_counter() - t)
        n += 1
    status = gate.status_list()
    ctx.close()
    return {
        "decisions_per_s": n / seconds,
        "p50_us": _pct(lat, 0.5) * 1e6,
        "p99_us": _pct(lat, 0.99) * 1e6,
        "status_list": status,
    }  # type: ignore[dict-item]


async def _http_load(
    host: str, port: int, codes: list[str], seconds: float, conns: int
) -> tuple[int, list[float], int]:
    lat: list[float] = []
    count = denied = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, denied
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < stop:
            code = random.choice(codes)  # noqa: S311
            req = f"GET /api/v1/gate?code={quote(code)}&version=2.3.5 HTTP/1.1\r\nHost: {host}\r\n\r\n"
            t = time.perf_counter()
            writer.write(req.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            body = await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            count += 1
            denied += b'"allow":false' in body
        writer.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return count, lat, denied


def bench_http(
    url: str | None, data_dir: Path | None, codes: list[str], seconds: float, conns: int
) -> dict[str, float]:
    proc = None
    if url is None:
        assert data_dir is not None
        port = 18000 + random.randint(0, 999)  # noqa: S311
        env = {**os.environ, "MEDRISK_KEYSTORE_PASSWORD": PASSWORD}
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir), "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
    host, port = url.split("//")[1].split(":")
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        asyncio.run(_http_load(host, int(port), codes, 2.0, conns))  # warm-up: every code verified once
        count, lat, denied = asyncio.run(_http_load(host, int(port), codes, seconds, conns))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    return {
        "decisions_per_s": count / seconds,
        "p50_ms": _pct(lat, 0.5) * 1e3,
        "p99_ms": _pct(lat, 0.99) * 1e3,
        "denied_share": denied / max(count, 1),
    }


def bench_offline(pem: bytes, status: dict, codes: list[str], seconds: float) -> dict[str, float]:
    from medrisk.loop.gate_client import GateClient

    client = GateClient.from_pem(pem)
    t = time.perf_counter()
    client.load_status_list(json.dumps(status))
    load_ms = (time.perf_counter() - t) * 1e3
    sample = codes[:2000]
    t = time.perf_counter()
    for c in sample:  # the first check of a code verifies its SM2 signature
        client.check(c, "2.3.5")
    first_per_s = len(sample) / (time.perf_counter() - t)
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        client.check(random.choice(sample), "2.3.5")  # noqa: S311
        n += 1
    return {
        "checks_per_s": n / seconds,
        "first_check_per_s": first_per_s,
        "list_verify_ms": load_ms,
        "list_entries": len(status["status_list"]["filings"]),
    }


def serve(data_dir: Path, port: int) -> None:
    import uvicorn

    from medrisk.platform.service import build
    from medrisk.web.app import create_app

    ctx = build(_config(data_dir))
    ctx.loop.gate.warm()
    uvicorn.run(create_app(ctx), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filings", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--url", help="a running service (then --codes FILE: one authorisation code a line)")
    ap.add_argument("--codes")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=8000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("MEDRISK_KEYSTORE_PASSWORD", PASSWORD)
    if args.serve:
        serve(Path(args.serve), args.port)
        return 0
    if args.url:
        codes = Path(args.codes).read_text().split()
        r = bench_http(args.url, None, codes, args.seconds, args.connections)
        print(json.dumps({"http": r}, indent=1))
        return 0
    with tempfile.TemporaryDirectory(prefix="medrisk-gate-bench-") as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        codes = populate(data, args.filings)
        print(f"{args.filings} filings with codes in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        ip = bench_in_process(data, codes, args.seconds)
        status = ip.pop("status_list")
        print(
            f"gate, in process: {ip['decisions_per_s']:,.0f} decisions/s, "
            f"p50 {ip['p50_us']:.1f} µs, p99 {ip['p99_us']:.1f} µs"
        )
        http = bench_http(None, data, codes, args.seconds, args.connections)
        print(
            f"gate, HTTP (uvicorn, loopback, {args.connections} connections): "
            f"{http['decisions_per_s']:,.0f} decisions/s, p50 {http['p50_ms']:.2f} ms, p99 {http['p99_ms']:.2f} ms "
            f"({http['denied_share']:.0%} denied)"
        )
        from medrisk.crypto import KeyStore

        pem = (data / "keys" / KeyStore.SIGNING_PUBLIC_FILE).read_bytes()
        off = bench_offline(pem, status, codes, min(args.seconds, 5.0))
        print(
            f"offline status list ({off['list_entries']} suspended apps, verified in {off['list_verify_ms']:.1f} ms): "
            f"{off['checks_per_s']:,.0f} checks/s (first sight of a code, with its SM2 verification: "
            f"{off['first_check_per_s']:,.0f}/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
