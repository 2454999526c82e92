"""Per-package and per-DEX scanning for the code analysis: the class hierarchy shared by
all DEX files, the ids of interest, the byte scans of the code section and the
resolution of their hits into calls, field reads, string locations and overrides.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from typing import Any

from medrisk.analysis.catalog import ApiCatalog
from medrisk.analysis.code_results import (
    _FRAMEWORK_DESCRIPTORS,
    LIBRARY_DESCRIPTORS,
    MAX_CALLS_PER_API,
    MAX_FIELD_READS,
    MAX_LOCATIONS,
    Call,
    FieldRead,
    Location,
    Override,
)
from medrisk.analysis.dex import (
    OPCODE_UNITS,
    TYPE_CODE_ITEM,
    DexFile,
    descriptor_to_java,
    line_at,
)
from medrisk.analysis.errors import AnalysisError
from medrisk.analysis.flow import (
    _FLOW,
    _FOLD_INVOKES,
    _KEY_MATERIAL,
    _PARAM_SOURCES,
    _PARTIAL_TEXT_APIS,
    _SGET_BY_TYPE,
    _U32,
    EV_CALL,
    EV_FIELD,
    EV_STORE,
    EV_STRING,
    F_SOURCE,
    INVOKE_OPS,
    _MethodWalker,
    _payload_bytes,
    _s16,
    _s32,
    _secondary_relevant,
)
from medrisk.analysis.strings import (
    _PASSWORD_NAME,
    _SECRET_END,
    _decoded_text,
    _secret_name,
    _StringCollector,
    _StringScan,
    _value_is_secret_like,
)


class _Program:
    """State shared by all DEX files of one package (class hierarchy, results)."""

    def __init__(self, catalog: ApiCatalog, dexes: list[DexFile]) -> None:
        self.catalog = catalog
        self.dexes = dexes
        # descriptor -> (dex index, class_def index, superclass, interfaces); first definition wins
        self.defined: dict[str, tuple[int, int, str | None, tuple[str, ...]]] = {}
        self.class_descs: list[list[str]] = []
        self.calls: list[Call] = []
        self.call_counts: Counter[str] = Counter()
        self.field_reads: list[FieldRead] = []
        self.field_counts: Counter[str] = Counter()
        self.overrides: list[Override] = []
        self.strings = _StringCollector()
        self.relevant: dict[str, frozenset[str]] = {}

    # ---------------------------------------------------------------- hierarchy
    def load_classes(self, di: int, dex: DexFile) -> None:
        """Read the classes of one DEX file into the package-wide hierarchy (all or nothing)."""
        tdescs = dex.type_descriptors()
        dex.type_table()
        ntypes = len(tdescs)
        types = dex.class_type_indices()
        supers = dex.superclass_indices()
        iface_offs = dex.interfaces_offsets()
        no_index = 0xFFFFFFFF
        if types and max(types) >= ntypes:
            raise AnalysisError("corrupt_dex", f"{dex.name}: class_defs: class type index out of range")
        descs = [tdescs[t] for t in types]
        data = dex.data
        limit = len(data)
        unpack = struct.unpack_from
        new: dict[str, tuple[int, int, str | None, tuple[str, ...]]] = {}
        defined = self.defined
        for ci, desc, sup, off in zip(range(len(descs)), descs, supers, iface_offs):
            if desc in new or desc in defined:
                continue
            if sup == no_index:
                sup_desc = None
            elif sup < ntypes:
                sup_desc = tdescs[sup]
            else:
                raise AnalysisError("corrupt_dex", f"{dex.name}: class_defs: superclass index out of range")
            ifaces: tuple[str, ...] = ()
            if off:
                if off & 3 or off + 4 > limit:
                    raise AnalysisError("corrupt_dex", f"{dex.name}: type_list: offset {off:#x} out of range")
                count = _U32.unpack_from(data, off)[0]
                if off + 4 + 2 * count > limit:
                    raise AnalysisError("corrupt_dex", f"{dex.name}: type_list at {off:#x} exceeds the file")
                ifaces = tuple(tdescs[i] if i < ntypes else "?" for i in unpack(f"<{count}H", data, off + 4))
            new[desc] = (di, ci, sup_desc, ifaces)
        defined.update(new)
        self.class_descs.append(descs)

    def compute_relevant(self) -> None:
        """Every type (app classes and known framework classes) that has an *interesting*
        ancestor (a watched API class or an override base), with those ancestors."""
        children: dict[str, list[str]] = {}
        for desc, (_di, _ci, sup, ifaces) in self.defined.items():
            if sup is not None:
                children.setdefault(sup, []).append(desc)
            for i in ifaces:
                children.setdefault(i, []).append(desc)
        for s, subs in self.catalog.subtypes.items():
            lst = children.setdefault(s, [])
            lst.extend(d for d in subs if d not in self.defined)
        relevant: dict[str, set[str]] = {}
        for root in self.catalog.interesting:
            if root not in children:
                continue
            stack = list(children[root])
            seen = {root}
            while stack:  # bounded: every type is visited once per root
                d = stack.pop()
                if d in seen:
                    continue
                seen.add(d)
                relevant.setdefault(d, set()).add(root)
                stack.extend(children.get(d, ()))
        self.relevant = {d: frozenset(r) for d, r in relevant.items()}


class _DexScan(_StringScan, _MethodWalker):
    """Per-DEX work: ids of interest, byte scans, decoding of the methods with hits."""

    def __init__(self, prog: _Program, di: int, dex: DexFile) -> None:
        self.prog = prog
        self.di = di
        self.dex = dex
        self.data = dex.data
        self.name = dex.name
        self.watched: dict[int, str] = {}  # method idx -> api
        self.fields: dict[int, str] = {}  # field idx -> watched field name
        self.field_ops: set[int] = set()  # sget opcodes needed
        self.store_fields: dict[int, str] = {}  # field idx -> field name (secret-named fields)
        self.flow: dict[int, int] = {}  # method idx -> F_* (data flow through the invoke)
        self.source_names: dict[int, str] = {}  # method idx of a taint source -> its Java name
        self.secondary: set[int] = set()  # method ids of secondary watched APIs
        self.param_sources: dict[int, str] = {}  # string idx of an entry-point name -> the name
        self.string_array_type = -1
        self.init_sidx = -1
        self.intrinsics: set[int] = set()  # kotlin null-check helpers (ignored in bodies)
        self.str_targets: set[int] = set()  # string ids whose const-string uses we want
        self._widths: dict[int, tuple[int, ...]] = {}
        self._method_names: dict[int, str] = {}

    # ---------------------------------------------------------------- ids of interest
    def find_watched_methods(self) -> None:
        """Method ids of watched APIs: references to the watched classes themselves, and
        references through subclasses known from the hierarchy (``MainActivity.getSharedPreferences``).
        Names are compared as string ids (looked up once), so no method name is decoded."""
        dex = self.dex
        cat = self.prog.catalog
        types = dex.type_table()
        names = dex.method_name_idx
        string = dex.string
        sidx_of: dict[str, int | None] = {}

        def by_sidx(members: dict[str, str], inherited: bool) -> dict[int, str]:
            out: dict[int, str] = {}
            for name, api in members.items():
                if inherited and name in ("<init>", "<clinit>"):
                    continue  # constructors are not inherited
                if name not in sidx_of:
                    sidx_of[name] = dex.find_string(name)
                sidx = sidx_of[name]
                if sidx is not None:
                    out.setdefault(sidx, api)
            return out

        for desc, members in cat.methods.items():  # direct references to watched classes
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            if lo == hi:
                continue
            wanted = by_sidx(members, False)
            for m in range(lo, hi):
                api = wanted.get(names[m])
                if api is not None:
                    self.watched[m] = api
        combined: dict[frozenset[str], dict[int, str]] = {}
        for desc, roots in self.prog.relevant.items():  # references through subclasses
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            if lo == hi:
                continue
            wanted = combined.get(roots)
            if wanted is None:
                wanted = {}
                for r in sorted(roots):
                    if r in cat.methods:
                        for k, v in by_sidx(cat.methods[r], True).items():
                            wanted.setdefault(k, v)
                combined[roots] = wanted
            if not wanted:
                continue
            for m in range(lo, hi):
                if m not in self.watched:
                    api = wanted.get(names[m])
                    if api is not None:
                        self.watched[m] = api
        # data flow helpers: String/StringBuilder/File methods, taint sources (also reached
        # through app subclasses such as MainActivity.getIntent)
        flow_classes = [(d, d) for d in _FLOW] + [
            (d, r) for d, roots in self.prog.relevant.items() for r in sorted(roots) if r in _FLOW
        ]
        for desc, root in flow_classes:
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.method_range(t)
            table = _FLOW[root]
            for m in range(lo, hi):
                if m in self.flow:
                    continue
                name = string(names[m])
                f = table.get(name)
                if f is None or (desc != root and name == "<init>"):
                    continue
                self.flow[m] = f
                if f == F_SOURCE:
                    self.source_names[m] = descriptor_to_java(root) + "." + name
        t = types.get("Lkotlin/jvm/internal/Intrinsics;")
        if t is not None:
            lo, hi = dex.method_range(t)
            self.intrinsics = {m for m in range(lo, hi) if string(names[m]).startswith("check")}
        if cat.secondary:
            self.secondary = {m for m, api in self.watched.items() if api in cat.secondary}
        self.string_array_type = types.get("[Ljava/lang/String;", -1)
        init = dex.find_string("<init>")
        self.init_sidx = -1 if init is None else init
        for name in _PARAM_SOURCES:
            sidx = dex.find_string(name)
            if sidx is not None:
                self.param_sources[sidx] = name

    def find_watched_fields(self) -> None:
        dex = self.dex
        types = dex.type_table()
        for desc, members in self.prog.catalog.fields.items():
            t = types.get(desc)
            if t is None:
                continue
            lo, hi = dex.field_range(t)
            for f in range(lo, hi):
                name = members.get(dex.string(dex.field_name_idx[f]))
                if name is not None:
                    self.fields[f] = name
                    tdesc = dex.type_descriptor(dex.field_type_idx[f])
                    op = _SGET_BY_TYPE.get(tdesc, 0x62)
                    self.field_ops.add(op - 0x0E if name in self.prog.catalog.instance_fields else op)

    def find_secret_fields(self) -> None:
        """String fields of app classes whose name says they hold a secret; stores of
        constants into them are reported as secrets (``key = "This is the super secret key 123"``)."""
        dex = self.dex
        types = dex.type_table()
        string_type = types.get("Ljava/lang/String;")
        if string_type is None:
            return
        names = dex.field_name_idx
        ftypes = dex.field_type_idx
        string = dex.string
        verdict: dict[int, bool] = {}
        for desc, t in zip(self.prog.class_descs[self.di], dex.class_type_indices()):
            if desc.startswith(_FRAMEWORK_DESCRIPTORS):
                continue
            lo, hi = dex.field_range(t)
            for f in range(lo, hi):
                if ftypes[f] != string_type:
                    continue
                n = names[f]
                ok = verdict.get(n)
                if ok is None:
                    name = string(n)
                    ok = verdict[n] = bool(_SECRET_END.search(name)) and _secret_name(name)
                if ok:
                    self.store_fields[f] = string(n)

    # ---------------------------------------------------------------- byte scans
    @staticmethod
    def _tail(indices: set[int] | dict[int, Any], fold: bytes | None = None) -> bytes:
        """Regex for a little-endian u16 in ``indices``: grouped by high byte when that is
        compact, else a (looser) pair of byte classes that the caller re-checks. With
        ``fold``, the bytes are mapped through that translation table first (the scan runs
        over translated bytes)."""
        by_hi: dict[int, list[int]] = {}
        for i in indices:
            lo, hi = i & 0xFF, i >> 8
            if fold is not None:
                lo, hi = fold[lo], fold[hi]
            by_hi.setdefault(hi, []).append(lo)

        def cls(values: list[int]) -> bytes:
            return b"[" + b"".join(re.escape(bytes([v])) for v in sorted(set(values))) + b"]"

        his = cls(list(by_hi))
        if len(by_hi) <= 64:  # cheap high-byte check first, then the exact (low set, high) pairs
            alts = b"|".join(cls(los) + re.escape(bytes([hi])) for hi, los in sorted(by_hi.items()))
            return b"(?=[\x00-\xff]" + his + b")(?:" + alts + b")"
        return cls([lo for los in by_hi.values() for lo in los]) + his

    def scan(self) -> dict[int, tuple[int, Any]]:
        """Candidate positions -> (event kind, payload), before boundary confirmation."""
        data = self.data
        cs, ce = self.dex.section_range(TYPE_CODE_ITEM)
        out: dict[int, tuple[int, Any]] = {}
        watched = {m: a for m, a in self.watched.items() if m < 0x10000}
        if watched:
            folded = data[cs:ce].translate(_FOLD_INVOKES)
            rx = re.compile(b"\x6e[\x00-\xff]" + self._tail(watched, _FOLD_INVOKES), re.DOTALL)
            for m in rx.finditer(folded):
                pos = cs + m.start()
                if pos & 1 or data[pos] not in INVOKE_OPS:
                    continue
                midx = data[pos + 2] | data[pos + 3] << 8
                api = watched.get(midx)
                if api is not None:
                    out[pos] = (EV_CALL, midx)
        fields = {f: n for f, n in self.fields.items() if f < 0x10000}
        if fields:
            tail = self._tail(fields)
            for op in sorted(self.field_ops):
                rx = re.compile(re.escape(bytes([op])) + b"[\x00-\xff]" + tail, re.DOTALL)
                for m in rx.finditer(data, cs, ce):
                    pos = m.start()
                    f = data[pos + 2] | data[pos + 3] << 8
                    if not pos & 1 and f in fields:
                        out[pos] = (EV_FIELD, fields[f])
        stores = {f: n for f, n in self.store_fields.items() if f < 0x10000}
        if stores:
            tail = self._tail(stores)
            for op in (0x5B, 0x69):  # iput-object, sput-object
                rx = re.compile(re.escape(bytes([op])) + b"[\x00-\xff]" + tail, re.DOTALL)
                for m in rx.finditer(data, cs, ce):
                    pos = m.start()
                    f = data[pos + 2] | data[pos + 3] << 8
                    if not pos & 1 and f in stores:
                        out[pos] = (EV_STORE, stores[f])
        targets = self.str_targets | {k[1] for k in self.prog.strings.pending_generic if k[0] == self.di}
        small = {s for s in targets if s < 0x10000}
        if small:
            rx = re.compile(b"\x1a[\x00-\xff]" + self._tail(small), re.DOTALL)
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                s = data[pos + 2] | data[pos + 3] << 8
                if not pos & 1 and s in small:
                    out[pos] = (EV_STRING, s)
        if targets:  # const-string/jumbo: compilers also use it for small indices
            large = sorted(s for s in targets if s >= 0x10000)
            tail = self._tail(small) + b"\x00\x00" if small else b""
            if large:
                tail = (
                    b"(?:" + b"|".join([tail] * bool(small) + [re.escape(struct.pack("<I", s)) for s in large]) + b")"
                )
            rx = re.compile(b"\x1b[\x00-\xff]" + tail, re.DOTALL)
            for m in rx.finditer(data, cs, ce):
                pos = m.start()
                s = _U32.unpack_from(data, pos + 2)[0]
                if not pos & 1 and s in targets:
                    out[pos] = (EV_STRING, s)
        return out

    def resolve(self, candidates: dict[int, tuple[int, Any]]) -> None:
        """Group candidates by method, decode each such method once, emit the events."""
        if not candidates:
            return
        dex = self.dex
        prog = self.prog
        col = prog.strings
        class_descs = prog.class_descs[self.di]
        by_method: dict[int, tuple[int, tuple[int, int], list[int]]] = {}
        cur_start = cur_end = -1
        cur: list[int] = []
        for pos in sorted(candidates):
            if cur_start <= pos < cur_end:
                cur.append(pos)
                continue
            hit = dex.method_at(pos)
            if hit is None:
                continue
            code_off, end, owner = hit
            if owner[0] >= len(class_descs) or class_descs[owner[0]].startswith(LIBRARY_DESCRIPTORS):
                cur = []  # code of the bundled platform libraries: not the app's behaviour
                cur_start, cur_end = code_off + 16, end
                continue
            entry = by_method.get(code_off)
            if entry is None:
                entry = by_method[code_off] = (end, owner, [])
            cur = entry[2]
            cur.append(pos)
            cur_start, cur_end = code_off + 16, end
        secondary = self.secondary
        for code_off, (end, owner, positions) in by_method.items():
            if secondary and all(candidates[p][0] == EV_CALL and candidates[p][1] in secondary for p in positions):
                continue  # only secondary calls (String.equals, putExtra): not decoded
            wanted = {}
            for pos in positions:
                kind, payload = candidates[pos]
                if kind == EV_CALL and prog.call_counts[self.watched[payload]] >= MAX_CALLS_PER_API:
                    continue
                if kind == EV_FIELD and prog.field_counts[payload] >= MAX_FIELD_READS:
                    continue
                if (
                    kind == EV_STRING
                    and not col.needs_location((self.di, payload))
                    and (self.di, payload) not in col.pending_generic
                ):
                    continue
                wanted[pos] = (kind, payload)
            if not wanted:
                continue
            ci, midx = owner
            events = self._walk(code_off + 16, end, wanted, self._param_taint(code_off, midx))
            if not events:
                continue
            cls_name = descriptor_to_java(class_descs[ci]) if ci < len(class_descs) else None
            label = self._method_label(midx)
            positions_table = None
            for pc, kind, payload, extra in events:
                if positions_table is None:
                    debug_off = _U32.unpack_from(self.data, code_off + 8)[0]
                    positions_table = dex.positions(debug_off, events[-1][0])
                loc = Location(self.name, cls_name, label, line_at(positions_table, pc))
                if kind == EV_CALL:
                    api = self.watched[payload]
                    raw, taints, recv, recv_taint = extra
                    args = [self._value(v) for v in raw]
                    if not api.startswith(_PARTIAL_TEXT_APIS):  # partial folds ('*') only for messages/URLs
                        args = [
                            None if v.__class__ is tuple and v[0] == "c" and "*" in v[1] else a
                            for v, a in zip(raw, args, strict=True)
                        ]
                    receiver = self._value(recv) if recv.__class__ is tuple else None
                    if payload in secondary and not _secondary_relevant(api, args, taints, receiver, recv_taint):
                        continue
                    if prog.call_counts[api] < MAX_CALLS_PER_API:
                        prog.call_counts[api] += 1
                        prog.calls.append(Call(api, args, loc, pc, taints, receiver, recv_taint))
                    if api == "android.util.Base64.decode" and args and isinstance(args[0], str):
                        decoded = _decoded_text(args[0])
                        if decoded:
                            s = col.secret("base64_encoded", decoded)
                            if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                                s.locations.append(loc)
                    key_kind = _KEY_MATERIAL.get(api)
                    if key_kind and args and isinstance(args[0], str) and args[0]:
                        s = col.secret(key_kind, args[0])
                        if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                            s.locations.append(loc)
                elif kind == EV_FIELD:
                    if prog.field_counts[payload] < MAX_FIELD_READS:
                        prog.field_counts[payload] += 1
                        prog.field_reads.append(FieldRead(payload, loc))
                elif kind == EV_STRING:
                    col.add_location((self.di, payload), loc)
                elif kind == EV_STORE and isinstance(extra, tuple) and extra[0] == "s":
                    value = dex.string(extra[1])
                    if _value_is_secret_like(value):
                        kind_name = "password" if _PASSWORD_NAME.search(payload) else "generic_api_key"
                        s = col.secret(kind_name, value)
                        if loc not in s.locations and len(s.locations) < MAX_LOCATIONS:
                            s.locations.append(loc)

    # ---------------------------------------------------------------- overrides
    def find_overrides(self) -> None:
        prog = self.prog
        cat = prog.catalog
        dex = self.dex
        descs = prog.class_descs[self.di]
        bases = {o[0] for o in cat.overrides}
        for desc, roots in prog.relevant.items():
            hit_bases = roots & bases
            if not hit_bases:
                continue
            info = prog.defined.get(desc)
            if info is None or info[0] != self.di or desc.startswith(LIBRARY_DESCRIPTORS):
                continue
            ci = info[1]
            cdef_off = dex.class_data_offsets()[ci]
            if not cdef_off:
                continue
            cdata = dex.class_data(cdef_off)
            for midx, _access, code_off in cdata.direct_methods + cdata.virtual_methods:
                if not code_off:
                    continue
                name = dex.method_ref(midx)[1]  # range-checked
                for base_desc, mname, base_java, descriptor in cat.overrides:
                    if mname != name or base_desc not in hit_bases:
                        continue
                    if descriptor and dex.proto_descriptor(dex.method_proto_idx[midx]) != descriptor:
                        continue
                    item = dex.code_item(code_off)
                    empty, const, calls = self._summarise(item.insns_off, item.insns_off + 2 * item.insns_size)
                    lines = dex.positions(item.debug_info_off)
                    loc = Location(
                        self.name, descriptor_to_java(descs[ci]), self._method_label(midx), line_at(lines, 0)
                    )
                    prog.overrides.append(
                        Override(base_java, mname, descriptor_to_java(desc), empty, const, calls, loc)
                    )

    def _summarise(self, start: int, end: int) -> tuple[bool, int | None, list[str]]:
        """Classify a method body: only ``return-void`` (empty), ``const vX, N; return vX``
        (returns_const), and the watched APIs it calls. Kotlin parameter null checks
        (const-string + Intrinsics.check*) and nops are ignored."""
        data = self.data
        end = min(end, len(data) - 8)
        body: list[tuple[int, int]] = []
        calls: set[str] = set()
        pos = start
        while pos < end:
            op = data[pos]
            if op in INVOKE_OPS:
                midx = data[pos + 2] | data[pos + 3] << 8
                api = self.watched.get(midx)
                if api is not None:
                    calls.add(api)
                if midx not in self.intrinsics:
                    body.append((op, pos))
            elif op not in (0x00, 0x1A, 0x1B):
                body.append((op, pos))
            pos += (OPCODE_UNITS[op] << 1) if op else _payload_bytes(data, pos)
        empty = len(body) == 1 and body[0][0] == 0x0E
        const = None
        if len(body) == 2 and body[1][0] in (0x0F, 0x11):
            (op, p), (_rop, rp) = body
            ret_reg = data[rp + 1]
            if op == 0x12 and data[p + 1] & 0xF == ret_reg:
                v = data[p + 1] >> 4
                const = v - 16 if v & 8 else v
            elif op == 0x13 and data[p + 1] == ret_reg:
                const = _s16(data[p + 2] | data[p + 3] << 8)
            elif op == 0x14 and data[p + 1] == ret_reg:
                const = _s32(_U32.unpack_from(data, p + 2)[0])
        return empty, const, sorted(calls)
