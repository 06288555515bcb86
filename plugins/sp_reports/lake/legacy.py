"""Lakes written before the selling partner became part of every key (single-seller layout)."""

from __future__ import annotations

MIGRATE_COMMAND = "sp-reports lake migrate --selling-partner-id <ID>"


class LegacyLakeError(RuntimeError):
    """A table (or the ledger) of the lake has no ``selling_partner_id`` column: the lake was written by
    the single-seller layout and must be migrated before anything lands in it."""

    def __init__(self, what: str, lake_root: str):
        super().__init__(
            f"{what} in the lake {lake_root} has no selling_partner_id column: the lake was written before "
            f"reports were keyed by seller. Migrate it once, naming the seller its reports belong to: "
            f"`{MIGRATE_COMMAND} --lake {lake_root}` (adds the column to the ledger and every table, and moves "
            f"raw/, staging/ and manifests/ under the seller; safe to run again)"
        )
        self.what = what
