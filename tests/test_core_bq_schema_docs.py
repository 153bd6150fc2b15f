"""The docs' generated field tables: how a block is found, replaced and written back."""

import pytest

from pipeline.core import bq_schema, field_docs
from pipeline.core.field_docs import FieldDoc, markdown_table, with_block
from tests.conftest import REPO

BEGIN = field_docs.BEGIN.format(name="t")
END = field_docs.END.format(name="t")


def test_a_block_at_the_very_start_of_a_file_is_replaced():
    assert with_block(f"{BEGIN}\nold\n{END}\nafter", "t", "| new |") == f"{BEGIN}\n| new |\n{END}\nafter"


def test_only_the_named_block_is_replaced_and_the_text_around_it_kept():
    other = field_docs.BEGIN.format(name="u") + "\nkeep\n" + field_docs.END.format(name="u")
    text = f"# Title\n{other}\nbefore\n{BEGIN}\n| old |\n| rows |\n{END}\nafter\n"
    assert with_block(text, "t", "| new |") == f"# Title\n{other}\nbefore\n{BEGIN}\n| new |\n{END}\nafter\n"


@pytest.mark.parametrize(
    "text",
    ["no markers here", f"{BEGIN}\nno end", f"no begin\n{END}", f"{END}\nend before begin\n{BEGIN}"],
)
def test_a_text_without_the_block_names_the_block_and_its_markers(text):
    with pytest.raises(ValueError) as err:
        with_block(text, "t", "| x |")
    assert str(err.value) == f"no generated block 't' ({BEGIN} … {END})"


def test_a_typed_table_leaves_the_type_of_an_untyped_row_empty():
    docs = (FieldDoc(("a", "b"), "the a and b", "text"), FieldDoc(("c",), "the c"))
    assert markdown_table(docs, "column") == "\n".join(
        [
            "| column | type | meaning |",
            "|---|---|---|",
            "| `a`, `b` | text | the a and b |",
            "| `c` |  | the c |",
        ]
    )


def test_an_untyped_table_has_no_type_column():
    docs = (FieldDoc(("a",), "the a"), FieldDoc(("b", "c"), "the b and c"))
    assert markdown_table(docs) == "| key | meaning |\n|---|---|\n| `a` | the a |\n| `b`, `c` | the b and c |"


def _stale_repository(tmp_path):
    """A copy of the two docs pages that hold generated tables, each table replaced by a stale one."""
    for relative in ("docs/report.md", "docs/production.md"):
        text = (REPO / relative).read_text(encoding="utf-8")
        for (page, name), _ in field_docs.doc_blocks().items():
            if page == relative:
                text = with_block(text, name, "| stale |")
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    return tmp_path


def test_writing_the_doc_tables_rewrites_each_stale_page_to_the_committed_text(tmp_path):
    repository = _stale_repository(tmp_path)
    written = bq_schema.write_doc_tables(repository)
    # Each page once, though several of its blocks were rewritten (it printed docs/report.md three times).
    assert sorted(written) == sorted([repository / "docs/report.md", repository / "docs/production.md"])
    for relative in ("docs/report.md", "docs/production.md"):
        assert (repository / relative).read_text(encoding="utf-8") == (REPO / relative).read_text(encoding="utf-8")


def test_pages_already_current_are_left_alone(tmp_path):
    repository = _stale_repository(tmp_path)
    (repository / "docs/production.md").write_text(
        (REPO / "docs/production.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert set(bq_schema.write_doc_tables(str(repository))) == {repository / "docs/report.md"}
    assert bq_schema.write_doc_tables(repository) == []


@pytest.mark.parametrize(
    "meaning, text",
    [
        ("see [Exit status](#exit-status)", "see Exit status"),
        ("`a` \\| `b`: [one](x.md) or [two](y.md#z)", "`a` | `b`: one or two"),
        ("no markup", "no markup"),
    ],
)
def test_a_description_is_the_meaning_with_links_reduced_to_their_text_and_pipes_unescaped(meaning, text):
    assert field_docs.description(meaning) == text


@pytest.mark.parametrize(
    "length, shown",
    [
        (field_docs.MAX_DESCRIPTION - 1, "x" * 1023),
        (field_docs.MAX_DESCRIPTION, "x" * 1024),
        (field_docs.MAX_DESCRIPTION + 1, "x" * 1023 + "…"),
    ],
)
def test_a_description_of_up_to_1024_characters_is_kept_whole_and_a_longer_one_cut_to_1024(length, shown):
    assert field_docs.description("x" * length) == shown
    assert len(field_docs.description("x" * length)) <= 1024
