"""Code-level facts from DEX bytes: watched API call sites, security-relevant overrides,
static field reads, string constants (URLs, IPs, e-mails, secrets) and obfuscation.

Speed is the design constraint (a scan must stay within a few times the cost of
inflating the DEX files), so nothing here disassembles the whole program:

1. The *ids* of interesting things are computed first, from the sorted id tables: method
   ids of watched APIs (apis.yaml, plus calls made through app subclasses such as
   ``MainActivity.getSharedPreferences``), field ids of watched static fields, string ids of
   interesting strings (found by scanning the string-data bytes with regexes, never by
   decoding every string).
2. The code section is searched for the instruction bytes that could reference those ids
   (``invoke-*`` / ``const-string`` / ``sget*`` followed by a 16-bit index) with compiled
   byte regexes; hits are mapped to their method by bisecting the sorted method bodies.
3. Only methods that contain a hit are decoded, linearly, which confirms that the hit is an
   instruction boundary and gives the constant values held in registers (``const-string``,
   ``const/4`` ... and ``String.getBytes()`` of a constant) at the call, so
   ``Cipher.getInstance("AES/ECB/PKCS5Padding")`` is reported with its argument.

The analysis is intra-procedural and flow-insensitive inside a method (a constant assigned
on one branch is still seen after the merge), which is the usual trade-off of fast
scanners. Problems with one DEX file are recorded in ``errors``; the others are analysed.

Conventions of the output beyond docs/indicators.md:

* ``args`` has one entry per declared parameter (the receiver of instance calls excluded):
  a constant string, an int (``const*``; booleans are 0/1), ``"bytes:<hex>"`` for a constant
  ``byte[]`` (``new-array`` + ``fill-array-data``, e.g. a static IV), else null. A constant 0
  passed for a reference parameter is the ``null`` literal and is reported as null.
* Code inside the bundled platform libraries (``android.*`` incl. the support library,
  ``androidx.*``, ``kotlin(x).*``, ``java(x).*``, ``dalvik.*``) is not the app's behaviour:
  its call sites, field reads and overrides are not reported.
* At most MAX_CALLS_PER_API call sites per API (MAX_FIELD_READS per field) and
  MAX_LOCATIONS locations per string value are reported; a location without debug
  information has ``line`` null, and identical locations are merged.
* Secret kinds: those of docs/indicators.md plus ``crypto_key`` (a constant passed as key
  material to ``SecretKeySpec``), ``stripe_secret_key``, ``sendgrid_key``, ``twilio_key`` and
  ``slack_webhook``. ``password`` also covers ``PBEKeySpec`` constants; a constant stored
  into a secret-named String field (``key``, ``apiKey``, ``AES_KEY``, ``mPassword``) is
  ``password`` or ``generic_api_key`` by the field name. The entropy-based
  ``generic_api_key`` is reported only when app code (outside the framework prefixes)
  loads the constant.

Module layout: this module holds the entry point (``code_facts``) and re-exports the public
names; ``code_results`` has the result types, ``catalog`` the watched-API catalogue,
``dexscan`` the per-package/per-DEX scanning, ``flow`` the method decoder (constants, taint)
and ``strings`` the string classification (URLs, IPs, secrets, entropy).
"""

from __future__ import annotations

import re
import struct

from medrisk.analysis.catalog import ApiCatalog, api_category, load_catalog
from medrisk.analysis.code_results import (
    FRAMEWORK_PREFIXES,
    MAX_LOCATIONS,
    OBFUSCATION_MIN_CLASSES,
    OBFUSCATION_THRESHOLD,
    CodeFacts,
    DexSummary,
    StringFacts,
    _loc_key,
)
from medrisk.analysis.dex import (
    TYPE_CODE_ITEM,
    DexFile,
    descriptor_to_java,
    java_to_descriptor,
)
from medrisk.analysis.dexscan import _DexScan, _Program
from medrisk.analysis.errors import AnalysisError, LimitExceeded
from medrisk.analysis.limits import DEFAULT_LIMITS, Limits
from medrisk.analysis.strings import classify_secret, shannon_entropy

__all__ = [
    "MAX_LOCATIONS",
    "ApiCatalog",
    "CodeFacts",
    "StringFacts",
    "api_category",
    "classify_secret",
    "code_facts",
    "load_catalog",
    "shannon_entropy",
]


def _simple_name(java_name: str) -> str | None:
    """Simple name used by the obfuscation ratio; None for classes that never carry a
    meaningful name (anonymous/synthetic classes, R and BuildConfig)."""
    simple = java_name.rsplit(".", 1)[-1]
    outer = simple.split("$", 1)[0]
    if outer in ("R", "BuildConfig") or "$$" in simple or "-$" in simple:
        return None
    inner = simple.rsplit("$", 1)[-1]
    if not inner or inner.isdigit():
        return None
    return inner


def code_facts(dex_files: list[tuple[str, bytes]], limits: Limits = DEFAULT_LIMITS) -> tuple[CodeFacts, StringFacts]:
    """Analyse the DEX files of a package (``[(name, bytes)]`` in Android load order)."""
    catalog = load_catalog()
    facts = CodeFacts()
    dexes: list[DexFile] = []
    for name, data in dex_files:
        if len(data) > limits.max_dex_bytes:
            raise LimitExceeded("dex_too_large", f"{name} is {len(data)} bytes (limit {limits.max_dex_bytes})")
        try:
            dexes.append(DexFile(data, name))
        except AnalysisError as exc:
            facts.errors.append(f"{exc.code}: {exc.message}")
    prog = _Program(catalog, [])
    loaded: list[DexFile] = []
    for dex in dexes:
        try:
            prog.load_classes(len(loaded), dex)
        except (AnalysisError, IndexError, ValueError, struct.error) as exc:
            facts.errors.append(_describe(dex.name, exc))
            continue
        loaded.append(dex)
    prog.dexes = loaded
    prog.compute_relevant()

    for di, dex in enumerate(loaded):
        scan = _DexScan(prog, di, dex)
        try:
            scan.find_watched_methods()
            scan.find_watched_fields()
            scan.collect_strings()
            scan.find_secret_fields()
            scan.resolve(scan.scan())
            scan.find_overrides()
        except (AnalysisError, IndexError, ValueError, KeyError, struct.error, RecursionError) as exc:
            facts.errors.append(_describe(dex.name, exc))

    _mark_instantiated(prog, loaded)

    # ------------------------------------------------------------ assemble
    facts.dex = [DexSummary(d.name, d.class_defs_size, d.method_ids_size, d.string_ids_size, d.version) for d in loaded]
    facts.classes = len(prog.defined)
    facts.methods = sum(d.method_ids_size for d in loaded)
    java_names = [descriptor_to_java(d) for d in prog.defined]
    facts.class_names = frozenset(java_names)
    facts.packages = sorted({n.rsplit(".", 1)[0] for n in java_names if "." in n})
    app = [s for n in java_names if not n.startswith(FRAMEWORK_PREFIXES) and (s := _simple_name(n)) is not None]
    if app:
        facts.short_class_ratio = round(sum(1 for s in app if len(s) <= 2) / len(app), 4)
    facts.obfuscated = len(app) >= OBFUSCATION_MIN_CLASSES and facts.short_class_ratio >= OBFUSCATION_THRESHOLD
    facts.calls = sorted(prog.calls, key=lambda c: (c.api, _loc_key(c.location), c.pc))
    facts.field_reads = sorted(prog.field_reads, key=lambda f: (f.field, _loc_key(f.location)))
    facts.overrides = sorted(prog.overrides, key=lambda o: (o.base, o.method, o.cls, _loc_key(o.location)))

    col = prog.strings
    sfacts = StringFacts()
    for obj in [*col.urls.values(), *col.ips.values(), *col.emails.values(), *col.secrets.values()]:
        obj.locations.sort(key=_loc_key)
    sfacts.urls = sorted(col.urls.values(), key=lambda u: u.value)
    sfacts.ips = sorted((i for i in col.ips.values() if i.in_url or i.locations), key=lambda i: i.value)
    sfacts.emails = sorted(col.emails.values(), key=lambda e: e.value)
    sfacts.domains = sorted(col.domains)
    sfacts.secrets = sorted(col.secrets.values(), key=lambda s: (s.kind, s.value))
    return facts, sfacts


def _mark_instantiated(prog: _Program, dexes: list[DexFile]) -> None:
    """``Override.instantiated``: some code creates the class (``new-instance``) or takes its
    ``const-class`` (reflection, Intent targets), other than the class's own constructors."""
    classes = {java_to_descriptor(o.cls) for o in prog.overrides}
    if not classes:
        return
    seen: set[str] = set()
    for di, dex in enumerate(dexes):
        try:
            types = dex.type_table()
            ids = {types[d]: d for d in classes if d in types and d not in seen}
            ids = {i: d for i, d in ids.items() if i < 0x10000}
            if not ids:
                continue
            data = dex.data
            cs, ce = dex.section_range(TYPE_CODE_ITEM)
            rx = re.compile(b"[\x22\x1c][\x00-\xff]" + _DexScan._tail(ids), re.DOTALL)
            descs = prog.class_descs[di]
            init = dex.find_string("<init>")
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                desc = ids.get(data[pos + 2] | data[pos + 3] << 8)
                if pos & 1 or desc is None or desc in seen:
                    continue
                hit = dex.method_at(pos)
                if hit is None:
                    continue
                ci, midx = hit[2]
                if ci < len(descs) and descs[ci] == desc and dex.method_name_idx[midx] == init:
                    continue  # a constructor of the class itself
                seen.add(desc)
        except (AnalysisError, IndexError, ValueError, struct.error):
            seen.update(classes)  # unreadable: do not claim the class is unused
    for o in prog.overrides:
        o.instantiated = java_to_descriptor(o.cls) in seen


def _describe(name: str, exc: BaseException) -> str:
    if isinstance(exc, AnalysisError):
        return f"{exc.code}: {exc.message}"
    return f"corrupt_dex: {name}: {type(exc).__name__}: {exc}"
