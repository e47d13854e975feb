"""DuckDB over a run's finished shards: one view per folder and the per-clip view.

Views (for `browse --sql`): one per stage folder, named like it (`sources`, `scenes`, `clips`,
…), `instructions_<branch>` and `pairs` (all branches) for instruction pairs, and `per_clip`:
one row per clip with every column of every stage it reached.

`per_clip` needs no join across stages. Each stage carries all earlier columns forward and a
rejected row is not passed on, so a clip's last row (in the furthest folder it reached) already
holds everything. That row is the clip's rejection, or a kept row whose shard the next stage has
not finished (a shard is the unit of work: shard k of a stage holds exactly the rows made from
shard k of the stage before). So per_clip is a UNION ALL of, per folder, its rejected rows plus
its rows in shards the next folder lacks: each folder is scanned once, which keeps a filter
over a million clips well under a second. The one place shard names change is the scene
split (its kept clips are re-cut into pieces): there the kept rows the next folder lacks are
found by clip id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import duckdb
import pyarrow as pa

from curation.browse.layout import BrowseError, Folder, RunLayout
from curation.core.units import unit_of

# The per-clip view starts with these; the rest follow in pipeline order.
LEAD = ["clip_id", "stage", "kept", "reject_reason", "reject_detail"]


class QueryError(BrowseError):
    """DuckDB refused a query the user wrote (a WHERE clause, columns, ORDER BY, --sql)."""


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RunDB:
    """An in-memory DuckDB whose views read one run's finished shards (a snapshot)."""

    def __init__(self, layout: RunLayout, threads: int | None = None):
        self.layout = layout
        self.con = duckdb.connect(":memory:")
        self._scans: dict[tuple[PurePosixPath, ...], str] = {}
        # Every query over a folder opens the same shard footers again: keep them in memory.
        self.con.execute("SET parquet_metadata_cache = true")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.clip_folders = [f for f in layout.stages if f.exists and self._has_clip_id(f)]
        for folder in [*layout.stages, *layout.branches]:
            if folder.exists:
                self.con.execute(
                    f"CREATE VIEW {ident(folder.view)} AS SELECT * FROM {self.scan(folder.shards)}"
                )
        if layout.branches:
            union = " UNION ALL BY NAME ".join(
                f"SELECT * FROM {ident(b.view)}" for b in layout.branches
            )
            self.con.execute(f"CREATE VIEW pairs AS {union}")
        self.con.execute(f"CREATE VIEW per_clip AS {self._per_clip_sql()}")
        self.columns = [row[0] for row in self.con.execute("DESCRIBE per_clip").fetchall()]

    def _per_clip_sql(self) -> str:
        if not self.clip_folders:  # nothing past probe yet: an empty view with the lead columns
            return ("SELECT NULL::VARCHAR AS clip_id, NULL::VARCHAR AS stage, NULL::BOOLEAN AS kept, "
                    "NULL::VARCHAR AS reject_reason, NULL::VARCHAR AS reject_detail WHERE false")  # fmt: skip
        parts = []
        # Deepest folder first: UNION BY NAME orders columns by the first branch, which has all.
        for i in reversed(range(len(self.clip_folders))):
            folder = self.clip_folders[i]
            after = self.clip_folders[i + 1] if i + 1 < len(self.clip_folders) else None
            head = f"SELECT {sql_str(folder.stage)} AS stage, *"
            if after is not None and not same_shards(folder, after):
                # The scene split re-cut shards into pieces: match clips, not file names.
                parts.append(f"{head} FROM {self.scan(folder.shards)} WHERE NOT kept OR clip_id NOT "
                             f"IN (SELECT clip_id FROM {self.scan(after.shards)})")  # fmt: skip
                continue
            passed_on = {p.name for p in after.shards} if after else set()
            done = [p for p in folder.shards if p.name in passed_on]
            waiting = [p for p in folder.shards if p.name not in passed_on]
            if done:
                parts.append(f"{head} FROM {self.scan(done)} WHERE NOT kept")
            if waiting:
                parts.append(f"{head} FROM {self.scan(waiting)}")
        rows = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
        lead = ", ".join(f"t.{c}" for c in LEAD)
        select = f"SELECT {lead}, t.* EXCLUDE ({', '.join(LEAD)})"
        if not self.layout.branches:
            return f"{select} FROM ({rows}) t"
        names = [b.name.split("/", 1)[1] for b in self.layout.branches]
        counts = ", ".join(
            f"count(*) FILTER (WHERE branch = {sql_str(n)}) AS {ident('pairs_' + n)}" for n in names
        )
        totals = ", ".join(
            f"coalesce(p.{ident('pairs_' + n)}, 0) AS {ident('pairs_' + n)}" for n in names
        )
        return (
            f"{select}, {totals} FROM ({rows}) t LEFT JOIN "
            f"(SELECT clip_id, {counts} FROM pairs GROUP BY clip_id) p ON p.clip_id = t.clip_id"
        )

    def scan(self, files: Sequence[PurePosixPath]) -> str:
        """A relation over an explicit list of shards: never a glob, so temporaries are never
        read. Local shards are read by DuckDB itself; shards in an object store through
        pyarrow's filesystem (DuckDB scans the Arrow dataset, pushing filters down)."""
        storage = self.layout.storage
        if storage.is_local:
            listed = ", ".join(sql_str(str(storage.local_path(str(f)))) for f in files)
            return f"read_parquet([{listed}])"
        key = tuple(files)
        if key not in self._scans:
            import pyarrow.dataset as ds

            name = f"_shards_{len(self._scans)}"
            paths = [storage.fs_path(str(f)) for f in files]
            found = ds.dataset(paths, filesystem=storage.fs, format="parquet")
            widened = pa.schema([_widened(f) for f in found.schema])
            if not widened.equals(found.schema):  # DuckDB takes no Arrow float16 (vectors)
                found = ds.dataset(paths, schema=widened, filesystem=storage.fs, format="parquet")
            self.con.register(name, found)
            self._scans[key] = name
        return self._scans[key]

    def _has_clip_id(self, folder: Folder) -> bool:
        # The first shard's footer is enough: every shard of a folder has the folder's schema.
        return "clip_id" in self.layout.storage.read_schema(str(folder.shards[0])).names

    # --- queries ------------------------------------------------------------------------------
    def rows(
        self, sql: str, params: Sequence[Any] | None = None, what: str = "query failed"
    ) -> tuple[list[str], list[tuple]]:
        """Run SQL; DuckDB's own error, wrapped with what the user asked for."""
        try:
            cursor = self.con.execute(sql, params or [])
            return [d[0] for d in cursor.description], cursor.fetchall()
        except duckdb.Error as exc:
            raise QueryError(f"{what}: DuckDB says: {exc}") from None

    def records(
        self, sql: str, params: Sequence[Any] | None = None, what: str = "query failed"
    ) -> list[dict[str, Any]]:
        columns, rows = self.rows(sql, params, what)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def has(self, view: str) -> bool:
        names = {r[0] for r in self.con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        return view in names

    def select_clips(
        self,
        where: str | None = None,
        columns: Sequence[str] | None = None,
        order_by: str | None = "clip_id",
        limit: int | None = 20,
    ) -> tuple[int, list[str], list[tuple]]:
        """Clips matching a SQL WHERE clause: how many, and the first `limit` of them."""
        cond = f"WHERE ({where})" if where and where.strip() else ""
        what = f"bad --where clause {where!r}" if cond else "bad listing"
        _, ((count,),) = self.rows(f"SELECT count(*) FROM per_clip {cond}", what=what)
        picked = ", ".join(columns) if columns else "*"
        order = f"ORDER BY {order_by}" if order_by else ""
        cap = f"LIMIT {int(limit)}" if limit is not None else ""
        names, rows = self.rows(f"SELECT {picked} FROM per_clip {cond} {order} {cap}",
                                what="bad --columns or --order-by")  # fmt: skip
        return count, names, rows

    def clip(self, clip_id: str) -> dict[str, Any]:
        """Every field of one clip (a unique prefix of its id will do), its source row and its
        instruction pairs per branch."""
        found = self.records(
            "SELECT * FROM per_clip WHERE starts_with(clip_id, ?) ORDER BY clip_id LIMIT 6",
            [clip_id],
        )
        if not found:
            raise BrowseError(f"no clip {clip_id!r} in {self.layout.path}")
        exact = [r for r in found if r["clip_id"] == clip_id]
        if len(found) > 1 and not exact:
            ids = ", ".join(r["clip_id"] for r in found[:5])
            raise BrowseError(f"clip id prefix {clip_id!r} is ambiguous: {ids}, …")
        record = exact[0] if exact else found[0]
        if self.has("sources") and record.get("source_id"):
            source = self.records(
                "SELECT * FROM sources WHERE source_id = ? LIMIT 1", [record["source_id"]]
            )
            record["source"] = source[0] if source else None
        record["instructions"] = self.pairs_of([record["clip_id"]]).get(record["clip_id"], {})
        return record

    def pairs_of(self, clip_ids: Sequence[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Instruction pairs per clip and branch, in turn order."""
        if not self.layout.branches or not clip_ids:
            return {}
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for r in self.records(
            "SELECT clip_id, branch, turn, question, answer, kind, field, source FROM pairs "
            "WHERE list_contains(?, clip_id) ORDER BY clip_id, branch, turn",
            [list(clip_ids)],
        ):
            out.setdefault(r["clip_id"], {}).setdefault(r["branch"], []).append(r)
        return out


def same_shards(a: Folder, b: Folder) -> bool:
    """Whether shard k of `a` became shard k of `b` (false across the scene split, after
    which shards are pieces of source shards: curation/core/units.py)."""
    pieces = [any(_is_piece(p.name) for p in f.shards[:1]) for f in (a, b)]
    return pieces[0] == pieces[1]


def _is_piece(name: str) -> bool:
    unit = unit_of(name)
    return unit is not None and unit.piece is not None


def _widened(f: pa.Field) -> pa.Field:
    if pa.types.is_list(f.type) and pa.types.is_float16(f.type.value_type):
        return f.with_type(pa.list_(pa.float32()))
    return f
