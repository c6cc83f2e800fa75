"""Frozen dataclasses that travel with every matter between the night's processes pickle as their
class and field values (schemas/pickling.by_fields): the same object comes back, a subclass still
pickles, and a class that calling cannot rebuild is refused when it is declared."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field

import pytest

from schemas.pickling import by_fields


@by_fields
@dataclass(frozen=True, slots=True)
class Inspection:
    pages: int | None = None
    warnings: tuple[str, ...] = ()
    notes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WithSource(Inspection):
    source: str = "zjxt"


@by_fields
@dataclass(frozen=True, slots=True)
class One:
    only: str


def test_a_frozen_dataclass_comes_back_equal_from_its_class_and_field_values() -> None:
    item = Inspection(3, ("a warning",), {"objects": 21})
    assert item.__reduce_ex__(pickle.HIGHEST_PROTOCOL) == (Inspection, (3, ("a warning",), {"objects": 21}))
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(item, protocol)) == item
    assert copy.deepcopy(item) == item and copy.copy(item) == item
    assert pickle.loads(pickle.dumps(One("x"))) == One("x")


def test_a_subclass_with_more_fields_pickles_as_the_dataclasses_module_pickles_it() -> None:
    item = WithSource(2, (), {}, "bmxt")
    back = pickle.loads(pickle.dumps(item))
    assert type(back) is WithSource and back == item and back.source == "bmxt"


def test_a_class_that_calling_it_would_not_rebuild_is_refused() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        @by_fields
        @dataclass(frozen=True)
        class Checked:
            pages: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="__init__ argument"):
        @by_fields
        @dataclass(frozen=True)
        class Derived:
            pages: int
            total: int = field(init=False, default=0)


def test_a_staged_matter_travels_whole_to_another_process(tmp_path) -> None:
    """What staging hands to numbering and transfer, through a real pickle: the matter, every
    document's digests, format, PDF inspection and content inspection as they were, and the
    content options one object shared by the matters of a chunk."""
    from packager.content import ContentOptions
    from tests.test_packager_support import good_documents, make_matter, stage

    options = ContentOptions()
    staged = []
    for n in range(3):
        matter, contents = make_matter(good_documents(), project_id=f"3301062602100001{n:02d}")
        staged.append(stage(tmp_path / str(n), matter, contents))
    staged = [type(s)(**{f: getattr(s, f) for f in s.__dataclass_fields__} | {"content_options": options})
              for s in staged]
    back = pickle.loads(pickle.dumps(staged, pickle.HIGHEST_PROTOCOL))
    assert back == staged
    assert [d.pdf for d in back[0].documents] == [d.pdf for d in staged[0].documents]
    assert all(d.pdf is not None and d.pdf.pages for d in back[0].documents if d.format.name == "PDF")
    assert back[0].content_options is back[1].content_options is back[2].content_options
