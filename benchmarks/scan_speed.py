"""Scan speed and memory: MedRisk vs androguard AnalyzeAPK vs the floor, side by side.

For every APK each tool runs in a fresh child process (so peak RSS is its own), and
the child reports the wall time of the work after its imports, plus its peak RSS.
  floor      open the APK with zipfile and inflate every classes*.dex
  medrisk    Scanner().scan_bytes(): full analysis + rules + score
  androguard androguard.misc.AnalyzeAPK (DEX parse + xrefs), the usual peer
Then the whole corpus is scanned with --jobs 1 and --jobs 2, three interleaved times, for the parallel speed-up.

Conditions, so that every tool is measured as an installed user runs it:
  * Bytecode. pip compiles an installed package's .pyc files (androguard's, like the standard
    library's, are on disk); MedRisk is an editable install, and with PYTHONDONTWRITEBYTECODE
    set (as on this machine) every child process recompiled all of MedRisk's sources, ~0.1 s
    that no installed user pays. The script now compiles MedRisk's bytecode first, as
    `pip install` does (compileall, into the usual __pycache__ folders).
  * MedRisk's cache (src/medrisk/datafiles.py): parsed data tables and the validated rule
    library, keyed by their content. The children use a private cache folder, filled by one
    cold run before timing; that cold run (cache empty: YAML parsing, rule validation) is
    reported on its own line. The cache holds no scan results: every APK is fully analysed
    and every rule evaluated in every run.

Usage: python benchmarks/scan_speed.py [APK or folder ...] [--no-androguard] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(os.environ.get("MEDRISK_CORPUS", Path(__file__).resolve().parents[2] / "shared/corpus/apks"))
# Measure this checkout's MedRisk, not whichever clone `pip install -e` last pointed at (on a
# shared machine that can be another engineer's tree): its src/ goes first on the children's path.
SRC = Path(__file__).resolve().parents[1] / "src"
os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
sys.path.insert(0, str(SRC))


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
    """Run one tool on one APK in a fresh interpreter: `process` is the whole run (start-up,
    imports, work), as a command-line user pays it; `seconds` is the work after the imports."""
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, __file__, "--worker", tool, path], capture_output=True, text=True, timeout=timeout
    )
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        return {"tool": tool, "error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout) | {"process": elapsed}


def prepare() -> None:
    """Compile MedRisk's bytecode (as `pip install` does) and give the children a private cache."""
    import compileall

    import medrisk

    if not compileall.compile_dir(os.path.dirname(medrisk.__file__), quiet=1):
        print("warning: could not compile MedRisk's bytecode; its start-up includes compiling", file=sys.stderr)
    os.environ["MEDRISK_CACHE_DIR"] = tempfile.mkdtemp(prefix="medrisk-bench-cache-")
    os.environ.pop("MEDRISK_NO_CACHE", None)


def p95(xs: list[float]) -> float:
    """95th percentile (nearest rank)."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, -(-95 * len(ys) // 100) - 1))]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


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
    prepare()
    import medrisk

    print(f"medrisk measured from {Path(medrisk.__file__).parent}; start {load()}")
    median_apk = sorted(files, key=os.path.getsize)[len(files) // 2]
    cold = measure("medrisk", median_apk)  # fills the cache
    warm = [measure("medrisk", median_apk)["process"] for _ in range(3)]
    print(
        f"medrisk start-up on {Path(median_apk).name}: cold cache {cold['process']:.3f} s, "
        f"warm cache {statistics.median(warm):.3f} s (median of 3)"
    )
    rows = []
    head = " ".join(f"{t[:10] + ' proc/work s':>24}{'MB':>6}" for t in tools)
    print(f"{'apk':<40}{'MB':>5} {head}   med/floor(proc)  ag/med(proc)")
    for f in per_apk:
        res = {t: measure(t, f) for t in tools}
        rows.append((f, res))
        cells = []
        for t in tools:
            r = res[t]
            ok = "seconds" in r
            cells.append(f"{r['process']:>12.3f}/{r['seconds']:<11.3f}{r['rss_mb']:>6.0f}" if ok else f"{'error':>30}")
        m, fl, ag = res["medrisk"], res["floor"], res.get("androguard", {})
        r_floor = m["process"] / fl["process"] if "process" in m and "process" in fl else float("nan")
        r_ag = ag["process"] / m["process"] if "process" in ag and "process" in m else float("nan")
        print(
            f"{Path(f).name[:39]:<40}{os.path.getsize(f) / 1e6:>5.1f} "
            + " ".join(cells)
            + f"   {r_floor:>15.2f}  {r_ag:>12.1f}"
        )

    def col(tool: str, key: str, subset: list | None = None) -> list[float]:
        return [r[tool][key] for _, r in (subset or rows) if key in r.get(tool, {})]

    def dist(xs: list[float], fmt: str = ".3f") -> str:
        return f"median {statistics.median(xs):{fmt}}, p95 {p95(xs):{fmt}}, max {max(xs):{fmt}}"

    print()
    for t in tools:
        s, pr, m = col(t, "seconds"), col(t, "process"), col(t, "rss_mb")
        if s:
            print(f"{t:<11} process s: {dist(pr)}; work s: {dist(s)}; peak RSS MB: {dist(m, '.0f')} (n={len(s)})")
    large = [(f, r) for f, r in rows if os.path.getsize(f) >= 1e6]
    for label, subset in (("all APKs", rows), (f"{len(large)} APKs >= 1 MB", large)):
        both = [r for _, r in subset if "process" in r["medrisk"] and "process" in r["floor"]]
        if not both:
            continue
        proc = [r["medrisk"]["process"] / r["floor"]["process"] for r in both]
        work_r = [r["medrisk"]["seconds"] / max(r["floor"]["seconds"], 1e-3) for r in both]
        print(
            f"medrisk / floor ({label}), whole process: {dist(proc, '.2f')}; sum "
            f"{sum(r['medrisk']['process'] for r in both):.1f} s / {sum(r['floor']['process'] for r in both):.1f} s; "
            f"work only (floor >= 1 ms): median {statistics.median(work_r):.1f}x"
        )
        ag = [r for _, r in subset if "process" in r.get("androguard", {}) and "process" in r["medrisk"]]
        if ag:
            proc = [r["androguard"]["process"] / r["medrisk"]["process"] for r in ag]
            work_r = [r["androguard"]["seconds"] / r["medrisk"]["seconds"] for r in ag]
            print(
                f"androguard AnalyzeAPK / medrisk ({label}), whole process: median {statistics.median(proc):.1f}x "
                f"(min {min(proc):.1f}x), sum {sum(r['androguard']['process'] for r in ag):.1f} s / "
                f"{sum(r['medrisk']['process'] for r in ag):.1f} s; work only: median {statistics.median(work_r):.1f}x "
                f"(min {min(work_r):.1f}x), sum {sum(r['androguard']['seconds'] for r in ag):.1f} s / "
                f"{sum(r['medrisk']['seconds'] for r in ag):.1f} s"
            )
    # One pass over the corpus takes ~4 s, so a single pair of passes moved by ±0.4x between runs on
    # this shared machine; three interleaved pairs, and the median of their ratios, are reported.
    pairs = [(batch(files, 1), batch(files, 2)) for _ in range(3)]
    ratios = [a / b for a, b in pairs]
    print(
        f"whole set ({len(files)} APKs), 3 interleaved pairs: --jobs 1 / --jobs 2 "
        + ", ".join(f"{a:.2f}/{b:.2f} s" for a, b in pairs)
        + f"; speed-up median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x) "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"end {load()}")


if __name__ == "__main__":
    main()
