import os

import pytest

from sp_reports.lake import Lake, manifest_path, raw_document_path, raw_metadata_path, staging_dir


class Boom(Exception):
    pass


def test_local_root_is_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake = Lake("./lake")
    assert lake.root == str(tmp_path / "lake")
    assert not lake.is_s3
    assert lake.uri("raw/a.bin") == str(tmp_path / "lake" / "raw" / "a.bin")
    assert Lake(f"file://{tmp_path}/lake").root == str(tmp_path / "lake")


def test_paths_are_relative_and_cannot_escape_the_lake(lake):
    assert lake.path("staging", "GET_X", "123/") == "staging/GET_X/123"
    assert lake.path("raw/GET_X", "1") == "raw/GET_X/1"
    for bad in ("..", "/etc", "s3://other/x", "a//b", ""):
        with pytest.raises(ValueError):
            lake.path("raw", bad)
    with pytest.raises(ValueError):
        lake.exists("../outside")


def test_table_uri(lake):
    assert lake.table_uri("get_x_data") == os.path.join(lake.root, "tables", "get_x_data")
    for bad in ("GET_X", "a/b", "", "x-y"):
        with pytest.raises(ValueError):
            lake.table_uri(bad)


def test_unsupported_scheme():
    with pytest.raises(ValueError):
        Lake("gs://bucket/x")
    with pytest.raises(ValueError):
        Lake("s3://")


def test_repr_hides_secrets():
    lake = Lake(
        "s3://bucket/prefix",
        {
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "very-secret",
            "AWS_SESSION_TOKEN": "session-token-value",
            "AWS_REGION": "eu-west-1",
        },
    )
    text = repr(lake)
    assert "very-secret" not in text and "session-token-value" not in text and "AKIAEXAMPLE" not in text
    assert "eu-west-1" in text and "s3://bucket/prefix" in text
    assert lake.storage_options["AWS_SECRET_ACCESS_KEY"] == "very-secret"  # still usable by deltalake


def test_open_output_is_atomic_locally(lake):
    path = "raw/T/1/doc.bin"
    with lake.open_output(path) as f:
        f.write(b"first")
    assert lake.read_bytes(path) == b"first"

    with pytest.raises(Boom):
        with lake.open_output(path) as f:
            f.write(b"partial second version")
            raise Boom
    assert lake.read_bytes(path) == b"first"  # the old file is untouched
    assert os.listdir(os.path.dirname(lake.uri(path))) == ["doc.bin"]  # no temp file left behind

    with pytest.raises(Boom):
        with lake.open_output("raw/T/1/new.bin") as f:
            f.write(b"x" * 100_000)
            raise Boom
    assert not lake.exists("raw/T/1/new.bin")


def test_files_listing_and_deletion(lake):
    for path in ("staging/a/1.parquet", "staging/a/2.parquet", "staging/b/deep/3.parquet", "raw/x.bin"):
        with lake.open_output(path) as f:
            f.write(b"1")
    open(os.path.join(lake.uri("staging/a"), ".1.parquet.abc.tmp"), "wb").close()  # an in-flight write
    assert lake.list("staging") == ["staging/a/1.parquet", "staging/a/2.parquet", "staging/b/deep/3.parquet"]
    assert lake.list("nothing/here") == []
    assert lake.size("raw/x.bin") == 1
    lake.delete("staging/a/1.parquet")
    lake.delete("staging/a/1.parquet")  # idempotent
    assert not lake.exists("staging/a/1.parquet") and lake.exists("staging/a/2.parquet")
    lake.delete_dir("staging")
    lake.delete_dir("staging")
    assert lake.list("staging") == [] and lake.exists("raw/x.bin")


def test_json_roundtrip(lake):
    value = {"name": "Café ①", "n": [1, 2], "nested": {"ok": True}}
    lake.write_json("manifests/x.json", value)
    assert lake.read_json("manifests/x.json") == value


def test_raw_document_and_sidecar(lake):
    path = raw_document_path("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "A3EMULATORSELLER", "12345",
                             "amzn1.tortuga.4.na.X")
    assert path == "raw/GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL/A3EMULATORSELLER/12345/amzn1.tortuga.4.na.X.bin"
    assert lake.raw_document_path("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "A3EMULATORSELLER", "12345",
                                  "amzn1.tortuga.4.na.X") == path
    assert raw_metadata_path(path) == path + ".json"
    for bad in (("GET_X", "A3S", "../1", "d"), ("GET_X", "A3S", "1", "a/b"), ("GET_X", "../A3S", "1", "d"),
                ("GET_X", "a3s", "1", "d"), ("GET_X", "", "1", "d"), ("GET_X", "A3/S", "1", "d")):
        with pytest.raises(ValueError):
            raw_document_path(*bad)
    data = b"\x1f\x8b gzip bytes kept as they are"
    with lake.open_output(path) as f:
        f.write(data)
    meta = {
        "report_type": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "report_id": "12345",
        "document_id": "amzn1.tortuga.4.na.X",
        "content_type": "text/tab-separated-values",
        "charset": "Cp1252",
        "compressed": True,
        "size": len(data),
        "sha256": "ab" * 32,
        "marketplace_ids": ["A1PA6795UKMFR9"],
    }
    lake.write_json(raw_metadata_path(path), meta)
    assert raw_metadata_path(path) == path + ".json"
    assert lake.read_json(path + ".json") == meta
    assert lake.read_bytes(path) == data


def test_staging_and_manifest_paths_contain_the_seller(lake):
    assert staging_dir("get_x", "A3S", "123") == lake.staging_dir("get_x", "A3S", "123") == "staging/get_x/A3S/123"
    assert manifest_path("get_x", "A3S", "123") == "manifests/get_x/A3S/123.json"
    with pytest.raises(ValueError):
        staging_dir("get_x", "A3S", "../123")
    for bad in ("..", "a3s", "A3S/B", "", "A3 S", None):
        with pytest.raises(ValueError, match="selling_partner_id must be an Amazon seller id"):
            staging_dir("get_x", bad, "123")
        with pytest.raises(ValueError, match="selling_partner_id must be an Amazon seller id"):
            manifest_path("get_x", bad, "123")


def test_lake_pickles_without_its_clients():
    import pickle

    lake = Lake("s3://bucket/prefix", {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    copy = pickle.loads(pickle.dumps(lake))
    assert copy.root == lake.root and copy.storage_options == lake.storage_options
