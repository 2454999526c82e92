"""Code-item side of ``DexFile``: class_data_items, code items, instructions, the index of
every method body (to map a byte offset found by a scan back to its method) and debug-info
line positions.

``_DexCode`` is a mixin: ``DexFile`` (``dex.py``) provides the header fields, id tables and
``_corrupt`` it relies on. The same bounds rules apply: every offset is checked and every
loop is bounded by sizes checked against the bytes that remain.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, NoReturn

from medrisk.analysis.dexformat import (
    _CODE_HEADER,
    _U32,
    HEADER_SIZE,
    ClassData,
    CodeItem,
    _Overlong,
    _sleb,
    _uleb,
    instruction_units,
    skip_ulebs,
)


class _DexCode:
    """Code-item accessors of :class:`~medrisk.analysis.dex.DexFile` (a mixin)."""

    # provided by DexFile.__init__
    data: bytes
    _limit: int
    class_defs_size: int
    method_ids_size: int
    _class_defs: array
    _starts: list[int] | None
    _bodies: dict[int, list[tuple[int, int]]]
    _code_index: list[int] | None

    if TYPE_CHECKING:

        def _corrupt(self, section: str, detail: str) -> NoReturn: ...

    # ---------------------------------------------------------------- class data & code items
    def class_data(self, off: int) -> ClassData:
        """Decode a class_data_item (fields and methods with absolute indices)."""
        if off == 0:
            return ClassData([], [], [], [])
        data = self.data
        limit = self._limit
        if off >= limit:
            self._corrupt("class_data", f"offset {off:#x} beyond the file")
        try:
            vals = []
            pos = off
            for _k in range(4):
                v, pos = _uleb(data, pos)
                vals.append(v)
            sf, inf, dm, vm = vals
            # each entry takes at least 2 (field) or 3 (method) bytes: reject impossible counts
            if 2 * (sf + inf) + 3 * (dm + vm) > limit - pos:
                self._corrupt("class_data", f"item at {off:#x} declares more members than the file holds")
            out: list[list] = [[], [], [], []]
            for k, count in enumerate(vals):
                idx = 0
                lst = out[k]
                append = lst.append
                for _ in range(count):
                    b = data[pos]
                    if b < 0x80:
                        idx += b
                        pos += 1
                    else:
                        v, pos = _uleb(data, pos)
                        idx += v
                    b = data[pos]
                    if b < 0x80:
                        access = b
                        pos += 1
                    else:
                        access, pos = _uleb(data, pos)
                    if k < 2:
                        append((idx, access))
                        continue
                    b = data[pos]
                    if b < 0x80:
                        append((idx, access, b))
                        pos += 1
                        continue
                    b1 = data[pos + 1]
                    if b1 < 0x80:
                        append((idx, access, (b & 0x7F) | b1 << 7))
                        pos += 2
                        continue
                    b2 = data[pos + 2]
                    if b2 < 0x80:
                        append((idx, access, (b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14))
                        pos += 3
                        continue
                    code_off, pos = _uleb(data, pos)
                    append((idx, access, code_off))
        except IndexError:
            self._corrupt("class_data", f"item at {off:#x} runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"item at {off:#x} has a malformed uleb128")
        return ClassData(*out)

    def code_item(self, off: int) -> CodeItem:
        if off % 4 or off + 16 > self._limit or off < HEADER_SIZE:
            self._corrupt("code_item", f"offset {off:#x} out of range")
        regs, ins, outs, tries, debug_off, units = _CODE_HEADER.unpack_from(self.data, off)
        if off + 16 + 2 * units > self._limit:
            self._corrupt("code_item", f"insns of the item at {off:#x} run past the end of the file")
        return CodeItem(off, regs, ins, outs, tries, debug_off, off + 16, units)

    def instructions(self, code_off: int) -> list[tuple[int, int, int]]:
        """(pc, opcode, length in code units) of every instruction of a code item, in order.
        Payload pseudo-instructions are reported with opcode 0x100 (packed-switch), 0x200
        (sparse-switch) or 0x300 (fill-array-data). Used by tests and tools; the analyser
        decodes only the methods it needs, inline."""
        item = self.code_item(code_off)
        data = self.data
        start = item.insns_off
        end = start + 2 * item.insns_size
        out = []
        pos = start
        while pos < end:  # every step advances by at least one code unit
            units = instruction_units(data, pos, end)
            op = data[pos]
            if op == 0 and pos + 1 < end and data[pos + 1] in (1, 2, 3):
                op = data[pos + 1] << 8
            out.append(((pos - start) >> 1, op, units))
            pos += 2 * units
        return out

    # ---------------------------------------------------------------- code index
    def code_index(self) -> list[int]:
        """Every method body of the file, sorted by position, packed as
        ``code_off << 40 | class_def_index << 20 | method_idx`` (ints sort and bisect much
        faster than tuples; :meth:`method_at` unpacks). One pass over every
        class_data_item, with uleb128 decoding inlined: this loop runs once per method."""
        if self._code_index is not None:
            return self._code_index
        if self.class_defs_size >= 1 << 20 or self.method_ids_size >= 1 << 20:
            self._corrupt("class_defs", "more than 2**20 classes or methods")
        data = self.data
        offsets = self._class_defs[6::8]
        entries: list[int] = []
        append = entries.append
        ci = 0
        try:
            for ci in range(self.class_defs_size):
                pos = offsets[ci]
                if not pos:
                    continue
                pos, n_direct, n_virtual = self._skip_to_methods(ci, pos)
                base = ci << 20
                for count in (n_direct, n_virtual):
                    midx = base
                    for _ in range(count):
                        b = data[pos]
                        if b < 0x80:
                            midx += b
                            pos += 1
                        else:
                            v, pos = _uleb(data, pos)
                            midx += v
                        # access_flags: not needed here, skip the uleb128
                        if data[pos] < 0x80:
                            pos += 1
                        elif data[pos + 1] < 0x80:
                            pos += 2
                        elif data[pos + 2] < 0x80:
                            pos += 3
                        else:
                            _v, pos = _uleb(data, pos)
                        b = data[pos]
                        if b < 0x80:
                            pos += 1
                            if b:
                                append(b << 40 | midx)
                            continue
                        b1 = data[pos + 1]
                        if b1 < 0x80:
                            append(((b & 0x7F) | b1 << 7) << 40 | midx)
                            pos += 2
                            continue
                        b2 = data[pos + 2]
                        if b2 < 0x80:
                            append(((b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14) << 40 | midx)
                            pos += 3
                            continue
                        b3 = data[pos + 3]
                        if b3 < 0x80:
                            append(((b & 0x7F) | (b1 & 0x7F) << 7 | (b2 & 0x7F) << 14 | b3 << 21) << 40 | midx)
                            pos += 4
                        else:
                            code_off, pos = _uleb(data, pos)
                            append(code_off << 40 | midx)
                    if midx - base >= 1 << 20:
                        self._corrupt("class_data", f"class {ci}: method index out of range")
        except IndexError:
            self._corrupt("class_data", f"class {ci}: class_data runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"class {ci}: malformed uleb128")
        entries.sort()
        self._code_index = entries
        return entries

    def _class_starts(self) -> list[int]:
        """Classes with code, sorted by the code_off of their first method body, packed as
        ``code_off << 20 | class_def index``. Only the start of each class_data_item is read."""
        if self._starts is not None:
            return self._starts
        if self.class_defs_size >= 1 << 20:
            self._corrupt("class_defs", "more than 2**20 classes")
        data = self.data
        offsets = self._class_defs[6::8]
        out: list[int] = []
        ci = 0
        try:
            for ci in range(self.class_defs_size):
                pos = offsets[ci]
                if not pos:
                    continue
                pos, n_direct, n_virtual = self._skip_to_methods(ci, pos)
                for _ in range(n_direct + n_virtual):  # the first method body is the anchor
                    for _k in range(2):  # method_idx_diff, access_flags
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    b = data[pos]
                    if b < 0x80:
                        pos += 1
                        if b:
                            out.append(b << 20 | ci)
                            break
                        continue
                    b1 = data[pos + 1]
                    if b1 < 0x80:
                        code_off = (b & 0x7F) | b1 << 7
                    else:
                        b2 = data[pos + 2]
                        if b2 < 0x80:
                            code_off = (b & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14
                        else:
                            b3 = data[pos + 3]
                            if b3 < 0x80:
                                code_off = (b & 0x7F) | (b1 & 0x7F) << 7 | (b2 & 0x7F) << 14 | b3 << 21
                            else:
                                code_off, pos = _uleb(data, pos)
                    out.append(code_off << 20 | ci)
                    break
        except IndexError:
            self._corrupt("class_data", f"class {ci}: class_data runs past the end of the file")
        except _Overlong:
            self._corrupt("class_data", f"class {ci}: malformed uleb128")
        out.sort()
        self._starts = out
        return out

    def _skip_to_methods(self, ci: int, pos: int) -> tuple[int, int, int]:
        """Skip the sizes and encoded_fields of class ``ci``'s class_data_item at ``pos``:
        (offset of its first encoded_method, direct_methods_size, virtual_methods_size).
        Raises IndexError (truncated) or _Overlong (bad uleb128) for the caller to report."""
        data = self.data
        limit = self._limit
        if pos >= limit:
            raise IndexError
        sizes = []
        for _k in range(4):
            b = data[pos]
            if b < 0x80:
                sizes.append(b)
                pos += 1
            else:
                v, pos = _uleb(data, pos)
                sizes.append(v)
        nf = 2 * (sizes[0] + sizes[1])
        if nf + 3 * (sizes[2] + sizes[3]) > limit - pos:
            self._corrupt("class_data", f"class {ci} declares more members than the file holds")
        if nf:  # skip encoded_fields (2 uleb128 each) in one regex match
            end = skip_ulebs(data, pos, nf)
            if end is None:
                raise IndexError
            pos = end
        return pos, sizes[2], sizes[3]

    def _class_bodies(self, ci: int) -> list[tuple[int, int, int]]:
        """(code_off, insns_end, method_idx) of the method bodies of class ``ci``, sorted."""
        bodies = self._bodies.get(ci)
        if bodies is None:
            cd = self.class_data(self._class_defs[8 * ci + 6])
            bodies = sorted(
                (off, self._body_end(off), m) for m, _a, off in cd.direct_methods + cd.virtual_methods if off
            )
            self._bodies[ci] = bodies
        return bodies

    def _item_end(self, code_off: int) -> int:
        """End of the whole code_item (insns, padding, tries and handlers)."""
        data = self.data
        end = self._body_end(code_off)
        tries = data[code_off + 6] | data[code_off + 7] << 8
        if not tries:
            return end
        if (end - code_off - 16) & 2:
            end += 2
        pos = end + 8 * tries
        try:
            count, pos = _uleb(data, pos)
            for _ in range(min(count, self._limit - pos)):
                size, pos = _sleb(data, pos)
                for _k in range(min(abs(size), self._limit - pos)):
                    _t, pos = _uleb(data, pos)
                    _a, pos = _uleb(data, pos)
                if size <= 0:
                    _a, pos = _uleb(data, pos)
        except (IndexError, _Overlong):
            return self._limit
        return pos

    def _body_end(self, code_off: int) -> int:
        if code_off + 16 > self._limit:
            self._corrupt("code_item", f"offset {code_off:#x} out of range")
        end = code_off + 16 + 2 * _U32.unpack_from(self.data, code_off + 12)[0]
        if end > self._limit:
            self._corrupt("code_item", f"insns of the item at {code_off:#x} run past the end of the file")
        return end

    def method_at(self, offset: int) -> tuple[int, int, tuple[int, int]] | None:
        """The method body containing byte ``offset``: (code_off, insns_end, (class_def
        index, method_idx)) or None.

        Fast path: the class whose first body starts last before ``offset`` is parsed and its
        bodies checked (compilers lay out each class's code together); if the offset is not
        in one of them, the full index of every body (:meth:`code_index`) decides."""
        if self._code_index is None:
            # Each class's bodies are laid out together, but its first-listed method is not
            # always its lowest body: try the classes anchored just before and just after.
            starts = self._class_starts()
            i = bisect_left(starts, (offset - 15) << 20)
            for k in (i - 1, i):
                if not 0 <= k < len(starts):
                    continue
                ci = starts[k] & 0xFFFFF
                bodies = self._class_bodies(ci)
                j = bisect_left(bodies, (offset - 15,)) - 1
                if j < 0:
                    continue
                code_off, end, midx = bodies[j]
                if code_off + 16 <= offset < end:
                    return code_off, end, (ci, midx)
                # not instructions: the try/handler tables after the insns, the padding and
                # the header of the next code item (scan hits there are false positives)
                if code_off + 16 <= offset < ((self._item_end(code_off) + 3) & ~3) + 16:
                    return None
        entries = self.code_index()
        i = bisect_left(entries, (offset - 15) << 40) - 1  # insns start 16 bytes after code_off
        if i < 0:
            return None
        key = entries[i]
        code_off = key >> 40
        end = self._body_end(code_off)
        if code_off + 16 <= offset < end:
            return code_off, end, ((key >> 20) & 0xFFFFF, key & 0xFFFFF)
        return None

    # ---------------------------------------------------------------- debug info
    def positions(self, debug_info_off: int, until: int = 1 << 32) -> list[tuple[int, int]]:
        """(address, line) position entries of a debug_info_item, in address order, up to
        the first entry past code unit ``until``; [] when absent or malformed (line numbers
        are best effort)."""
        if not debug_info_off or debug_info_off >= self._limit:
            return []
        data = self.data
        limit = self._limit
        pos = debug_info_off
        out: list[tuple[int, int]] = []
        try:
            line, pos = _uleb(data, pos)
            nparams, pos = _uleb(data, pos)
            if nparams > limit - pos:
                return []
            for _ in range(nparams):
                _v, pos = _uleb(data, pos)
            address = 0
            for _ in range(limit - pos):  # every opcode consumes at least one byte
                op = data[pos]
                pos += 1
                if op == 0x00:  # DBG_END_SEQUENCE
                    break
                if op == 0x01:  # DBG_ADVANCE_PC
                    v, pos = _uleb(data, pos)
                    address += v
                elif op == 0x02:  # DBG_ADVANCE_LINE
                    v, pos = _sleb(data, pos)
                    line += v
                elif op == 0x03:  # DBG_START_LOCAL: register, name, type
                    for _k in range(3):
                        _v, pos = _uleb(data, pos)
                elif op == 0x04:  # DBG_START_LOCAL_EXTENDED: + signature
                    for _k in range(4):
                        _v, pos = _uleb(data, pos)
                elif op in (0x05, 0x06, 0x09):  # END_LOCAL, RESTART_LOCAL, SET_FILE
                    _v, pos = _uleb(data, pos)
                elif op in (0x07, 0x08):  # SET_PROLOGUE_END, SET_EPILOGUE_BEGIN
                    pass
                else:  # special opcode: advance address and line, emit a position entry
                    adj = op - 0x0A
                    line += -4 + adj % 15
                    address += adj // 15
                    out.append((address, line))
                    if address > until:
                        break
        except (IndexError, _Overlong):
            return out
        return out
