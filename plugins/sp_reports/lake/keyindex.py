"""The MERGE of a document into a table with natural keys, in bounded memory.

A document's rows and the table's rows are matched on their key (marketplace_id + natural keys) with
a grace hash join: both sides' keys go into ``n_buckets`` buckets by a hash of the key (spilled to
local disk when they don't fit in memory), and each bucket is then joined in memory with pyarrow.
The number of buckets grows with the rows, so a bucket stays a few tens of MB whatever the size of
the document or the table.

* Source side, built from the document's data files: for every row its key (and the key's hash),
  source_line, ordinal (document order), and where it was written (file number, position in the file). Duplicates
  inside the document are resolved here: the row with the highest (source_line, ordinal) wins.
* Table side: only rows whose key may be in the document (a Bloom filter of the document's keys) are
  indexed, with their (table file, position) and whether they come from a more recent report.

The join says which table rows the document replaces (rewritten out of their files) and which of the
document's rows lose to a more recent report (filtered out of the new files). Results are kept per
table file, so a retry after a concurrent commit only has to scan the files that commit added.

Keys compare as text (each key column cast to string, null as ``\\x00``): null keys are equal to each
other, so a row with a null natural key is still updated in place by a later report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sp_reports.background import in_background, ordered_map
from sp_reports.memory import release_memory

KEY_SEPARATOR = "\x1f"
NULL_KEY = "\x00"
# Bytes a key-index row costs in a bucket while it is joined (key text, ids, sort and hash copies).
BYTES_PER_ROW = 160
BUCKET_BYTES = 16 * 1024 * 1024
MAX_BUCKETS = 1024  # at most 2**16 (BucketStore.add)
SPILL_BUFFER_BYTES = 16 * 1024 * 1024
_BLOOM_MIN_BITS, _BLOOM_MAX_BITS, _BLOOM_BITS_PER_KEY = 1 << 16, 1 << 27, 8

# Threads joining buckets (Acero releases the GIL), and reading and hashing the document's keys while
# only their hashes are kept (a MERGE into an empty table). Two threads reading the keys for the full
# index were no faster and took more memory (docs/benchmarks.md).
_JOIN_THREADS = 2
_READ_THREADS = 2
_MULTIPLIERS = (np.random.default_rng(0x5EED5EED).integers(1, 2**63, 64, dtype=np.uint64) * 2 + 1).astype(np.uint64)

# "group" numbers the leading marketplace_id (few distinct, often long values: several marketplaces
# joined), "key" is the text of the other key columns: a row's key is the pair.
SOURCE_SCHEMA = pa.schema(
    [
        ("group", pa.int32()),
        ("key", pa.string()),
        ("line", pa.int64()),
        ("ordinal", pa.int64()),
        ("file", pa.int32()),
        ("pos", pa.int64()),
    ]
)
TARGET_SCHEMA = pa.schema(
    [("group", pa.int32()), ("key", pa.string()), ("newer", pa.bool_()), ("tfile", pa.int32()), ("tpos", pa.int64())]
)


def bucket_count(rows: int) -> int:
    return max(1, min(MAX_BUCKETS, math.ceil(rows * BYTES_PER_ROW / BUCKET_BYTES)))


def key_strings(
    data: pa.Table | pa.RecordBatch, columns: Sequence[str], constants: dict[str, str | None] | None = None
) -> pa.Array:
    """One text key per row: the key columns cast to string (null -> ``\\x00``) joined by ``\\x1f``.

    ``constants`` supplies columns that are not in ``data`` (partition values of a table file).
    """
    constants = constants or {}
    n = data.num_rows
    parts: list[pa.Array] = []
    for name in columns:
        if name in data.schema.names:
            column = data.column(name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            parts.append(pc.fill_null(pc.cast(column, pa.string()), NULL_KEY))
        else:
            value = constants.get(name)
            parts.append(pa.repeat(pa.scalar(NULL_KEY if value is None else value, pa.string()), n))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, KEY_SEPARATOR)


def key_hashes(keys: pa.Array, max_cells: int = 1 << 20) -> np.ndarray:
    """A 64-bit hash of each (non-null) key text, vectorised with numpy: each key's bytes, zero-padded
    to a multiple of 8, are read as 64-bit words and mixed (only a key's own words: the hash must not
    depend on the longest key of the batch). Works through ``max_cells`` bytes of padded keys at a
    time, so its temporaries stay small (and in cache)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if not pa.types.is_string(keys.type):
        keys = pc.cast(keys, pa.string())
    lengths = pc.binary_length(keys).to_numpy(zero_copy_only=False).astype(np.int64)
    width = max(8, (int(lengths.max()) + 7) // 8 * 8)
    step = max(1, max_cells // width)
    out = np.empty(n, dtype=np.uint64)
    if pc.all(pc.string_is_ascii(keys)).as_py():
        # One character a byte: padded to the same width by Arrow, the keys are rows of a word matrix.
        padded = pc.utf8_rpad(keys, width=width, padding="\0")
        words = np.frombuffer(padded.buffers()[2], dtype="<u8", count=n * width // 8).reshape(n, width // 8)
        for lo in range(0, n, step):
            out[lo : lo + step] = _mix(words[lo : lo + step], lengths[lo : lo + step])
        return out
    # Any text: each key's bytes gathered into a zero-padded row.
    _, offsets_buffer, data_buffer = keys.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=n + 1, offset=keys.offset * 4)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None and data_buffer.size else None
    if data is None:
        data = np.zeros(1, dtype=np.uint8)
    columns = np.arange(width, dtype=np.int64)
    last = len(data) - 1
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        index = offsets[lo:hi, None].astype(np.int64) + columns[None, :]
        np.minimum(index, last, out=index)
        cells = data[index]
        cells[columns[None, :] >= lengths[lo:hi, None]] = 0
        out[lo:hi] = _mix(cells.view("<u8"), lengths[lo:hi])
    return out


def _mix(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The hash of each row of zero-padded 64-bit ``words`` (rows of keys of ``lengths`` bytes)."""
    h = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            mixed = (h ^ words[:, j]) * _MULTIPLIERS[j & 63]
            mixed ^= mixed >> np.uint64(29)
            if j == 0:
                h = mixed
            else:
                np.copyto(h, mixed, where=lengths > 8 * j)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
    return h


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values, by sorting: numpy 2's hash-based ``unique`` took 30x longer on the
    int32 row positions of a MERGE (0.6 s of a 1 GB merge-update)."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _repeats(hashes: np.ndarray) -> bool:
    ordered = np.sort(hashes)
    return bool((ordered[1:] == ordered[:-1]).any())


class BloomFilter:
    """Two bits per key in a bitset of 8-16 bits per key (false positives 1.4-5%), at most 16 MiB."""

    def __init__(self, expected_keys: int):
        bits = _BLOOM_MIN_BITS
        while bits < expected_keys * _BLOOM_BITS_PER_KEY and bits < _BLOOM_MAX_BITS:
            bits *= 2
        self._shift = np.uint64(64 - int(math.log2(bits)))
        self._mask = np.uint64(bits - 1)
        self._words = np.zeros(bits // 64, dtype=np.uint64)

    def _positions(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = hashes >> self._shift
        with np.errstate(over="ignore"):
            second = (hashes * np.uint64(0x9E3779B97F4A7C15)) >> self._shift
        return first & self._mask, second & self._mask

    def add(self, hashes: np.ndarray) -> None:
        # One bit position (0-63 within a word) at a time: keys setting the same bit of the same word
        # then write the same value, so a plain fancy-indexed OR is right (and much faster than ufunc.at).
        for bit in self._positions(hashes):
            offset = (bit & np.uint64(63)).astype(np.uint8)
            words = (bit >> np.uint64(6))[np.argsort(offset, kind="stable")]
            start = 0
            for position, count in enumerate(np.bincount(offset, minlength=64)):
                if count:
                    self._words[words[start : start + count]] |= np.uint64(1) << np.uint64(position)
                    start += count

    def may_contain(self, hashes: np.ndarray) -> np.ndarray:
        result = np.ones(len(hashes), dtype=bool)
        for bit in self._positions(hashes):
            result &= ((self._words[bit >> np.uint64(6)] >> (bit & np.uint64(63))) & np.uint64(1)).astype(bool)
        return result


class BucketStore:
    """Rows of one schema partitioned into buckets: in memory with one bucket, else spilled to Arrow IPC
    files in ``spill_dir`` whenever ``buffer_bytes`` are pending. Each bucket's key hashes are also kept
    on their own (``hashes``): telling a bucket's keys distinct reads 8 bytes a row, not the rows. With
    ``schema`` None it keeps the hashes only (``add(None, hashes)``)."""

    def __init__(
        self,
        schema: pa.Schema | None,
        n_buckets: int,
        spill_dir: str | None,
        name: str,
        buffer_bytes: int | None = None,
    ):
        if n_buckets > 1 and spill_dir is None:
            raise ValueError("a spill directory is needed for more than one bucket")
        self.schema, self.n_buckets, self._dir, self._name = schema, n_buckets, spill_dir, name
        self._buffer_bytes = buffer_bytes or SPILL_BUFFER_BYTES
        self._pending: list[list[pa.RecordBatch]] = [[] for _ in range(n_buckets)]
        self._pending_hashes: list[list[np.ndarray]] = [[] for _ in range(n_buckets)]
        self._pending_bytes = 0
        self._finished = False
        # bucket -> (rows file, its IPC writer, hashes file); no rows file for a store of hashes only
        self._writers: dict[int, tuple[pa.NativeFile | None, pa.ipc.RecordBatchStreamWriter | None, pa.NativeFile]] = {}
        self.rows = 0

    def _path(self, bucket: int, suffix: str = "arrows") -> str:
        if self._dir is None:  # one bucket never spills (the constructor requires spill_dir for more)
            raise RuntimeError("a single-bucket store has no spill files")
        return os.path.join(self._dir, f"{self._name}-{bucket:04d}.{suffix}")

    def add(self, batch: pa.RecordBatch | None, hashes: np.ndarray) -> None:
        if self._finished:  # a spill file, once closed, is not appended to
            raise RuntimeError("rows added to a bucket store after it was read")
        if len(hashes) == 0:
            return
        self.rows += len(hashes)
        if self.n_buckets == 1:
            if batch is not None:
                self._pending[0].append(batch)
            self._pending_hashes[0].append(hashes)
            return
        # uint16 (MAX_BUCKETS fits): numpy's stable sort of 16-bit integers is a radix sort, far faster
        # than its merge sort of int64.
        buckets = (hashes % np.uint64(self.n_buckets)).astype(np.uint16)
        order = np.argsort(buckets, kind="stable")
        counts = np.bincount(buckets, minlength=self.n_buckets)
        taken = None if batch is None else batch.take(pa.array(order))
        hashes = hashes[order]
        self._pending_bytes += hashes.nbytes + (0 if taken is None else taken.nbytes)
        start = 0
        for bucket, count in enumerate(counts):
            if count:
                if taken is not None:
                    self._pending[bucket].append(taken.slice(start, int(count)))
                self._pending_hashes[bucket].append(hashes[start : start + int(count)])
                start += int(count)
        if self._pending_bytes > self._buffer_bytes:
            self._spill()

    def _spill(self) -> None:
        for bucket, batches in enumerate(self._pending):
            if not self._pending_hashes[bucket]:
                continue
            if bucket not in self._writers:
                sink = writer = None
                if self.schema is not None:
                    sink = pa.OSFile(self._path(bucket), "wb")
                    writer = pa.ipc.new_stream(sink, self.schema)
                self._writers[bucket] = (sink, writer, pa.OSFile(self._path(bucket, "hashes"), "wb"))
            _, writer, hash_sink = self._writers[bucket]
            # One batch and one array per bucket: IPC writes every buffer of every batch with a syscall
            # of its own (28,000 a 1 GB document, 0.3-0.5 s) when they go as they came.
            if batches:
                if writer is None:
                    raise RuntimeError("rows added to a bucket store that keeps only hashes (it has no schema)")
                writer.write_batch(pa.concat_batches(batches) if len(batches) > 1 else batches[0])
            hash_sink.write(np.concatenate(self._pending_hashes[bucket]))
            self._pending[bucket] = []
            self._pending_hashes[bucket] = []
        self._pending_bytes = 0
        # No release_memory() here: the next pending rows reuse what was freed (releasing it after every
        # spill cost a 3 GB MERGE 1.5 s of page faults, for 5 MB less peak RSS).

    def hashes(self, bucket: int) -> np.ndarray:
        """The key hashes of a bucket's rows, in the order ``read`` returns the rows (call after the last
        ``add``)."""
        self.finish()
        parts = []
        if self.n_buckets > 1 and os.path.exists(self._path(bucket, "hashes")):
            parts.append(np.fromfile(self._path(bucket, "hashes"), dtype=np.uint64))
        parts += self._pending_hashes[bucket]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def read(self, bucket: int) -> pa.Table:
        """All rows of a bucket (call after the last ``add``)."""
        if self.schema is None:
            raise RuntimeError("a bucket store of hashes only has no rows")
        self.finish()
        tables = []
        if self.n_buckets > 1 and os.path.exists(self._path(bucket)):
            with pa.OSFile(self._path(bucket), "rb") as f:
                tables.append(pa.ipc.open_stream(f).read_all())
        if self._pending[bucket]:
            tables.append(pa.Table.from_batches(self._pending[bucket], self.schema))
        if not tables:
            return self.schema.empty_table()
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def replace(self, bucket: int, table: pa.Table, hashes: np.ndarray) -> None:
        """Replace a bucket's rows (after ``read``), e.g. by the bucket's deduplicated rows, and their hashes."""
        if self.n_buckets == 1:
            self._pending[0] = table.combine_chunks().to_batches()
            self._pending_hashes[0] = [hashes]
            return
        with pa.OSFile(self._path(bucket), "wb") as sink, pa.ipc.new_stream(sink, self.schema) as writer:
            writer.write_table(table)
        hashes.tofile(self._path(bucket, "hashes"))
        self._pending[bucket] = []
        self._pending_hashes[bucket] = []

    def finish(self) -> None:
        """No more rows (``add`` refuses them from now on): everything spilled, the spill files closed.
        ``read`` and ``hashes`` finish the store; once finished, they may be called from several threads."""
        if self.n_buckets > 1 and self._pending_bytes:
            self._spill()
        self._finish_spill_files()
        self._finished = True

    def _finish_spill_files(self) -> None:
        for sink, writer, hash_sink in self._writers.values():
            try:
                if writer is not None:
                    writer.close()
            finally:
                if sink is not None:
                    sink.close()
                hash_sink.close()
        self._writers.clear()

    def close(self) -> None:
        self._finish_spill_files()
        self._pending = [[] for _ in range(self.n_buckets)]
        self._pending_hashes = [[] for _ in range(self.n_buckets)]
        if self.n_buckets > 1:
            for bucket in range(self.n_buckets):
                for suffix in ("arrows", "hashes"):
                    try:
                        os.unlink(self._path(bucket, suffix))
                    except FileNotFoundError:
                        pass


@dataclass
class FileMatch:
    """What the document does to one table file."""

    deleted: np.ndarray  # sorted unique row positions (int32) replaced by the document's rows
    superseded_file: np.ndarray  # (file number, position) of document rows that lose to this file's rows
    superseded_pos: np.ndarray


@dataclass
class SourceDrops:
    """Rows of the document's new files that must not land, by file number."""

    positions: dict[int, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def of(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> SourceDrops:
        files_parts, pos_parts = [], []
        for files, positions in pairs:
            if len(files):
                files_parts.append(np.asarray(files, dtype=np.int64))
                pos_parts.append(np.asarray(positions, dtype=np.int32))
        drops = SourceDrops()
        if not files_parts:
            return drops
        files = np.concatenate(files_parts)
        positions = np.concatenate(pos_parts)
        order = np.lexsort((positions, files))
        files, positions = files[order], positions[order]
        for number in sorted_unique(files):
            lo, hi = np.searchsorted(files, [number, number + 1])
            drops.positions[int(number)] = sorted_unique(positions[lo:hi])
        return drops

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.positions.values())


class MergeIndex:
    """The key index of one document (see the module docstring)."""

    def __init__(self, key_columns: Sequence[str], source_rows: int, table_rows: int, spill_dir: str | None):
        self.key_columns = list(key_columns)
        # Table rows indexed: the document's matches (at most one per key) plus Bloom false positives.
        self.n_buckets = bucket_count(source_rows + table_rows // 100)
        self._spill_dir = spill_dir
        # A MERGE into an empty table (a first landing) needs the document's rows in the index only if
        # the document repeats a key, or if a concurrent landing adds table rows before the commit
        # (``match`` on a retry). Until then only the key hashes are kept (8 bytes a row, not ~50, and
        # no reordering of the rows); ``_index_rows`` reads the files again when either happens.
        self._rows_indexed = bool(table_rows)
        self._source = BucketStore(SOURCE_SCHEMA if self._rows_indexed else None, self.n_buckets, spill_dir, "source")
        self._source_files: tuple | None = None  # add_source_files' arguments, for _index_rows
        self._groups: dict[str, int] = {}
        # Which table rows may match the document: none to tell apart in an empty table (the first
        # landing), so no filter is built; should a concurrent landing add rows before the commit
        # (``match`` on a retry), every one of them is then a candidate.
        self._bloom = BloomFilter(source_rows) if table_rows else None
        self.duplicates = SourceDrops()
        self.source_rows = 0
        self._deduplicated = False
        self._target_files = 0

    @property
    def _text_columns(self) -> list[str]:
        """The key columns of the key text: all but a leading marketplace_id (the rows' group)."""
        if len(self.key_columns) > 1 and self.key_columns[0] == "marketplace_id":
            return self.key_columns[1:]
        return self.key_columns

    def _keys(
        self, data: pa.Table | pa.RecordBatch, constants: dict[str, str | None]
    ) -> tuple[pa.Array, pa.Array, np.ndarray]:
        """(group, key text, hash of the key text) of every row."""
        n = data.num_rows
        keys = key_strings(data, self._text_columns, constants)
        name = self.key_columns[0]
        if len(self._text_columns) == len(self.key_columns):
            groups = pa.repeat(pa.scalar(0, pa.int32()), n)
        elif name in data.schema.names:
            column = data.column(name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            encoded = pc.dictionary_encode(pc.fill_null(pc.cast(column, pa.string()), NULL_KEY))
            ids = pa.array([self._group(v) for v in encoded.dictionary.to_pylist()], pa.int32())
            groups = ids.take(encoded.indices)
        else:
            groups = pa.repeat(pa.scalar(self._group(constants.get(name) or NULL_KEY), pa.int32()), n)
        return groups, keys, key_hashes(keys)

    def _group(self, value: str) -> int:
        return self._groups.setdefault(value, len(self._groups))

    def add_source_files(
        self,
        files: Iterable[tuple[int, str, dict[str, str | None]]],
        read_file: Callable[[str, list[str]], Iterable[pa.RecordBatch]],
        line_column: str | None,
    ) -> None:
        """Index the new data files of the document, (file number, path, partition values) each (read back:
        only their key and line columns). Files are read and their keys hashed in worker threads."""

        def keyed() -> Generator[tuple[int, int, pa.RecordBatch, pa.Array, pa.Array, np.ndarray], None, None]:
            for file_no, path, partition in files:
                columns = [c for c in self.key_columns if c not in partition]
                if line_column:
                    columns.append(line_column)
                position = 0
                for batch in read_file(path, columns):
                    yield file_no, position, batch, *self._keys(batch, partition)
                    position += batch.num_rows

        files = list(files)
        self._source_files = (files, read_file, line_column)
        if not self._rows_indexed:
            # Only the hashes are kept (8 bytes a row), so two files are read and hashed at a time; of the
            # key text only (no groups: their numbering is not for two threads to share).
            def file_hashes(file: tuple[int, str, dict[str, str | None]]) -> np.ndarray:
                _, path, partition = file
                columns = [c for c in self._text_columns if c not in partition]
                parts = [
                    key_hashes(key_strings(batch, self._text_columns, partition)) for batch in read_file(path, columns)
                ]
                return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

            for hashes in ordered_map(file_hashes, files, workers=_READ_THREADS, name="sp-reports-keys"):
                self._source.add(None, hashes)
                self.source_rows += len(hashes)
            return
        for file_no, position, batch, groups, keys, hashes in in_background(keyed, depth=2):
            self._add_source(file_no, position, batch, groups, keys, hashes, line_column)

    def _index_rows(self) -> None:
        """Index the document's rows (not only their key hashes): read its files again."""
        assert self._source_files is not None
        self._source.close()
        self._source = BucketStore(SOURCE_SCHEMA, self.n_buckets, self._spill_dir, "source-rows")
        self._rows_indexed, self.source_rows = True, 0
        self.add_source_files(*self._source_files)

    def _add_source(
        self,
        file_no: int,
        position: int,
        batch: pa.RecordBatch,
        groups: pa.Array,
        keys: pa.Array,
        hashes: np.ndarray,
        line_column: str | None,
    ) -> None:
        n = batch.num_rows
        if self._bloom is not None:
            self._bloom.add(hashes)
        positions = np.arange(position, position + n, dtype=np.int64)
        # Ties on source_line (rows of one record) go to the later row in the document's files.
        ordinal = positions + (file_no << 32)
        line = pc.fill_null(pc.cast(batch.column(line_column), pa.int64()), -1) if line_column else ordinal
        indexed = pa.RecordBatch.from_arrays(
            [groups, keys, line, pa.array(ordinal), pa.repeat(pa.scalar(file_no, pa.int32()), n), pa.array(positions)],
            schema=SOURCE_SCHEMA,
        )
        self._source.add(indexed, hashes)
        self.source_rows += n

    def deduplicate(self) -> None:
        """Keep the last row (highest source_line, then ordinal) of every key; the others are duplicates.

        A bucket whose key hashes are all distinct has none; otherwise its keys are counted with a hash
        aggregation, and only the rows of duplicated keys (usually none) are sorted."""
        if self._deduplicated:
            return
        losers_file, losers_pos = [], []
        keys = ["group", "key"]
        # Distinct hashes are distinct keys (cheaper to tell than from the key texts); numpy's sort is
        # much faster here than count_distinct.
        suspects = [bucket for bucket in range(self.n_buckets) if _repeats(self._source.hashes(bucket))]
        if suspects and not self._rows_indexed:
            self._index_rows()
        for bucket in suspects:
            rows = self._source.read(bucket)
            counts = rows.group_by(keys, use_threads=False).aggregate([([], "count_all")])
            if counts.num_rows == rows.num_rows:
                continue  # no duplicates in this bucket
            repeated = counts.filter(pc.greater(counts.column("count_all"), 1)).select(keys)
            dups = rows.join(repeated, keys=keys, join_type="left semi", use_threads=False)
            dups = dups.sort_by(
                [("group", "ascending"), ("key", "ascending"), ("line", "ascending"), ("ordinal", "ascending")]
            )
            n = dups.num_rows
            last = np.ones(n, dtype=bool)
            last[:-1] = False  # the last row of a (group, key) run is where either changes
            for name in keys:
                column = dups.column(name)
                last[:-1] |= pc.not_equal(column.slice(0, n - 1), column.slice(1)).to_numpy(zero_copy_only=False)
            losers = dups.filter(pa.array(~last))
            losers_file.append(losers.column("file").to_numpy())
            losers_pos.append(losers.column("pos").to_numpy())
            beaten = pc.is_in(rows.column("ordinal"), value_set=losers.column("ordinal").combine_chunks())
            kept = rows.filter(pc.invert(beaten))
            self._source.replace(bucket, kept, key_hashes(kept.column("key").combine_chunks()))
        self.duplicates = SourceDrops.of(zip(losers_file, losers_pos, strict=True))
        self._deduplicated = True

    def match(
        self,
        files: Sequence[tuple[str, dict[str, str | None]]],
        read_file: Callable[[str, list[str]], Iterable[pa.RecordBatch]],
        newer: Callable[[pa.RecordBatch], pa.Array],
        extra_columns: Sequence[str],
    ) -> dict[str, FileMatch]:
        """Match the table files ``(path, partition values)`` against the document.

        ``read_file(path, columns)`` streams a file's columns (those it has); ``newer(batch)`` says
        which table rows come from a report more recent than the document's, from ``extra_columns``.
        """
        self.deduplicate()
        results: dict[str, FileMatch] = {}
        if not files:
            return results
        if not self._rows_indexed:  # table rows appeared since the index was built (a retry)
            self._index_rows()
        target = BucketStore(TARGET_SCHEMA, self.n_buckets, self._spill_dir, f"target{self._target_files}")
        self._target_files += 1
        paths = [path for path, _ in files]
        try:

            def candidates() -> Generator[tuple[pa.RecordBatch, np.ndarray], None, None]:
                """The table rows whose key may be the document's, and their hashes (in a worker thread)."""
                for number, (path, partition) in enumerate(files):
                    wanted = [c for c in self.key_columns if c not in partition] + list(extra_columns)
                    position = 0
                    for batch in read_file(path, wanted):
                        n = batch.num_rows
                        groups, keys, hashes = self._keys(batch, partition)
                        positions = np.arange(position, position + n)
                        position += n
                        maybe = None if self._bloom is None else self._bloom.may_contain(hashes)
                        if maybe is not None and not maybe.all():  # all are candidates in a merge-update
                            if not maybe.any():
                                continue
                            mask = pa.array(maybe)
                            batch, groups, keys = batch.filter(mask), groups.filter(mask), keys.filter(mask)
                            hashes, positions = hashes[maybe], positions[maybe]
                        yield (
                            pa.RecordBatch.from_arrays(
                                [
                                    groups,
                                    keys,
                                    pc.fill_null(newer(batch), False),
                                    pa.repeat(pa.scalar(number, pa.int32()), batch.num_rows),
                                    pa.array(positions),
                                ],
                                schema=TARGET_SCHEMA,
                            ),
                            hashes,
                        )

            for indexed, hashes in in_background(candidates, depth=2):
                target.add(indexed, hashes)

            def join(bucket: int) -> tuple[np.ndarray, ...] | None:
                """(newer, table file, table position, source file, source position) of the bucket's matches."""
                table_rows = target.read(bucket)
                if table_rows.num_rows == 0:
                    return None
                source_rows = self._source.read(bucket).select(["group", "key", "file", "pos"])
                if source_rows.num_rows == 0:
                    return None
                joined = source_rows.join(table_rows, keys=["group", "key"], join_type="inner", use_threads=False)
                if joined.num_rows == 0:
                    return None
                matched = (
                    joined.column("newer").to_numpy(zero_copy_only=False),
                    joined.column("tfile").to_numpy(),
                    joined.column("tpos").to_numpy().astype(np.int32),  # positions: 4 bytes a row
                    joined.column("file").to_numpy(),
                    joined.column("pos").to_numpy().astype(np.int32),
                )
                del joined, source_rows, table_rows
                release_memory()
                return matched

            deleted: dict[int, list[np.ndarray]] = {}
            superseded: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
            target.finish()
            self._source.finish()
            # Buckets are joined two at a time (Acero releases the GIL); at most three are in flight.
            for matched in ordered_map(join, range(self.n_buckets), workers=_JOIN_THREADS):
                if matched is None:
                    continue
                is_newer, tfile, tpos, src_file, src_pos = matched
                for number in sorted_unique(tfile):
                    of_file = tfile == number
                    older = of_file & ~is_newer
                    if older.any():
                        deleted.setdefault(int(number), []).append(tpos[older])
                    wins = of_file & is_newer
                    if wins.any():
                        lists = superseded.setdefault(int(number), ([], []))
                        lists[0].append(src_file[wins])
                        lists[1].append(src_pos[wins])
            empty = np.zeros(0, dtype=np.int32)
            for number, path in enumerate(paths):
                dels = sorted_unique(np.concatenate(deleted[number])) if number in deleted else empty
                sup_file, sup_pos = superseded.get(number, ([], []))
                results[path] = FileMatch(
                    deleted=dels,
                    superseded_file=np.concatenate(sup_file) if sup_file else empty,
                    superseded_pos=np.concatenate(sup_pos) if sup_pos else empty,
                )
        finally:
            target.close()
        return results

    def close(self) -> None:
        self._source.close()
