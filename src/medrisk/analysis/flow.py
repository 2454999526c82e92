"""Linear decoding of the methods that contain a hit: the Dalvik instruction classes, and
the intra-procedural walk that tracks constants, folded string concatenations and taint
in registers up to each watched call, field read or string use.
"""

from __future__ import annotations

import struct
from typing import Any

from medrisk.analysis.dex import (
    OPCODE_UNITS,
)

K_NONE = 0  # writes no register we track
K_W4 = 1  # writes vA (4-bit A)
K_W8 = 2  # writes vAA
K_WW4 = 3  # writes the pair vA, vA+1
K_WW8 = 4  # writes the pair vAA, vAA+1
K_INVOKE35 = 5
K_INVOKE3R = 6
K_CONST4 = 7
K_CONST16 = 8
K_CONST32 = 9
K_CONSTHI = 10
K_STRING = 11
K_STRING_J = 12
K_MOVE4 = 13  # move / move-object 12x
K_MOVE8 = 14  # move/from16 22x
K_MOVE16 = 15  # move/16 32x
K_MRESULT_OBJ = 16
K_WW16 = 17  # move-wide/16: writes the pair at the 16-bit vAAAA
K_OTHER_INVOKE = 18  # invoke-polymorphic/custom, filled-new-array: result via move-result
K_FILL = 19  # fill-array-data: a constant byte[] (static keys and IVs)
MAX_CONST_BYTES = 64


def _build_kinds() -> tuple[int, ...]:
    k = [K_NONE] * 256
    k[0x01] = k[0x07] = K_MOVE4
    k[0x02] = k[0x08] = K_MOVE8
    k[0x03] = k[0x09] = K_MOVE16
    k[0x04] = K_WW4
    k[0x05] = K_WW8
    k[0x06] = K_WW16
    k[0x0A] = K_W8
    k[0x0B] = K_WW8
    k[0x0C] = K_MRESULT_OBJ
    k[0x0D] = K_W8
    k[0x12] = K_CONST4
    k[0x13] = K_CONST16
    k[0x14] = K_CONST32
    k[0x15] = K_CONSTHI
    for op in (0x16, 0x17, 0x18, 0x19):
        k[op] = K_WW8
    k[0x1A] = K_STRING
    k[0x1B] = K_STRING_J
    k[0x1C] = K_W8
    k[0x20] = K_W4
    k[0x21] = K_W4
    k[0x22] = K_W8
    k[0x23] = K_W4
    for op in (0x24, 0x25, 0xFA, 0xFB, 0xFC, 0xFD):
        k[op] = K_OTHER_INVOKE
    for op in range(0x2D, 0x32):
        k[op] = K_W8
    for op in range(0x44, 0x4B):
        k[op] = K_W8
    k[0x45] = K_WW8
    for op in range(0x52, 0x59):
        k[op] = K_W4
    k[0x53] = K_WW4
    for op in range(0x60, 0x67):
        k[op] = K_W8
    k[0x61] = K_WW8
    for op in range(0x6E, 0x73):
        k[op] = K_INVOKE35
    for op in range(0x74, 0x79):
        k[op] = K_INVOKE3R
    for op in range(0x7B, 0x90):
        k[op] = K_W4
    for op in (0x7D, 0x7E, 0x80, 0x81, 0x83, 0x86, 0x88, 0x89, 0x8B):
        k[op] = K_WW4
    for op in range(0x90, 0xB0):
        k[op] = K_W8
    for op in list(range(0x9B, 0xA6)) + list(range(0xAB, 0xB0)):
        k[op] = K_WW8
    for op in range(0xB0, 0xD0):
        k[op] = K_W4
    for op in list(range(0xBB, 0xC6)) + list(range(0xCB, 0xD0)):
        k[op] = K_WW4
    for op in range(0xD0, 0xD8):
        k[op] = K_W4
    for op in range(0xD8, 0xE3):
        k[op] = K_W8
    k[0xFE] = k[0xFF] = K_W8
    k[0x26] = K_FILL
    return tuple(k)


_KIND = _build_kinds()
INVOKE_OPS = frozenset(range(0x6E, 0x73)) | frozenset(range(0x74, 0x79))
STATIC_INVOKES = frozenset((0x71, 0x77))
_SGET_BY_TYPE = {"I": 0x60, "F": 0x60, "J": 0x61, "D": 0x61, "Z": 0x63, "B": 0x64, "C": 0x65, "S": 0x66}
_FOLD_INVOKES = bytes(0x6E if (0x6E <= b <= 0x72 or 0x74 <= b <= 0x78) else b for b in range(256))
_PASSTHROUGH = {"getBytes", "toCharArray", "toString", "trim", "intern"}  # String methods keeping the constant

# Light intra-procedural data flow (see _MethodWalker._flow): what an invoke does to tracked values.
F_PASS = 1  # result = the receiver's (or static first argument's) value
F_SOURCE = 2  # result = data controlled by the user or another app (taint source)
F_SB_NEW = 3  # StringBuilder.<init>([String]): the receiver becomes a builder
F_SB_APPEND = 4  # builder.append(x): appends, returns the builder
F_SB_STRING = 5  # builder.toString(): the concatenation, '*' for unknown parts
F_CONCAT = 6  # String.concat
F_FILE_NEW = 7  # File.<init>(path) / (parent, child): the receiver holds the path
F_EXTERNAL = 8  # Environment.getExternalStorageDirectory(): modelled as "/sdcard"
_SB_FLOW = {"<init>": F_SB_NEW, "append": F_SB_APPEND, "toString": F_SB_STRING}
_FLOW: dict[str, dict[str, int]] = {
    "Ljava/lang/String;": {**dict.fromkeys(_PASSTHROUGH, F_PASS), "valueOf": F_PASS, "concat": F_CONCAT},
    "Ljava/lang/StringBuilder;": _SB_FLOW,
    "Ljava/lang/StringBuffer;": _SB_FLOW,
    "Ljava/io/File;": {
        "<init>": F_FILE_NEW,
        "getAbsolutePath": F_PASS,
        "getPath": F_PASS,
        "getCanonicalPath": F_PASS,
        "toString": F_PASS,
    },
    "Landroid/os/Environment;": {"getExternalStorageDirectory": F_EXTERNAL},
    "Landroid/net/Uri;": {
        "parse": F_PASS,
        **dict.fromkeys(
            (
                "getQueryParameter",
                "getQueryParameters",
                "getPath",
                "getLastPathSegment",
                "getPathSegments",
                "getHost",
                "getFragment",
                "getEncodedPath",
                "getEncodedQuery",
                "getQuery",
            ),
            F_SOURCE,
        ),
    },
    "Landroid/app/Activity;": {"getIntent": F_SOURCE},
    "Landroid/content/Intent;": dict.fromkeys(
        (
            "getStringExtra",
            "getParcelableExtra",
            "getData",
            "getDataString",
            "getExtras",
            "getBundleExtra",
            "getSerializableExtra",
            "getCharSequenceExtra",
            "getStringArrayExtra",
            "getParcelableArrayExtra",
        ),
        F_SOURCE,
    ),
    "Landroid/os/Bundle;": dict.fromkeys(
        ("get", "getString", "getParcelable", "getSerializable", "getCharSequence", "getStringArray"), F_SOURCE
    ),
    "Landroid/widget/EditText;": {"getText": F_SOURCE},
    "Landroid/widget/TextView;": {"getText": F_SOURCE},
    "Lorg/json/JSONArray;": dict.fromkeys(("getString", "optString", "getJSONObject", "get"), F_SOURCE),
    "Lorg/apache/cordova/CordovaArgs;": dict.fromkeys(("getString", "optString", "getJSONObject", "get"), F_SOURCE),
}
# parameters of these entry points carry another app's (or the web page's) data: (method name,
# parameter descriptor) -> source name reported in `taint`
_PARAM_SOURCES: dict[str, tuple[str, ...]] = {
    "openFile": ("Landroid/net/Uri;",),
    "openAssetFile": ("Landroid/net/Uri;",),
    "openTypedAssetFile": ("Landroid/net/Uri;",),
    "onReceive": ("Landroid/content/Intent;",),
    "onNewIntent": ("Landroid/content/Intent;",),
    "onStartCommand": ("Landroid/content/Intent;",),
    "onHandleIntent": ("Landroid/content/Intent;",),
    "onBind": ("Landroid/content/Intent;",),
    "execute": ("Lorg/json/JSONArray;", "Lorg/apache/cordova/CordovaArgs;"),
}
_PARAM_SOURCE_NAMES = {
    "openFile": "android.content.ContentProvider.openFile",
    "openAssetFile": "android.content.ContentProvider.openAssetFile",
    "openTypedAssetFile": "android.content.ContentProvider.openTypedAssetFile",
    "onReceive": "android.content.BroadcastReceiver.onReceive",
    "onNewIntent": "android.app.Activity.onNewIntent",
    "onStartCommand": "android.app.Service.onStartCommand",
    "onHandleIntent": "android.app.IntentService.onHandleIntent",
    "onBind": "android.app.Service.onBind",
    "execute": "org.apache.cordova.CordovaPlugin.execute",
}
_COMPARE_APIS = frozenset(
    ("java.lang.String.equals", "java.lang.String.equalsIgnoreCase", "java.lang.String.contentEquals")
)
# APIs whose arguments keep a partly known concatenation ("Error with card: *"); for every other
# API such an argument stays null (not a constant: SQL built by concatenation, keys, IVs ...)
_PARTIAL_TEXT_APIS = ("android.util.Log.", "java.io.PrintStream.", "android.webkit.WebView.load")
MAX_FOLDED = 512  # characters of a folded string concatenation
MAX_CONST_ARRAY = 64  # elements of a tracked constant String[]

# constant first arguments of these calls are hard-coded key material (reported as secrets)
_KEY_MATERIAL = {
    "javax.crypto.spec.SecretKeySpec.<init>": "crypto_key",
    "javax.crypto.spec.PBEKeySpec.<init>": "password",
}

# event kinds found by the byte scans
EV_CALL = 0
EV_FIELD = 1
EV_STRING = 2
EV_STORE = 3


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _s32(v: int) -> int:
    return v - 0x100000000 if v & 0x80000000 else v


_U32 = struct.Struct("<I")


class _MethodWalker:
    """Mixin of ``_DexScan``: decodes one method body and tracks register values."""

    # ---------------------------------------------------------------- decoding
    def _param_widths(self, midx: int) -> tuple[int, ...]:
        """Register width of each parameter: 1, 2 (long/double) or 0 for references (1
        register; a constant 0 in it is the null literal)."""
        w = self._widths.get(midx)
        if w is None:
            _ret, params = self.dex.proto(self.dex.method_proto_idx[midx])
            w = tuple(2 if p in ("J", "D") else 0 if p[:1] in ("L", "[") else 1 for p in params)
            self._widths[midx] = w
        return w

    def _method_label(self, midx: int) -> str:
        label = self._method_names.get(midx)
        if label is None:
            _cls, name, desc = self.dex.method_ref(midx)
            label = self._method_names[midx] = f"{name}{desc}"
        return label

    def _value(self, v: Any) -> str | int | None:
        """JSON form of a tracked constant: strings as themselves, ints, and constant byte
        arrays (``new-array`` + ``fill-array-data``) as ``"bytes:<hex>"``."""
        if isinstance(v, tuple):
            tag = v[0]
            if tag == "s":
                return self.dex.string(v[1])
            if tag == "b":
                return "bytes:" + v[1].hex()
            if tag == "c":
                return v[1]
            if tag == "a":  # a String[] (Runtime.exec's command line): its elements joined by spaces
                if any(e is not None for e in v[1]):
                    return " ".join("*" if e is None else e for e in v[1])
            return None
        return v

    def _walk(
        self, start: int, end: int, wanted: dict[int, tuple[int, Any]], init: dict[int, Any] | None = None
    ) -> list[tuple]:
        """Decode [start, end) linearly up to the last wanted position, tracking constants
        in registers; return (pc, kind, payload, extra) for wanted positions that are real
        instruction starts. ``extra`` is the argument list of a call or the stored value.

        Register values: ints, ``("s", string idx)``, ``("b", bytes)`` (constant byte[]),
        ``("c", text, taint)`` (a folded concatenation, '*' for unknown parts), ``("t", source)``
        (user/intent data), ``("sb", parts, taints)`` (a StringBuilder), ``("a", elements)``
        (a constant String[])."""
        data = self.data
        units = OPCODE_UNITS
        kinds = _KIND
        flow = self.flow
        consts: dict[int, Any] = dict(init) if init else {}
        tainted = bool(init)  # some register holds user/intent data: check every invoke's inputs
        fieldvals: dict[int, Any] = {}  # instance field idx -> value stored by this method
        events: list[tuple] = []
        order = sorted(wanted)
        wi = 0
        nxt = order[0]
        last = order[-1]
        after_invoke = -1
        result: Any = None
        pos = start
        end = min(end, len(data) - 8)  # every read below stays inside the buffer
        while pos <= last and pos < end:
            op = data[pos]
            if pos >= nxt:
                while nxt < pos:  # skipped over: not an instruction boundary
                    wi += 1
                    nxt = order[wi] if wi < len(order) else end + 1
                if pos == nxt:
                    kind, payload = wanted[pos]
                    extra = None
                    if kind == EV_CALL:
                        extra = self._args(op, pos, payload, consts)
                    elif kind == EV_STORE:
                        reg = data[pos + 1] & 0xF if op == 0x5B else data[pos + 1]
                        extra = consts.get(reg)
                    events.append(((pos - start) >> 1, kind, payload, extra))
                    wi += 1
                    nxt = order[wi] if wi < len(order) else end + 1
            k = kinds[op]
            if k:
                if k == K_INVOKE35 or k == K_INVOKE3R:
                    midx = data[pos + 2] | data[pos + 3] << 8
                    f = flow.get(midx)
                    if f is not None:
                        result = self._flow(f, op, pos, midx, consts)
                        if result is not None and result[0] in ("t", "c"):
                            tainted = tainted or result[0] == "t" or result[2] is not None
                        elif f == F_SB_APPEND or f == F_FILE_NEW:
                            tainted = True  # may have stored a taint in the receiver
                    elif tainted:
                        result = self._propagate(op, pos, midx, consts)
                    else:
                        result = None
                    after_invoke = pos + 6
                elif k == K_STRING:
                    consts[data[pos + 1]] = ("s", data[pos + 2] | data[pos + 3] << 8)
                elif k == K_W4:
                    if op == 0x23:  # new-array vA, vB (size), type
                        b = data[pos + 1]
                        n = consts.get(b >> 4)
                        if (
                            n.__class__ is int
                            and 0 < n <= MAX_CONST_ARRAY
                            and (data[pos + 2] | data[pos + 3] << 8) == self.string_array_type
                        ):
                            consts[b & 0xF] = ("a", [None] * n)
                        else:
                            consts.pop(b & 0xF, None)
                    elif op == 0x54 and fieldvals:  # iget-object of a field stored earlier in the method
                        v = fieldvals.get(data[pos + 2] | data[pos + 3] << 8)
                        if v is None:
                            consts.pop(data[pos + 1] & 0xF, None)
                        else:
                            consts[data[pos + 1] & 0xF] = v
                    elif consts:
                        consts.pop(data[pos + 1] & 0xF, None)
                elif k == K_W8:
                    if op == 0x46 and consts:  # aget-object vAA, vBB[vCC]
                        arr = consts.get(data[pos + 2])
                        if arr.__class__ is tuple and arr[0] == "a":
                            i = consts.get(data[pos + 3])
                            elems = arr[1]
                            if i.__class__ is int and 0 <= i < len(elems):
                                v = elems[i]
                            else:  # variable index: the alternatives
                                v = "|".join(e for e in elems if e is not None) or None
                            if v is None:
                                consts.pop(data[pos + 1], None)
                            else:
                                consts[data[pos + 1]] = ("c", v, None)
                        else:
                            consts.pop(data[pos + 1], None)
                    elif consts:
                        consts.pop(data[pos + 1], None)
                elif k == K_CONST4:
                    b = data[pos + 1]
                    v = b >> 4
                    consts[b & 0xF] = v - 16 if v & 8 else v
                elif k == K_MRESULT_OBJ:
                    if pos == after_invoke and result is not None:
                        consts[data[pos + 1]] = result
                    elif consts:
                        consts.pop(data[pos + 1], None)
                elif k == K_MOVE4:
                    b = data[pos + 1]
                    v = consts.get(b >> 4)
                    if v is None:
                        consts.pop(b & 0xF, None)
                    else:
                        consts[b & 0xF] = v
                elif k == K_CONST16:
                    consts[data[pos + 1]] = _s16(data[pos + 2] | data[pos + 3] << 8)
                elif k == K_CONST32:
                    consts[data[pos + 1]] = _s32(_U32.unpack_from(data, pos + 2)[0])
                elif k == K_CONSTHI:
                    consts[data[pos + 1]] = _s32((data[pos + 2] | data[pos + 3] << 8) << 16)
                elif k == K_STRING_J:
                    consts[data[pos + 1]] = ("s", _U32.unpack_from(data, pos + 2)[0])
                elif k == K_WW4:
                    if consts:
                        a = data[pos + 1] & 0xF
                        consts.pop(a, None)
                        consts.pop(a + 1, None)
                elif k == K_WW8:
                    if consts:
                        a = data[pos + 1]
                        consts.pop(a, None)
                        consts.pop(a + 1, None)
                elif k == K_MOVE8:
                    a = data[pos + 1]
                    v = consts.get(data[pos + 2] | data[pos + 3] << 8)
                    if v is None:
                        consts.pop(a, None)
                    else:
                        consts[a] = v
                elif k == K_MOVE16:
                    a = data[pos + 2] | data[pos + 3] << 8
                    v = consts.get(data[pos + 4] | data[pos + 5] << 8)
                    if v is None:
                        consts.pop(a, None)
                    else:
                        consts[a] = v
                elif k == K_WW16:
                    a = data[pos + 2] | data[pos + 3] << 8
                    consts.pop(a, None)
                    consts.pop(a + 1, None)
                elif k == K_OTHER_INVOKE:
                    result = None
                    if op == 0x24 and (data[pos + 2] | data[pos + 3] << 8) == self.string_array_type:
                        b = data[pos + 1]  # filled-new-array {vC..}, [Ljava/lang/String;
                        regs = (
                            data[pos + 4] & 0xF,
                            data[pos + 4] >> 4,
                            data[pos + 5] & 0xF,
                            data[pos + 5] >> 4,
                            b & 0xF,
                        )
                        result = ("a", [self._text(consts.get(r)) for r in regs[: min(b >> 4, 5)]])
                    after_invoke = pos + 6
                elif k == K_FILL:
                    a = data[pos + 1]
                    payload = pos + 2 * _s32(_U32.unpack_from(data, pos + 2)[0])
                    consts.pop(a, None)
                    if start <= payload and payload + 8 <= end and data[payload] == 0 and data[payload + 1] == 3:
                        width = data[payload + 2] | data[payload + 3] << 8
                        size = _U32.unpack_from(data, payload + 4)[0]
                        if width == 1 and size <= MAX_CONST_BYTES and payload + 8 + size <= end:
                            consts[a] = ("b", data[payload + 8 : payload + 8 + size])
            elif op == 0x5B and tainted:  # iput-object: user/intent data kept in a field
                v = consts.get(data[pos + 1] & 0xF)
                if v.__class__ is tuple and v[0] in ("t", "c"):
                    fieldvals[data[pos + 2] | data[pos + 3] << 8] = v
            elif op == 0x4D and consts:  # aput-object vAA, vBB[vCC]
                arr = consts.get(data[pos + 2])
                if arr.__class__ is tuple and arr[0] == "a":
                    i = consts.get(data[pos + 3])
                    if i.__class__ is int and 0 <= i < len(arr[1]):
                        arr[1][i] = self._text(consts.get(data[pos + 1]))
            if op:
                pos += units[op] << 1
            else:
                pos += _payload_bytes(data, pos)
        return events

    def _args(self, op: int, pos: int, midx: int, consts: dict[int, Any]) -> tuple:
        """(argument values, their taints, receiver value, receiver taint) of a call."""
        regs = self._regs(op, pos)
        i = 0 if op in STATIC_INVOKES else 1
        recv = consts.get(regs[0]) if i and regs else None
        args: list[Any] = []
        taints: list[str | None] = []
        n = len(regs)
        for w in self._param_widths(midx):
            if w == 2 or i >= n:
                args.append(None)
                taints.append(None)
                i += 2 if w == 2 else 1
                continue
            v = consts.get(regs[i])
            args.append(None if w == 0 and not isinstance(v, tuple) else v)
            taints.append(self._taint(v))
            i += 1
        return args, taints, recv, self._taint(recv)

    # ---------------------------------------------------------------- data flow
    def _param_taint(self, code_off: int, midx: int) -> dict[int, Any] | None:
        """Registers of entry-point parameters that carry another app's data (the Uri of
        ContentProvider.openFile, the Intent of onReceive/onNewIntent, Cordova plugin args)."""
        sources = self.param_sources
        if not sources:
            return None
        name = sources.get(self.dex.method_name_idx[midx])
        if name is None:
            return None
        wanted = _PARAM_SOURCES[name]
        params = self._params(midx)
        if not any(p in wanted for p in params):
            return None
        data = self.data
        registers = data[code_off] | data[code_off + 1] << 8
        ins = data[code_off + 2] | data[code_off + 3] << 8
        width = sum(2 if p in ("J", "D") else 1 for p in params)
        r = registers - width  # parameters are the last registers; `this` (if any) before them
        if r < 0 or ins < width:
            return None
        out: dict[int, Any] = {}
        for p in params:
            if p in wanted:
                out[r] = ("t", _PARAM_SOURCE_NAMES[name])
            r += 2 if p in ("J", "D") else 1
        return out

    def _regs(self, op: int, pos: int) -> tuple[int, ...]:
        data = self.data
        if op <= 0x72:
            b = data[pos + 1]
            c, d = data[pos + 4] & 0xF, data[pos + 4] >> 4
            e, f = data[pos + 5] & 0xF, data[pos + 5] >> 4
            return (c, d, e, f, b & 0xF)[: min(b >> 4, 5)]
        first = data[pos + 4] | data[pos + 5] << 8
        return tuple(range(first, first + data[pos + 1]))

    def _text(self, v: Any) -> str | None:
        """A tracked value as constant text (None when unknown or user-controlled)."""
        if v.__class__ is tuple:
            if v[0] == "s":
                return self.dex.string(v[1])
            if v[0] == "c" and "*" not in v[1]:
                return v[1]
        return None

    @staticmethod
    def _taint(v: Any) -> str | None:
        if v.__class__ is tuple:
            tag = v[0]
            if tag == "t":
                return v[1]
            if tag == "c":
                return v[2]
            if tag == "sb" and v[2]:
                return v[2][0]
        return None

    def _piece(self, v: Any, ptype: str) -> tuple[str, str | None]:
        """(text, taint) of one concatenated part."""
        if v.__class__ is tuple:
            tag = v[0]
            if tag == "s":
                return self.dex.string(v[1]), None
            if tag == "c":
                return v[1], v[2]
            if tag == "t":
                return "*", v[1]
        elif v.__class__ is int and ptype in ("I", "J", "S", "B"):
            return str(v), None
        elif v.__class__ is int and ptype == "C" and 32 <= v < 127:
            return chr(v), None
        return "*", None

    def _params(self, midx: int) -> tuple[str, ...]:
        return self.dex.proto(self.dex.method_proto_idx[midx])[1]

    def _flow(self, f: int, op: int, pos: int, midx: int, consts: dict[int, Any]) -> Any:
        regs = self._regs(op, pos)
        if f == F_SOURCE:
            return ("t", self.source_names.get(midx, "?"))
        if f == F_EXTERNAL:
            return ("c", "/sdcard", None)
        if not regs:
            return None
        recv = consts.get(regs[0])
        if f == F_PASS:
            return recv if recv.__class__ is tuple and recv[0] != "sb" else None
        if f == F_SB_NEW:
            params = self._params(midx)
            parts: list[str] = []
            taints: list[str] = []
            if params and params[0] in ("Ljava/lang/String;", "Ljava/lang/CharSequence;") and len(regs) > 1:
                text, taint = self._piece(consts.get(regs[1]), params[0])
                parts.append(text)
                if taint:
                    taints.append(taint)
            consts[regs[0]] = ("sb", parts, taints)
            return None
        if f == F_SB_APPEND:
            if recv.__class__ is tuple and recv[0] == "sb":
                params = self._params(midx)
                if len(regs) > 1 and params and sum(len(x) for x in recv[1]) < MAX_FOLDED:
                    text, taint = self._piece(consts.get(regs[1]), params[0])
                    recv[1].append(text)
                    if taint and taint not in recv[2]:
                        recv[2].append(taint)
                return recv
            return None
        if f == F_SB_STRING:
            if recv.__class__ is tuple and recv[0] == "sb":
                return _fold(recv[1], recv[2][0] if recv[2] else None)
            return None
        if f == F_CONCAT:
            if len(regs) < 2:
                return None
            a, ta = self._piece(recv, "L")
            b, tb = self._piece(consts.get(regs[1]), "L")
            return _fold([a, b], ta or tb)
        if f == F_FILE_NEW:
            params = self._params(midx)
            pieces = [self._piece(consts.get(r), p) for r, p in zip(regs[1:], params)]
            if not pieces or params[-1] != "Ljava/lang/String;":
                consts.pop(regs[0], None)
                return None
            taint = next((tt for _x, tt in pieces if tt), None)
            value = _fold(["/".join(x for x, _t in pieces).replace("//", "/")], taint)
            if value is None:
                consts.pop(regs[0], None)
            else:
                consts[regs[0]] = value
            return None
        return None

    def _propagate(self, op: int, pos: int, midx: int, consts: dict[int, Any]) -> Any:
        """Any other invoke while user/intent data is around: its result (or, for a
        constructor, the new object) carries the data of its receiver or arguments."""
        regs = self._regs(op, pos)
        taint = None
        for r in regs:
            v = consts.get(r)
            if v.__class__ is tuple and (taint := self._taint(v)):
                break
        if taint is None:
            return None
        if regs and self.dex.method_name_idx[midx] == self.init_sidx:
            consts[regs[0]] = ("t", taint)
            return None
        return ("t", taint)


def _secondary_relevant(
    api: str, args: list[Any], taints: list[str | None], receiver: Any, receiver_taint: str | None
) -> bool:
    """Secondary calls worth reporting: a constant compared with user/intent data
    (String.equals & co.), a suffix test against a constant (endsWith), every putExtra."""
    if api in _COMPARE_APIS:
        return (isinstance(receiver, str) and any(taints)) or (
            receiver_taint is not None and any(isinstance(a, str) for a in args)
        )
    if "endsWith" in api:
        return any(isinstance(a, str) and "." in a for a in args)
    return True


def _fold(parts: list[str], taint: str | None) -> tuple | None:
    """A concatenation as a tracked value: ("c", text, taint), or ("t", taint) when nothing of
    it is constant, or None."""
    text = "".join(parts)[:MAX_FOLDED]
    if text.strip("*"):
        return ("c", text, taint)
    return ("t", taint) if taint else None


def _payload_bytes(data: bytes, pos: int) -> int:
    """Size in bytes of a nop or payload pseudo-instruction at ``pos`` (opcode 0x00)."""
    ident = data[pos + 1]
    if ident == 0:
        return 2
    if ident == 1:  # packed-switch-payload
        return (4 + (data[pos + 2] | data[pos + 3] << 8) * 2) << 1
    if ident == 2:  # sparse-switch-payload
        return (2 + (data[pos + 2] | data[pos + 3] << 8) * 4) << 1
    if ident == 3:  # fill-array-data-payload
        width = data[pos + 2] | data[pos + 3] << 8
        size = _U32.unpack_from(data, pos + 4)[0]
        return (4 + (size * width + 1) // 2) << 1
    return 2
