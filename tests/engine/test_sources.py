import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.core.ids import source_id
from curation.engine.config import SourcesConfig
from curation.engine.sources import SourcesError, list_sources


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_is_searched_recursively_for_videos(tmp_path):
    a = _touch(tmp_path / "b" / "clip.MP4")
    b = _touch(tmp_path / "a.mkv")
    _touch(tmp_path / "notes.txt")
    table = list_sources(tmp_path, SourcesConfig())
    assert table["path"].to_pylist() == sorted([str(a), str(b)])
    assert table["source_id"].to_pylist() == [source_id(p) for p in table["path"].to_pylist()]


def test_text_list_resolves_relative_paths_and_keeps_missing_files(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nvids/one.mp4\n\n/abs/missing.mp4\nvids/one.mp4\n")
    table = list_sources(listing, SourcesConfig())
    assert table["path"].to_pylist() == [str(tmp_path / "vids" / "one.mp4"), "/abs/missing.mp4"]


def test_csv_and_parquet_lists_use_the_path_column(tmp_path):
    (tmp_path / "l.csv").write_text("id,path\n1,x.mp4\n2,y.mp4\n")
    assert len(list_sources(tmp_path / "l.csv", SourcesConfig())) == 2
    pq.write_table(pa.table({"video": ["/v/1.mp4", "/v/2.mp4", None]}), tmp_path / "l.parquet")
    table = list_sources(tmp_path / "l.parquet", SourcesConfig(path_column="video"))
    assert table["path"].to_pylist() == ["/v/1.mp4", "/v/2.mp4"]
    with pytest.raises(SourcesError, match="no column 'path'"):
        list_sources(tmp_path / "l.parquet", SourcesConfig())


def test_nothing_to_curate_is_an_error(tmp_path):
    with pytest.raises(SourcesError, match="lists no videos"):
        list_sources(tmp_path, SourcesConfig())
    with pytest.raises(SourcesError, match="neither a folder nor a file"):
        list_sources(tmp_path / "nope", SourcesConfig())
