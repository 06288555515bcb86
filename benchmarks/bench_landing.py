"""Landing benchmark: MB/s and peak RSS of parse + land of big flat files, against a naive baseline.

    .venv/bin/python benchmarks/bench_landing.py [--sizes 1,3] [--naive-mb 100] [--workdir DIR] [--update-doc]

Generates orders flat files (benchmarks/orders_document.py: 32 columns, gzip, a month of daily
partitions in random order) of the given sizes in GB (uncompressed) into a temporary directory, then
runs each case in its own subprocess, through the functions the DAG uses:

* ours, end to end: ``sp_reports.pipeline.parse_raw_document`` (the project's parser into staging
  Parquet) then ``sp_reports.pipeline.land_parsed_document`` (``land_tables`` into Delta + manifest).
  - replace: the orders report without natural keys (replace the report's rows)
  - merge: the orders report as registered (MERGE on amazon-order-id + sku) into an empty table
  - merge-update (first size only): a second, newer report with the same rows merged into that table,
    so every row of the table is replaced (the MERGE's worst case)
  - replace, random order (first size, ``--random-order 1``): the rows in random date order, so every
    16 MB of the document touches all 31 daily partitions (the worst case for the partitioned writer)
* naive: gzip.decompress the whole document, .decode, csv.DictReader (tab, QUOTE_NONE), rows to
  Arrow with pa.Table.from_pylist, one Parquet file (no Delta). It needs ~14x the document in memory,
  so it runs on the first ``--naive-mb`` MB of the first document and its MB/s is extrapolated. It runs
  three times (before the first document's cases, after them, after the last document): the fastest
  run is the baseline, so a slow moment of the machine never flatters the ratios.

Each of our cases runs ``--repeat`` times (3; in rounds, a merge-update after its round's merge) and
its fastest run counts, like the naive parser's: on a shared machine the same work takes 20% more or
less time from one minute to the next, and noise only ever adds time.

Parse and land run in separate processes, as the DAG's parse and land tasks do (the parsed dict goes
from one to the other as it goes through XCom); each process starts after an ``os.sync()``.
MB/s = uncompressed document bytes (10^6) / wall seconds of both; peak RSS = each process' VmHWM.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# docs/benchmarks.md when it does not exist yet; --update-doc only ever rewrites what is between the markers.
DOC_TEMPLATE = f"""# Benchmarks

Landing throughput (MB/s of uncompressed input, parse + land) and peak memory of big flat files,
against a naive parser. Measured with `make bench` (`benchmarks/bench_landing.py --update-doc`, which
rewrites the results below); see the script's docstring for what each case does.

{BEGIN}
{END}
"""
MB = 1_000_000


# ----------------------------------------------------------------------------------------- child side


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(spec: dict) -> dict:
    """One phase of one case, as one Airflow task runs it: "parse" or "land" (or the naive baseline)."""
    # Imported before the clock starts, like a task's imports; pandas too, for every case (the naive one
    # included): pyarrow imports it on first use (~0.25 s, once per process), which is start-up, not
    # throughput.
    import sp_reports  # noqa: F401 - first, as in a task process (it chooses Arrow's allocator: memory.py)
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from sp_reports.lake import Lake
    from sp_reports.registry import load_registry

    if spec["case"] == "naive":
        return naive(spec)
    lake = Lake(spec["lake"])
    report = load_registry()[spec["report_type"]]
    if not spec["natural_keys"]:
        report = dataclasses.replace(report, natural_keys=())
    from sp_reports.pipeline import land_parsed_document, parse_raw_document

    started, cpu0 = time.perf_counter(), _cpu()
    if spec["phase"] == "parse":
        fetched = {
            "report_type": spec["report_type"], "report_id": spec["report_id"], "report_document_id": "bench-doc",
            "marketplace_ids": spec["marketplace_ids"], "processing_status": "DONE",
            "created_time": spec["created_time"], "data_end_time": spec["created_time"],
            "raw_path": spec["raw_path"], "content_type": "text/plain;charset=UTF-8", "charset": "UTF-8",
            "compressed": True, "size": spec["raw_bytes"], "sha256": "0" * 64,
        }
        parser = "sp_reports.parsing.parse_document (pipeline.parse_raw_document)"
        parsed = parse_raw_document(lake, fetched, report)
        return {"parser": parser, "seconds": time.perf_counter() - started, "cpu_s": _cpu() - cpu0,
                "peak": _status("VmHWM"), "parsed": parsed}
    main = land_parsed_document(lake, spec["parsed"], report)["tables"][""]
    seconds, cpu_s, peak = time.perf_counter() - started, _cpu() - cpu0, _status("VmHWM")
    from sp_reports.lake import open_table

    actions = open_table(lake, report.table_name).get_add_actions(flatten=True)
    return {"seconds": seconds, "cpu_s": cpu_s, "peak": peak, "rows": main["rows"],
            "replaced": main.get("replaced", 0), "table_rows": sum(actions.column("num_records").to_pylist())}


def naive(spec: dict) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    started, cpu0 = time.perf_counter(), _cpu()
    with open(spec["raw_path"], "rb") as f:
        text = gzip.decompress(f.read()).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, os.path.join(spec["out_dir"], "naive.parquet"))
    return {"seconds": time.perf_counter() - started, "cpu_s": _cpu() - cpu0, "peak": _status("VmHWM"),
            "rows": len(rows)}


# ----------------------------------------------------------------------------------------- parent side


def run_child(spec: dict) -> dict:
    # Each phase starts with nothing left to write back to disk: the previous phase's (or the document
    # generator's) gigabytes in the page cache would otherwise be flushed while this one runs, and its
    # figures would depend on what ran before it.
    os.sync()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['case']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_landing(result: dict, table_rows: int) -> None:
    """A fast landing that lands the wrong rows measures nothing: every row lands, a merge-update
    replaces every row of the table (the documents hold no duplicate keys)."""
    expected = {"rows": result["rows_in"], "table_rows": result["rows_in"],
                "replaced": result["rows_in"] if result["case"] == "merge-update" else 0}
    found = {"rows": result["rows"], "table_rows": table_rows, "replaced": result["replaced"]}
    if found != expected:
        raise RuntimeError(f"{result['case']}: landed {found}, expected {expected}")


def run_naive(document: Path, work: Path) -> dict:
    run = run_child({"case": "naive", "raw_path": str(document), "out_dir": str(work)})
    print(f"        naive run: {run['seconds']:.1f}s", flush=True)
    return run


def slice_document(source: str, target: str, megabytes: int) -> int:
    """The first ~megabytes of a gzip document (whole lines), gzip again; returns its uncompressed bytes."""
    wanted, size = megabytes * MB, 0
    with gzip.open(source, "rb") as src, gzip.open(target, "wb", compresslevel=1) as dst:
        for line in src:
            dst.write(line)
            size += len(line)
            if size >= wanted:
                break
    return size


def machine() -> dict:
    def lscpu(field: str) -> str:
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        except OSError:
            return "?"
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith(field)), "?")

    import deltalake
    import pyarrow

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": lscpu("Model name"), "cores": os.cpu_count(), "ram_gib": round(mem / 2**30, 1),
        "python": platform.python_version(), "pyarrow": pyarrow.__version__, "deltalake": deltalake.__version__,
        "os": f"{platform.system()} {platform.release()}", "load": os.getloadavg(),
    }


def run_case(work: Path, n: int, doc: Path, case: str, keys: bool, report_id: str, raw_bytes: int, rows: int) -> dict:
    """One run of one case (parse, then land, each in its own process), its landing checked."""
    from orders_document import MARKETPLACES, REPORT_TYPE

    from sp_reports.lake import Lake

    lake_dir = work / f"lake-{n}-{'merge' if keys else 'replace'}"
    if case != "merge-update":
        shutil.rmtree(lake_dir, ignore_errors=True)
    lake = Lake(str(lake_dir))
    raw_path = f"raw/{REPORT_TYPE}/{report_id}/bench-doc.bin"
    with lake.open_output(raw_path) as out, open(doc, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    spec = {"case": case, "lake": str(lake_dir), "report_type": REPORT_TYPE, "natural_keys": keys,
            "report_id": report_id, "marketplace_ids": list(MARKETPLACES), "raw_path": raw_path,
            "raw_bytes": doc.stat().st_size, "created_time": f"2026-11-2{report_id}T08:00:00+00:00"}
    parsed = run_child({**spec, "phase": "parse"})
    landed = run_child({**spec, "phase": "land", "parsed": parsed["parsed"]})
    result = {"case": case, "size_mb": raw_bytes / MB, "rows_in": rows, "parser": parsed["parser"],
              "parse_s": parsed["seconds"], "parse_cpu_s": parsed["cpu_s"], "parse_peak": parsed["peak"],
              "land_s": landed["seconds"], "land_cpu_s": landed["cpu_s"], "land_peak": landed["peak"],
              "rows": landed["rows"], "replaced": landed["replaced"]}
    lake.delete(raw_path)
    check_landing(result, landed["table_rows"])
    print(_line(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3", help="document sizes in GB (uncompressed), comma-separated")
    parser.add_argument("--naive-mb", type=int, default=100, help="MB of the first document the naive run parses")
    parser.add_argument("--random-order", type=int, default=1, choices=(0, 1),
                        help="also land a first-size document in random date order (the worst case)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each case; the fastest counts (the naive parser runs three times)")
    parser.add_argument("--workdir", default=None, help="where documents and lakes go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--update-doc", action="store_true", help=f"write the results into {DOC.relative_to(ROOT)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    sys.path.insert(0, str(HERE))
    from orders_document import write_document

    sizes = [float(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sp-reports-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    began = time.perf_counter()
    print(f"work dir {work}; {info}", flush=True)
    results: list[dict] = []
    naive_runs: list[dict] = []
    try:
        documents = [(size, True) for size in sizes] + [(sizes[0], False)] * args.random_order
        for n, (size, date_order) in enumerate(documents):
            doc = work / f"orders-{size:g}gb{'' if date_order else '-random'}.tsv.gz"
            t = time.perf_counter()
            raw_bytes, rows = write_document(str(doc), int(size * 1000 * MB), seed=n + 1, date_order=date_order)
            print(f"generated {doc.name}: {raw_bytes / MB:.0f} MB, {rows} rows, {doc.stat().st_size / MB:.0f} MB gzip"
                  f" in {time.perf_counter() - t:.0f}s", flush=True)
            if n == 0:
                naive_doc = work / "naive-slice.tsv.gz"
                naive_bytes = slice_document(str(doc), str(naive_doc), args.naive_mb)
                naive_runs.append(run_naive(naive_doc, work))  # before, after this document, at the end
            if not date_order:
                cases = [("replace, random order", False, "1")]
            else:
                cases = [("replace", False, "1"), ("merge", True, "1")] + ([("merge-update", True, "2")] if n == 0 else [])
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeat):  # rounds: a merge-update follows the merge of its round
                for case, keys, report_id in cases:
                    runs.setdefault(case, []).append(run_case(work, n, doc, case, keys, report_id, raw_bytes, rows))
            for case, case_runs in runs.items():
                # The fastest run of each case, as for the naive baseline: the machine's slow moments only
                # ever add time, on either side of the ratio.
                best = min(case_runs, key=lambda r: r["parse_s"] + r["land_s"])
                results.append({**best, "runs_s": [r["parse_s"] + r["land_s"] for r in case_runs]})
            if n == 0:
                naive_runs.append(run_naive(naive_doc, work))
            doc.unlink()
        naive_runs.append(run_naive(naive_doc, work))
        # The naive parser's fastest run is the baseline: the ratios never gain from a slow moment of it.
        best = min(naive_runs, key=lambda run: run["seconds"])
        results.insert(0, {"case": "naive", "size_mb": naive_bytes / MB, "rows_in": None, "parser": "naive",
                        "parse_s": best["seconds"], "parse_cpu_s": best["cpu_s"], "parse_peak": best["peak"],
                        "land_s": 0.0, "land_cpu_s": 0.0, "land_peak": 0, "rows": best["rows"],
                        "runs_s": [run["seconds"] for run in naive_runs]})
        print(_line(results[0]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    report = render(results, info, time.perf_counter() - began, args)
    print(report)
    if args.update_doc:
        text = DOC.read_text() if DOC.exists() else DOC_TEMPLATE
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{report}\n{END}{tail}")
        print(f"updated {DOC}")


def _mbps(r: dict) -> float:
    return r["size_mb"] / (r["parse_s"] + r["land_s"])


def _line(r: dict) -> str:
    return (f"{r['case']:>13} {r['size_mb']:7.0f} MB: {_mbps(r):6.1f} MB/s (parse {r['parse_s']:.1f}s, land "
            f"{r['land_s']:.1f}s), peak RSS parse {r['parse_peak'] / 2**20:.0f} MiB, land {r['land_peak'] / 2**20:.0f} MiB")


def render(results: list[dict], info: dict, seconds: float, args) -> str:
    naive_result = next((r for r in results if r["case"] == "naive"), None)
    lines = [
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `make bench` "
        f"(`benchmarks/bench_landing.py --sizes {args.sizes} --naive-mb {args.naive_mb} --random-order "
        f"{args.random_order} --repeat {args.repeat}`), {seconds / 60:.1f} min in all.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}; Python {info['python']}, "
        f"pyarrow {info['pyarrow']}, deltalake {info['deltalake']}. Load average before/after: "
        f"{info['load'][0]:.1f} / {info['load_after'][0]:.1f} (a shared machine: wall times carry noise).",
        "",
        f"Parser: {next((r['parser'] for r in results if r['case'] != 'naive'), '?')}.",
        "",
        "| case | document | rows landed | parse s | land s | MB/s end to end | x naive | MB/s land only | CPU s "
        "| peak RSS parse | peak RSS land |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = _mbps(r) / _mbps(naive_result) if naive_result and r is not naive_result else None
        size = f"{r['size_mb']:,.0f} MB" + (" (slice)" if r["case"] == "naive" else "")
        times = f"{ratio:.1f}x" if ratio else "-"
        land_peak = f"{r['land_peak'] / 2**20:.0f} MiB" if r["land_peak"] else "-"
        land_only = f"{r['size_mb'] / r['land_s']:.1f}" if r["land_s"] else "-"
        lines.append(
            f"| {r['case']} | {size} | {r['rows']:,} | {r['parse_s']:.1f} | {r['land_s']:.1f} | {_mbps(r):.1f} | "
            f"{times} | {land_only} | {r['parse_cpu_s'] + r['land_cpu_s']:.0f} | {r['parse_peak'] / 2**20:.0f} MiB "
            f"| {land_peak} |"
        )
    if naive_result and naive_result.get("runs_s"):
        runs = " / ".join(f"{s:.1f}" for s in naive_result["runs_s"])
        lines += ["", f"Naive parser runs (before, between and after the cases): {runs} s; the fastest is the "
                      "baseline of \"x naive\"."]
    repeated = [r for r in results if r is not naive_result and len(r.get("runs_s", ())) > 1]
    if repeated:
        lines += ["", "Runs of each case (parse + land s; the fastest is in the table): " + "; ".join(
            f"{r['case']} {r['size_mb']:,.0f} MB " + " / ".join(f"{s:.1f}" for s in r["runs_s"]) for r in repeated
        ) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
