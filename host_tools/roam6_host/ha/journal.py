"""The binding cache's journal: an HA restart loses no binding (docs/ARCHITECTURE.md "HA continuity").

Two files next to each other:
- PATH: the snapshot, every binding at one moment. Written whole to PATH.tmp, fsync'ed, renamed
  over PATH (atomic: a reader sees the old or the new snapshot, never half of one).
- PATH.log: the changes since that snapshot, appended one frame per binding change before the BA
  that announces the change leaves (ha/driver.py). write() into the page cache survives a crash
  of the process (SIGKILL); `sync` (ha.json journal_sync) adds an fdatasync per change for a crash
  of the host.

Both start with a header: magic (b"R6JS" snapshot, b"R6JL" log), version 1, generation (u32), and
CRC-32 of those 9 bytes. Then frames: length (u32), CRC-32 of the payload (u32), payload (one
ha/record.py record). A compaction (more than `max_records` frames in the log) writes a snapshot of
generation g+1, then a new empty log of generation g+1 (temp file + rename as well); a log whose
generation is not the snapshot's is older than the snapshot and is skipped. A frame cut short at
the very end of the log (the process died inside write()) is dropped with a warning; any other
damage - bad magic, bad CRC, a record that does not decode - refuses the whole journal.
"""
import os
import struct
import zlib

from . import record as R

MAGIC_SNAP, MAGIC_LOG = b"R6JS", b"R6JL"
VERSION = 1
_HDR = struct.Struct(">4sBI")
_FRAME = struct.Struct(">II")
MAX_FRAME = 4096


class JournalCorrupt(Exception):
    pass


def _header(magic, gen):
    h = _HDR.pack(magic, VERSION, gen)
    return h + struct.pack(">I", zlib.crc32(h))


def frame(payload):
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _read(path, magic):
    """(generation, [payload], torn_tail) of one journal file, or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    n = _HDR.size + 4
    if len(data) < n:
        raise JournalCorrupt("%s: %d bytes, shorter than its header" % (path, len(data)))
    m, version, gen = _HDR.unpack_from(data)
    if m != magic or version != VERSION or struct.unpack_from(">I", data, _HDR.size)[0] != zlib.crc32(data[:_HDR.size]):
        raise JournalCorrupt("%s: bad header (not a roam6 journal of version %d)" % (path, VERSION))
    off, out, torn = n, [], False
    while off < len(data):
        if off + _FRAME.size > len(data):
            torn = True
            break
        length, crc = _FRAME.unpack_from(data, off)
        if length > MAX_FRAME:
            raise JournalCorrupt("%s: frame at byte %d claims %d bytes" % (path, off, length))
        end = off + _FRAME.size + length
        if end > len(data):
            torn = True
            break
        payload = data[off + _FRAME.size:end]
        if zlib.crc32(payload) != crc:
            raise JournalCorrupt("%s: checksum mismatch in the frame at byte %d" % (path, off))
        out.append(payload)
        off = end
    return gen, out, torn


class Journal:
    def __init__(self, path, max_records=10000, sync=False):
        self.path = path
        self.log_path = path + ".log"
        self.max_records = max_records
        self.sync = sync
        self.gen = 0
        self.count = 0            # frames in the log since the last snapshot
        self.fd = None
        self.appended = 0
        self.compactions = 0

    def load(self):
        """{HoA: BindingRecord} as of the last change written, and a list of warnings. Raises
        JournalCorrupt when a file is damaged (the caller starts empty and says so)."""
        warnings = []
        state = {}
        snap = _read(self.path, MAGIC_SNAP)
        gen = 0
        if snap is not None:
            gen, payloads, torn = snap
            if torn:
                raise JournalCorrupt("%s: snapshot cut short" % self.path)
            for p in payloads:
                self._fold(state, p, self.path)
        log = _read(self.log_path, MAGIC_LOG)
        if log is not None:
            lgen, payloads, torn = log
            if lgen == gen:
                for p in payloads:
                    self._fold(state, p, self.log_path)
                if torn:
                    warnings.append("%s: last change cut short (the HA died while writing it): dropped" % self.log_path)
            elif snap is not None and lgen < gen:
                warnings.append("%s: generation %d is older than the snapshot's %d: skipped"
                                % (self.log_path, lgen, gen))
            else:
                raise JournalCorrupt("%s: generation %d does not match the snapshot's %d" % (self.log_path, lgen, gen))
        self.gen = gen
        return state, warnings

    @staticmethod
    def _fold(state, payload, where):
        try:
            rec = R.decode(payload)
        except R.RecordError as exc:
            raise JournalCorrupt("%s: %s" % (where, exc)) from None
        if rec.kind == R.REMOVED:
            state.pop(rec.hoa, None)
        else:
            state[rec.hoa] = rec

    def start(self, records):
        """Begin writing: a fresh snapshot of `records` (what the HA restored) and an empty log."""
        self.compact(records)

    def append(self, rec):
        """One binding change (a BindingRecord or its bytes), written before its BA leaves.
        Returns True when the log has grown past max_records (the caller then compacts with a
        snapshot of the cache)."""
        os.write(self.fd, frame(rec if isinstance(rec, bytes) else rec.encode()))
        if self.sync:
            os.fdatasync(self.fd)
        self.count += 1
        self.appended += 1
        return self.count >= self.max_records

    def append_many(self, recs):
        """append() for the changes of one pass of the HA's loop (records' bytes): one write for
        all of them (frames are read back one by one; a torn tail loses only the last)."""
        if not recs:
            return False
        parts = []
        for r in recs:                      # frame(r) each, joined once
            parts.append(_FRAME.pack(len(r), zlib.crc32(r)))
            parts.append(r)
        os.write(self.fd, b"".join(parts))
        if self.sync:
            os.fdatasync(self.fd)
        self.count += len(recs)
        self.appended += len(recs)
        return self.count >= self.max_records

    def compact(self, records):
        gen = self.gen + 1
        _atomic_write(self.path, _header(MAGIC_SNAP, gen) + b"".join(frame(r.encode()) for r in records))
        _atomic_write(self.log_path, _header(MAGIC_LOG, gen))
        if self.fd is not None:
            os.close(self.fd)
        self.fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self.gen = gen
        self.count = 0
        self.compactions += 1

    def set_aside(self):
        """Move damaged files out of the way (PATH.corrupt, PATH.log.corrupt) for a person to look at."""
        for p in (self.path, self.log_path):
            if os.path.exists(p):
                os.replace(p, p + ".corrupt")

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _atomic_write(path, data):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
