"""Kaldi binary ContextDependency (tree file) writer and reader, and conversion to kaldi_hmm_gmm.

Binary layout (Kaldi base/io-funcs, tree/event-map.cc, tree/context-dep.cc):
  file      = "\\0B" ContextDependency-object
  object    = token("ContextDependency") int32(N) int32(P) token("ToPdf") EventMap token("EndContextDependency")
  EventMap  = token("NULL")
            | token("CE") int32(answer)
            | token("SE") int32(key) intvec(yes-values) token("{") EventMap(yes) EventMap(no) token("}")
            | token("TE") int32(key) uint32(size) token("(") EventMap * size token(")")
  token(s)  = the characters of s followed by one space
  int32(v)  = byte 4, then v little-endian;  uint32(v) = byte -4 (0xFC), then v little-endian
  intvec(v) = byte 4 (element size), int32 count (raw, no size byte), the int32 elements (sorted)
"""
from __future__ import annotations

import os
import struct
import sys

from asrdistill.errors import UserFacingError
from asrdistill.tree.event_map import (ConstantEventMap, EventMap, SplitEventMap, TableEventMap, Tree)
from asrdistill.utils import atomic_path

BINARY_HEADER = b"\0B"


# ------------------------------------------------------------------------------------------- writing
def _token(s: str) -> bytes:
    return s.encode("ascii") + b" "


def _int32(v: int) -> bytes:
    return b"\x04" + struct.pack("<i", int(v))


def _uint32(v: int) -> bytes:
    return b"\xfc" + struct.pack("<I", int(v))


def _write_event_map(node: EventMap | None, out: list[bytes]) -> None:
    # iterative pre-order walk: deep trees must not hit Python's recursion limit
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif item is None:
            out.append(_token("NULL"))
        elif isinstance(item, ConstantEventMap):
            out.append(_token("CE") + _int32(item.answer))
        elif isinstance(item, SplitEventMap):
            values = sorted(set(int(v) for v in item.yes_set))
            out.append(_token("SE") + _int32(item.key) + b"\x04" + struct.pack("<i", len(values))
                       + struct.pack(f"<{len(values)}i", *values) + _token("{"))
            stack.extend((_token("}"), item.no, item.yes))
        elif isinstance(item, TableEventMap):
            out.append(_token("TE") + _int32(item.key) + _uint32(len(item.table)) + _token("("))
            stack.append(_token(")"))
            stack.extend(reversed(item.table))
        else:
            raise TypeError(f"not an EventMap node: {item!r}")


def event_map_to_bytes(node: EventMap | None) -> bytes:
    out: list[bytes] = []
    _write_event_map(node, out)
    return b"".join(out)


def context_dependency_to_bytes(tree: Tree) -> bytes:
    """The ContextDependency object in Kaldi binary form (without the "\\0B" file header)."""
    return (_token("ContextDependency") + _int32(tree.context_width) + _int32(tree.central_position)
            + _token("ToPdf") + event_map_to_bytes(tree.root) + _token("EndContextDependency"))


# ------------------------------------------------------------------------------------------- reading
class _Reader:
    def __init__(self, data: bytes, origin: str):
        self.data, self.pos, self.origin = data, 0, origin

    def fail(self, msg: str):
        raise UserFacingError(f"{self.origin}: bad Kaldi binary tree at byte {self.pos}: {msg}")

    def token(self) -> str:
        end = self.data.find(b" ", self.pos)
        if end < 0:
            self.fail("expected a token")
        tok = self.data[self.pos:end].decode("ascii", errors="replace")
        self.pos = end + 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.token()
        if got != tok:
            self.fail(f"expected token {tok!r}, got {got!r}")

    def peek(self) -> int:
        if self.pos >= len(self.data):
            self.fail("unexpected end of data")
        return self.data[self.pos]

    def _basic(self, size_byte: int, fmt: str) -> int:
        if self.pos + 5 > len(self.data):
            self.fail("unexpected end of data")
        if self.data[self.pos] != size_byte:
            self.fail(f"expected integer size byte {size_byte}, got {self.data[self.pos]}")
        (v,) = struct.unpack_from(fmt, self.data, self.pos + 1)
        self.pos += 5
        return v

    def int32(self) -> int:
        return self._basic(4, "<i")

    def uint32(self) -> int:
        return self._basic(0xFC, "<I")

    def int_vector(self) -> tuple[int, ...]:
        if self.pos + 5 > len(self.data) or self.data[self.pos] != 4:
            self.fail("expected an int32 vector")
        (n,) = struct.unpack_from("<i", self.data, self.pos + 1)
        if n < 0 or self.pos + 5 + 4 * n > len(self.data):
            self.fail("bad vector length")
        values = struct.unpack_from(f"<{n}i", self.data, self.pos + 5)
        self.pos += 5 + 4 * n
        return tuple(values)

    def event_map(self) -> EventMap | None:
        c = chr(self.peek())
        if c == "N":
            self.expect("NULL")
            return None
        if c == "C":
            self.expect("CE")
            return ConstantEventMap(self.int32())
        if c == "T":
            self.expect("TE")
            key = self.int32()
            size = self.uint32()
            self.expect("(")
            table = [self.event_map() for _ in range(size)]
            self.expect(")")
            return TableEventMap(key, table)
        if c == "S":
            self.expect("SE")
            key = self.int32()
            yes_set = self.int_vector()
            self.expect("{")
            yes = self.event_map()
            no = self.event_map()
            self.expect("}")
            if yes is None or no is None:
                self.fail("SplitEventMap with a NULL branch")
            return SplitEventMap(key, tuple(sorted(yes_set)), yes, no)
        self.fail(f"unexpected character {c!r} (text-mode trees are not supported)")


def context_dependency_from_bytes(data: bytes, origin: str = "<bytes>") -> Tree:
    """Parse a Kaldi binary ContextDependency (with or without the "\\0B" header)."""
    if data.startswith(BINARY_HEADER):
        data = data[2:]
    r = _Reader(bytes(data), origin)
    r.expect("ContextDependency")
    n, p = r.int32(), r.int32()
    r.expect("ToPdf")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # the reader recurses once per tree level
    try:
        root = r.event_map()
    finally:
        sys.setrecursionlimit(limit)
    r.expect("EndContextDependency")
    if root is None:
        r.fail("empty tree")
    try:
        return Tree(root, n, p)
    except ValueError as e:
        raise UserFacingError(f"{origin}: {e}") from e


# ------------------------------------------------------------------------------------------- files, kaldi_hmm_gmm
def write_tree(path: str | os.PathLike, tree: Tree) -> None:
    """Write ``tree`` as a Kaldi binary tree file (readable by Kaldi's tools), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(BINARY_HEADER + context_dependency_to_bytes(tree))


def read_tree(path: str | os.PathLike) -> Tree:
    """Read a Kaldi binary tree file (e.g. exp/tri1/tree)."""
    data = open(path, "rb").read()
    if not data.startswith(BINARY_HEADER):
        raise UserFacingError(f"{path}: not a Kaldi binary tree file (text trees: convert with "
                              f"copy-tree --binary=true)")
    return context_dependency_from_bytes(data, str(path))


def to_context_dependency(tree: Tree):
    """Load ``tree`` into a ``kaldi_hmm_gmm.ContextDependency`` through its pickling hook."""
    import kaldi_hmm_gmm

    data = context_dependency_to_bytes(tree)
    cd = kaldi_hmm_gmm.ContextDependency.__new__(kaldi_hmm_gmm.ContextDependency)
    cd.__setstate__((list(struct.unpack(f"{len(data)}b", data)),))
    return cd


def from_context_dependency(cd) -> Tree:
    """The Python ``Tree`` of a ``kaldi_hmm_gmm.ContextDependency`` (e.g. a monophone tree)."""
    (values,) = cd.__getstate__()
    return context_dependency_from_bytes(struct.pack(f"{len(values)}b", *values), "ContextDependency")
