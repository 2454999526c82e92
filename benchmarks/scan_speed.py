"""Scan speed and memory: MedRisk vs androguard AnalyzeAPK vs the floor, side by side.

For every APK each tool runs in a fresh child process (so peak RSS is its own), and
the child reports the wall time of the work after its imports, plus its peak RSS.
  floor      open the APK with zipfile and inflate every classes*.dex
  medrisk    Scanner().scan_bytes(): full analysis + rules + score
  androguard androguard.misc.AnalyzeAPK (DEX parse + xrefs), the usual peer
Then the whole corpus is scanned with --jobs 1 and --jobs 2 to measure parallel speed-up.

Usage: python benchmarks/scan_speed.py [APK or folder ...] [--no-androguard] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path(os.environ.get("MEDRISK_CORPUS", Path(__file__).resolve().parents[2] / "shared/corpus/apks"))


def work(tool: str, path: str) -> dict:
    if tool == "floor":
        import zipfile

        t0 = time.perf_counter()
        with zipfile.ZipFile(path) as z:
            n = sum(len(z.read(i)) for i in z.namelist() if i.startswith("classes") and i.endswith(".dex"))
        dt = time.perf_counter() - t0
        extra = {"dex_bytes": n}
    elif tool == "medrisk":
        from medrisk.scan import Scanner

        scanner = Scanner()
        t0 = time.perf_counter()
        data = Path(path).read_bytes()
        r = scanner.scan_bytes(data, os.path.basename(path))
        dt = time.perf_counter() - t0
        extra = {"grade": r["risk"]["grade"], "findings": len(r["findings"])}
    else:
        import logging

        from loguru import logger

        logger.remove()
        logging.disable(logging.CRITICAL)
        from androguard.misc import AnalyzeAPK

        t0 = time.perf_counter()
        a, d, dx = AnalyzeAPK(path)
        dt = time.perf_counter() - t0
        extra = {"classes": len(list(dx.get_classes()))}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tool": tool, "seconds": dt, "rss_mb": rss, **extra}


def measure(tool: str, path: str, timeout: float = 600) -> dict:
    p = subprocess.run([sys.executable, __file__, "--worker", tool, path], capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        return {"tool": tool, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout)


def batch(paths: list[str], jobs: int) -> float:
    from medrisk.scan import ScanOptions, scan_paths

    t0 = time.perf_counter()
    results = list(scan_paths(paths, ScanOptions(), jobs=jobs))
    assert len(results) == len(paths)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--no-androguard", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the N largest APKs for the per-APK table")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(work(*args.worker)))
        return
    files: list[str] = []
    for p in args.paths or [str(CORPUS)]:
        files += sorted(str(x) for x in Path(p).glob("*.apk")) if Path(p).is_dir() else [p]
    per_apk = sorted(files, key=lambda f: -os.path.getsize(f))[: args.limit or None]
    tools = ["floor", "medrisk"] + ([] if args.no_androguard else ["androguard"])
    rows = []
    print(f"{'apk':<44}{'MB':>6} " + " ".join(f"{t + ' s':>13}{'MB':>7}" for t in tools) + "  x-floor  x-androguard")
    for f in per_apk:
        res = {t: measure(t, f) for t in tools}
        rows.append((f, res))
        cells = []
        for t in tools:
            r = res[t]
            cells.append(f"{r['seconds']:>13.3f}{r['rss_mb']:>7.0f}" if "seconds" in r else f"{'error':>20}")
        m, fl = res["medrisk"], res["floor"]
        ratio_floor = m["seconds"] / max(fl["seconds"], 1e-4) if "seconds" in m else float("nan")
        ag = res.get("androguard", {})
        ratio_ag = ag["seconds"] / m["seconds"] if "seconds" in ag and "seconds" in m else float("nan")
        print(f"{Path(f).name[:43]:<44}{os.path.getsize(f) / 1e6:>6.1f} " + " ".join(cells)
              + f"  {ratio_floor:>7.1f}  {ratio_ag:>11.1f}")

    def col(tool: str, key: str) -> list[float]:
        return [r[tool][key] for _, r in rows if key in r.get(tool, {})]

    print()
    for t in tools:
        s, m = col(t, "seconds"), col(t, "rss_mb")
        if s:
            print(f"{t:<11} median {statistics.median(s):.3f} s  max {max(s):.3f} s  "
                  f"median RSS {statistics.median(m):.0f} MB  max RSS {max(m):.0f} MB  (n={len(s)})")
    ok = [(r["medrisk"]["seconds"], r["floor"]["seconds"], r.get("androguard", {}).get("seconds"))
          for _, r in rows if "seconds" in r["medrisk"] and "seconds" in r["floor"]]
    # The floor is a few milliseconds on small APKs; ratios use a 20 ms minimum so timer noise does not dominate.
    print(f"medrisk / floor   median ratio {statistics.median(m / max(f, 0.02) for m, f, _ in ok):.2f}  "
          f"(sum {sum(m for m, _, _ in ok):.2f} s / {sum(f for _, f, _ in ok):.2f} s = "
          f"{sum(m for m, _, _ in ok) / max(sum(f for _, f, _ in ok), 1e-9):.2f}x)")
    ag = [(m, a) for m, _, a in ok if a]
    if ag:
        print(f"androguard / medrisk  median speed-up {statistics.median(a / m for m, a in ag):.1f}x  "
              f"(sum {sum(a for _, a in ag):.1f} s / {sum(m for m, _ in ag):.2f} s = "
              f"{sum(a for _, a in ag) / sum(m for m, _ in ag):.1f}x)")
    t1 = batch(files, 1)
    t2 = batch(files, 2)
    print(f"whole set ({len(files)} APKs): --jobs 1 {t1:.2f} s, --jobs 2 {t2:.2f} s, speed-up {t1 / t2:.2f}x "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
