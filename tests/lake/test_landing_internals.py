"""The landing's building blocks: partitioned data files with statistics, key hashing, spilled buckets."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sp_reports.lake import datafiles
from sp_reports.lake.datafiles import (
    HIVE_NULL,
    PartitionedWriter,
    TableStorage,
    file_stats,
    partition_dir,
    rewrite_without,
    sort_by_partition,
)
from sp_reports.columns import natural_key_columns, snake_case
from sp_reports.lake.keyindex import BloomFilter, BucketStore, MergeIndex, key_hashes, key_strings, sorted_unique
from sp_reports.registry import ReportType


def test_natural_key_columns_are_snake_cased_like_the_parser_does():
    report = ReportType("GET_X", natural_keys=("amazon-order-id", "Seller SKU", "order.item_id"))
    assert natural_key_columns(report) == (
        "selling_partner_id", "marketplace_id", "amazon_order_id", "seller_sku", "order_item_id"
    )
    assert natural_key_columns(ReportType("GET_Y")) == ()
    assert snake_case("  Händler-SKU ") == "händler_sku"


def test_partition_directories_escape_values():
    assert partition_dir(["marketplace_id", "report_date"], {"marketplace_id": "A1,B2", "report_date": None}) == (
        f"marketplace_id=A1%2CB2/report_date={HIVE_NULL}"
    )
    assert partition_dir(["m"], {"m": "ä/.."}) == "m=%C3%A4%2F.."


def test_sort_by_partition_keeps_document_order_within_a_partition():
    table = pa.table({"m": ["a", "b", "a", None, "b"], "d": pa.array([1, 2, 1, 3, 2]).cast(pa.int32()),
                      "v": [0, 1, 2, 3, 4]})
    ordered, groups = sort_by_partition(table, ["m", "d"])
    assert groups == [(("a", "1"), 0, 2), (("b", "2"), 2, 2), ((None, "3"), 4, 1)]
    assert ordered.column("v").to_pylist() == [0, 2, 1, 4, 3]
    same, groups = sort_by_partition(table.slice(0, 1), ["m"])
    assert same.num_rows == 1 and groups == [(("a",), 0, 1)]


def test_key_hashes_depend_on_the_key_only():
    keys = pa.array(["o6\x1fSKU-1", "a" * 40, "", "é\x00x", "o6\x1fSKU-1"])
    hashes = key_hashes(keys)
    assert hashes[0] == hashes[4] and len(set(hashes.tolist())) == 4
    # Whatever else is in the batch, wherever the array starts, however it is chunked.
    assert key_hashes(keys.slice(4))[0] == hashes[0]
    assert key_hashes(pa.array(["o6\x1fSKU-1"]))[0] == hashes[0]  # an ASCII batch: padded by Arrow, same hash
    assert key_hashes(pa.array(["\x00", "é"]))[0] == key_hashes(pa.array(["\x00"]))[0] != key_hashes(pa.array([""]))[0]
    assert list(key_hashes(keys, max_cells=8)) == list(hashes)
    spread = np.bincount((key_hashes(pa.array([f"30{i}-{i * 7919:07d}" for i in range(20000)])) % 16).astype(int))
    assert spread.min() > 20000 / 16 * 0.8


def test_key_strings_are_null_safe_and_use_partition_values():
    batch = pa.record_batch({"order": ["o1", None], "qty": pa.array([1, None], pa.int64())})
    keys = key_strings(batch, ["marketplace_id", "order", "qty"], {"marketplace_id": "DE"})
    assert keys.to_pylist() == ["DE\x1fo1\x1f1", "DE\x1f\x00\x1f\x00"]


def test_bloom_filter_has_no_false_negatives():
    keys = pa.array([f"key-{i}" for i in range(5000)])
    bloom = BloomFilter(5000)
    bloom.add(key_hashes(keys))
    assert bloom.may_contain(key_hashes(keys)).all()
    others = bloom.may_contain(key_hashes(pa.array([f"other-{i}" for i in range(5000)])))
    assert others.mean() < 0.05


def test_bucket_store_spills_and_reads_back(tmp_path):
    schema = pa.schema([("key", pa.string()), ("n", pa.int64())])
    store = BucketStore(schema, 4, str(tmp_path), "t", buffer_bytes=100)
    for start in range(0, 1000, 100):
        batch = pa.record_batch({"key": [f"k{i}" for i in range(start, start + 100)],
                                 "n": pa.array(range(start, start + 100), pa.int64())}, schema=schema)
        store.add(batch, key_hashes(batch.column(0)))
    assert list(tmp_path.iterdir())  # spilled
    parts = [store.read(b) for b in range(4)]
    assert sum(p.num_rows for p in parts) == 1000
    assert sorted(n for p in parts for n in p.column("n").to_pylist()) == list(range(1000))
    hashes_of = {b: set((key_hashes(p.column("key").combine_chunks()) % np.uint64(4)).tolist()) for b, p in
                 enumerate(parts) if p.num_rows}
    assert all(h == {b} for b, h in hashes_of.items())
    # Each bucket's hashes on their own: the same multiset as its rows' keys give.
    for b, p in enumerate(parts):
        assert sorted(store.hashes(b).tolist()) == sorted(key_hashes(p.column("key").combine_chunks()).tolist())
    kept = parts[0].slice(0, 3)
    store.replace(0, kept, key_hashes(kept.column("key").combine_chunks()))
    assert store.read(0).num_rows == len(store.hashes(0)) == 3
    store.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("buffer_bytes", [100, 1 << 20], ids=["spilled at every add", "spilled when read"])
def test_bucket_store_hashes_line_up_with_rows(tmp_path, buffer_bytes):
    schema = pa.schema([("key", pa.string())])
    store = BucketStore(schema, 3, str(tmp_path), "t", buffer_bytes=buffer_bytes)
    for start in range(0, 600, 200):
        batch = pa.record_batch({"key": [f"k{i}" for i in range(start, start + 200)]}, schema=schema)
        store.add(batch, key_hashes(batch.column(0)))
    hashes = [store.hashes(b) for b in range(3)]  # before the rows are read: nothing may be lost
    for b in range(3):
        keys = store.read(b).column("key").combine_chunks()
        assert key_hashes(keys).tolist() == hashes[b].tolist()  # row i's hash is hashes[i]
    assert sum(len(h) for h in hashes) == 600
    with pytest.raises(RuntimeError, match="after it was read"):
        store.add(batch, key_hashes(batch.column(0)))
    store.close()


def test_a_merge_into_an_empty_table_indexes_key_hashes_only_until_a_key_repeats(tmp_path):
    def files(keys_by_file):  # the files' rows in document order: file 1's lines follow file 0's
        def read_file(path, columns):
            n = int(path)
            first = sum(len(keys) for keys in keys_by_file[:n])
            keys = keys_by_file[n]
            yield pa.record_batch({"order": keys, "line": pa.array(range(first, first + len(keys)), pa.int64())})
        return [(n, str(n), {}) for n in range(len(keys_by_file))], read_file

    distinct, read_file = files([[f"o{i}" for i in range(0, 300)], [f"o{i}" for i in range(300, 600)]])
    index = MergeIndex(["order"], source_rows=600, table_rows=0, spill_dir=str(tmp_path))
    index.add_source_files(distinct, read_file, "line")
    assert index.n_buckets == 1 or not list(tmp_path.glob("*.arrows"))  # no rows spilled, only hashes
    index.deduplicate()
    assert index._source.schema is None and index.duplicates.count == 0 and index.source_rows == 600
    index.close()

    repeated, read_file = files([[f"o{i}" for i in range(0, 300)], ["o7", "o8"]])
    index = MergeIndex(["order"], source_rows=302, table_rows=0, spill_dir=str(tmp_path))
    index.add_source_files(repeated, read_file, "line")
    index.deduplicate()  # the hashes repeat: the rows are indexed (files read again), file 0's o7, o8 lose
    assert index._source.schema is not None and index.source_rows == 302
    assert {n: p.tolist() for n, p in index.duplicates.positions.items()} == {0: [7, 8]}
    index.close()


def test_partitioned_writer_bounds_open_files(lake):
    storage = TableStorage(lake, "t")
    writer = PartitionedWriter(storage, ["d"], "landing1", file_rows=4, buffer_bytes=1, max_open=2)
    for start in range(0, 30, 5):
        writer.write(pa.record_batch({"d": [f"day{i % 3}" for i in range(start, start + 5)],
                                      "v": list(range(start, start + 5))}))
    files = writer.close()
    assert sum(f.rows for f in files) == 30 and all(f.rows <= 4 for f in files)
    values = []
    for f in files:
        data = pq.read_table(lake.fs_path(f"tables/t/{f.path}"), filesystem=lake.filesystem)
        assert data.column_names == ["v"]  # no partition column
        day = f.partition_values["d"]
        assert f.path.startswith(f"d={day}/") and all(f"day{v % 3}" == day for v in data.column("v").to_pylist())
        values += data.column("v").to_pylist()
        assert f.stats and json.loads(f.stats)["numRecords"] == f.rows
    assert sorted(values) == list(range(30))
    # Within a partition, files in order of their numbers hold the rows in document order.
    for day in ("day0", "day1", "day2"):
        ordered = [v for f in files if f.partition_values["d"] == day
                   for v in pq.read_table(lake.fs_path(f"tables/t/{f.path}"), filesystem=lake.filesystem)
                   .column("v").to_pylist()]
        assert ordered == sorted(ordered)


def _row_groups(lake, table, files):
    """{partition: [row group sizes, file by file]} and {partition: its values in file order}."""
    sizes, values = {}, {}
    for f in files:
        parquet = pq.ParquetFile(lake.fs_path(f"tables/{table}/{f.path}"), filesystem=lake.filesystem)
        day = f.partition_values["d"]
        sizes.setdefault(day, []).extend(parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups))
        values.setdefault(day, []).extend(parquet.read().column("v").to_pylist())
    return sizes, values


def test_partitioned_writer_gathers_small_slices_into_larger_row_groups(lake):
    # Each batch is a pool (buffer_bytes=1) with 2 rows of each of 3 days, as in a document in random
    # date order: a day's rows wait for BUFFERED_POOLS pools, then go as one row group.
    writer = PartitionedWriter(TableStorage(lake, "t"), ["d"], "l1", buffer_bytes=1)
    for pool in range(12):
        writer.write(pa.record_batch({"d": [f"day{i % 3}" for i in range(6)], "v": [pool * 6 + i for i in range(6)]}))
    sizes, values = _row_groups(lake, "t", writer.close())
    assert datafiles.BUFFERED_POOLS == 4
    assert sizes == {f"day{d}": [8, 8, 8] for d in range(3)}  # not 12 row groups of 2 rows
    assert values == {f"day{d}": [v for v in range(72) if v % 3 == d] for d in range(3)}  # document order


def test_partitioned_writer_writes_large_slices_at_once_after_what_waits(lake):
    writer = PartitionedWriter(TableStorage(lake, "t"), ["d"], "l1", buffer_bytes=1)
    big = datafiles.MIN_ROW_GROUP_ROWS
    writer.write(pa.record_batch({"d": ["a"] * big + ["b"] * 10, "v": list(range(big + 10))}))
    writer.write(pa.record_batch({"d": ["b"] * big, "v": list(range(big + 10, 2 * big + 10))}))
    sizes, values = _row_groups(lake, "t", writer.close())
    assert sizes == {"a": [big], "b": [big + 10]}  # b's 10 rows went first, in the row group of its next rows
    assert values["b"] == list(range(big, 2 * big + 10))


def test_partitioned_writer_write_all_matches_write(lake):
    """write_all (reading and sorting in a worker thread) writes what write + close write."""
    batches = [pa.record_batch({"d": [f"day{i % 3}" for i in range(s, s + 5)], "v": list(range(s, s + 5))})
               for s in range(0, 30, 5)]

    def contents(table, files):
        return sorted((f.partition_values["d"], f.rows, tuple(pq.read_table(
            lake.fs_path(f"tables/{table}/{f.path}"), filesystem=lake.filesystem).column("v").to_pylist()))
            for f in files)

    serial = PartitionedWriter(TableStorage(lake, "serial"), ["d"], "l1", file_rows=4, buffer_bytes=1, max_open=2)
    for batch in batches:
        serial.write(batch)
    expected = contents("serial", serial.close())
    threaded = PartitionedWriter(TableStorage(lake, "threaded"), ["d"], "l2", file_rows=4, buffer_bytes=1, max_open=2)
    assert contents("threaded", threaded.write_all(iter(batches))) == expected


def test_partitioned_writer_write_all_raises_the_readers_error(lake):
    def failing():
        yield pa.record_batch({"d": ["a"], "v": [1]})
        raise OSError("staging file vanished")

    writer = PartitionedWriter(TableStorage(lake, "t"), ["d"], "l1", buffer_bytes=1)
    with pytest.raises(OSError, match="vanished"):
        writer.write_all(failing())
    writer.abort()
    assert not [p for p in lake.list("tables/t") if p.endswith(".parquet")]


def test_file_statistics_round_outwards(tmp_path):
    table = pa.table({
        "s": ["b", "a" * 80, None],
        "long": ["z" * 80, "a", "b"],
        "ts": pa.array([dt.datetime(2026, 1, 1, 10, 0, 0, 123456), dt.datetime(2026, 1, 2), None], pa.timestamp("us", "UTC")),
        "dec": pa.array([Decimal("0.1"), Decimal("-5"), None], pa.decimal128(20, 4)),
        "d": pa.array([dt.date(2026, 1, 2), dt.date(2026, 1, 1), None]),
        "i": pa.array([3, 1, 2], pa.int64()),
    })
    path = tmp_path / "f.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table, row_group_size=2)
    stats = json.loads(file_stats(pq.ParquetFile(path).metadata, table.schema))
    assert stats["numRecords"] == 3
    assert stats["minValues"]["s"] == "a" * 64 and stats["maxValues"]["s"] == "b"  # a prefix bounds a minimum
    assert stats["minValues"]["long"] == "a" and "long" not in stats["maxValues"]  # ... but not a maximum
    assert stats["minValues"]["ts"] == "2026-01-01T10:00:00.123Z" and stats["maxValues"]["ts"] == "2026-01-02T00:00:00.000Z"
    assert stats["minValues"]["dec"] <= -5 and stats["maxValues"]["dec"] >= 0.1
    assert stats["minValues"]["d"] == "2026-01-01" and stats["maxValues"]["i"] == 3
    assert stats["nullCount"] == {"s": 1, "long": 0, "ts": 1, "dec": 1, "d": 1, "i": 0}


def test_rewrite_without(lake):
    storage = TableStorage(lake, "t")
    with storage.open_output("d=x/a.parquet") as f:
        pq.write_table(pa.table({"v": list(range(10))}), f, row_group_size=3)
    rewritten = rewrite_without(storage, "d=x/a.parquet", np.array([0, 4, 5, 9]), {"d": "x"}, ["d"], "l1", 7)
    assert rewritten.rows == 6 and rewritten.path.startswith("d=x/part-00007-l1-")
    data = pq.read_table(lake.fs_path(f"tables/t/{rewritten.path}"), filesystem=lake.filesystem)
    assert data.column("v").to_pylist() == [1, 2, 3, 6, 7, 8]
    assert rewrite_without(storage, "d=x/a.parquet", np.arange(10), {"d": "x"}, ["d"], "l1", 8) is None


def test_rewrite_without_keeps_the_statistics_of_the_file_it_replaces(lake):
    storage = TableStorage(lake, "t")
    table = pa.table({"s": pa.array([{"a": 1, "b": "x"}] * 4), "n": [1, 2, 3, 4], "text": ["p", "q", "r", "s"]})
    with storage.open_output("d=x/a.parquet") as f:  # a struct first: its leaves come before "n"
        pq.write_table(table, f, write_statistics=["n"])
    rewritten = rewrite_without(storage, "d=x/a.parquet", np.array([0]), {"d": "x"}, ["d"], "l1", 1)
    stats = json.loads(rewritten.stats)
    assert stats["minValues"] == {"n": 2} and stats["maxValues"] == {"n": 4}


@pytest.mark.parametrize("values", [[], [5], [3, 1, 3, 2, 1, 1], list(np.random.default_rng(7).integers(0, 50, 1000))])
def test_sorted_unique_is_numpys_unique(values):
    array = np.asarray(values, dtype=np.int32)
    assert sorted_unique(array).tolist() == np.unique(array).tolist()


def test_a_hashes_only_merge_finds_a_repeat_across_files_of_one_marketplace(tmp_path):
    # marketplace_id comes from the files' partition values; the hashes (read two files at a time)
    # are of the other key columns, as the indexed rows' are.
    keys_by_file = [[f"o{i}" for i in range(0, 200)], [f"o{i}" for i in range(200, 400)], ["o5"]]

    def read_file(path, columns):
        n = int(path)
        first = sum(len(keys) for keys in keys_by_file[:n])
        batch = {"order": keys_by_file[n], "line": pa.array(range(first, first + len(keys_by_file[n])), pa.int64())}
        yield pa.record_batch({c: batch[c] for c in columns})

    files = [(n, str(n), {"marketplace_id": "A1PA6795UKMFR9"}) for n in range(3)]
    index = MergeIndex(["marketplace_id", "order"], source_rows=401, table_rows=0, spill_dir=str(tmp_path))
    index.add_source_files(files, read_file, "line")
    assert index.source_rows == 401
    index.deduplicate()
    assert {n: p.tolist() for n, p in index.duplicates.positions.items()} == {0: [5]}  # file 2's o5 wins
    index.close()
