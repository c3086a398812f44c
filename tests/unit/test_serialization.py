import base64
import dataclasses
import enum
import json
import socket
import threading
from collections import namedtuple
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworkflow.exceptions import SerializationError
from pyworkflow.serialization import Codec


class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


class Perm(enum.IntFlag):
    R = 4
    W = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    when: datetime
    where: Point
    what: Color
    seen: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        raise AssertionError("decode must not call __init__/__post_init__")


class User(pydantic.BaseModel):
    name: str
    joined: datetime
    score: float = 1.0


Pair = namedtuple("Pair", "left right")


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.value == self.value

    def __repr__(self) -> str:  # a test id: the same in every process (pytest-xdist compares)
        return f"Opaque({self.value})"

    __hash__ = None  # type: ignore[assignment]


def roundtrip(codec: Codec, value: Any) -> Any:
    tree = codec.encode(value)
    text = json.dumps(tree, allow_nan=False)
    assert codec.loads(text) == value or value != value
    back = codec.decode(json.loads(text))
    assert codec.loads(codec.dumps(value)) == back or value != value
    return back


def assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, float | Decimal) and a != a:
        assert str(a) == str(b)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    else:
        assert a == b


# --- JSON values stay plain --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["x", "", 0, -(10**30), 1.5, -0.0, True, False, None, [], {}, [1, "a"], {"a": [{"c": 2.0}]}],
)
def test_json_values_pass_through(value: Any) -> None:
    tree = Codec().encode(value)
    assert tree == value
    assert_same(tree, value)
    assert_same(Codec().decode(tree), value)


def test_plain_tree_is_a_copy() -> None:
    value = {"a": [1, 2]}
    tree = Codec().encode(value)
    tree["a"].append(3)
    assert value == {"a": [1, 2]}


def test_dumps_is_compact_json() -> None:
    assert Codec().dumps({"a": [1, 2]}) == '{"a":[1,2]}'


# --- tagged values -----------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


def value_id(value: Any) -> str:
    """The test id of a value: its repr, with a set's items in order (the same in every
    process: pytest-xdist's workers must collect the same ids, and string hashes differ)."""
    if isinstance(value, set | frozenset):
        items = "{" + ", ".join(sorted(map(repr, value))) + "}"
        return items if type(value) is set else f"{type(value).__name__}({items})"
    return repr(value)


@pytest.mark.parametrize(
    "value",
    [
        (1, "a", (2,)),
        (),
        {1, 2, 3},
        frozenset({"a", "b"}),
        datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2024, 7, 1, 12, tzinfo=PARIS),
        datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
        date(2024, 2, 29),
        time(12, 30, 1, 5),
        time(12, 30, tzinfo=UTC),
        time(12, 30, tzinfo=PARIS),
        timedelta(days=-3, seconds=5, microseconds=7),
        UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("1.10"),
        Decimal("-1E+400"),
        Decimal("NaN"),
        b"\x00\xffbytes",
        bytearray(b"abc"),
        float("nan"),
        float("inf"),
        float("-inf"),
        {1: "a", (1, 2): "b", None: "c"},
        {"__pw__": "not a tag", "x": 1},
        {"__pw__": {"__pw__": 1}},
        Color.RED,
        Color.BLUE,
        Perm.R | Perm.W,
        Point(1, 2.5, ["a"]),
        Pair(1, (2, 3)),
        User(name="ada", joined=datetime(2024, 1, 1, tzinfo=UTC)),
        Opaque(3),
        [Opaque(1), {"deep": (Opaque(2),)}],
        {"when": datetime(2024, 1, 1), "set": {b"x"}},
    ],
    ids=value_id,
)
def test_roundtrip_keeps_value_and_type(value: Any) -> None:
    back = roundtrip(Codec(), value)
    assert_same(back, value)
    if isinstance(value, datetime | time):
        assert back.tzinfo == value.tzinfo
        assert back.fold == value.fold


def test_frozen_slots_dataclass_is_rebuilt_without_init() -> None:
    event = object.__new__(Event)
    for name, value in {
        "when": datetime(2024, 1, 1, tzinfo=UTC),
        "where": Point(1),
        "what": Color.BLUE,
        "seen": 3,
    }.items():
        object.__setattr__(event, name, value)
    tree = Codec(allow_pickle=False).encode(event)
    assert tree["__pw__"] == "dataclass"
    assert Codec(allow_pickle=False).decode(tree) == event


def test_dataclass_field_added_later_gets_its_default() -> None:
    tree = Codec().encode(Point(1))
    del tree["fields"]["tags"]
    assert Codec().decode(tree) == Point(1)


def test_local_classes_fall_back_to_pickle() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    tree = Codec().encode(Local(1))
    assert tree["__pw__"] == "pickle"
    assert Codec().decode(tree).x == 1


@pytest.mark.parametrize("cls", [Point, User, Color, Pair])
def test_classes_themselves_are_pickled_by_reference(cls: type) -> None:
    tree = Codec().encode(cls)
    assert tree["__pw__"] == "pickle"
    assert Codec().decode(tree) is cls


def test_set_encoding_is_deterministic() -> None:
    a = Codec().encode({"b", "a", "c"})
    assert a["items"] == ["a", "b", "c"]


# --- errors ------------------------------------------------------------------------------------


def test_unpicklable_value_names_path_and_type() -> None:
    with pytest.raises(SerializationError) as info:
        Codec().encode(threading.Lock(), path="argument 'cb'")
    assert str(info.value).startswith("argument 'cb' (a _thread.lock) cannot be serialized: ")
    assert info.value.path == "argument 'cb'"
    assert info.value.type_name == "_thread.lock"


def test_error_path_goes_into_containers() -> None:
    value = [1, 2, {"when": (x for x in [])}]
    with pytest.raises(SerializationError) as info:
        Codec().encode(value, path="argument 'items'")
    assert str(info.value).startswith("argument 'items'[2]['when'] (a generator) cannot be")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ((1, [threading.Lock()]), "value[1][0]"),
        ({1: threading.Lock()}, "value[1]"),
        (Point(threading.Lock()), "value.x"),  # type: ignore[arg-type]
        ({"a": {threading.Lock()}}, "value['a'] (an item of the set)"),
    ],
)
def test_error_path_for_tagged_containers(value: Any, where: str) -> None:
    with pytest.raises(SerializationError, match=r"\(a _thread.lock\)") as info:
        Codec().encode(value)
    assert info.value.path == where


def test_socket_cannot_be_serialized() -> None:
    with socket.socket() as sock, pytest.raises(SerializationError, match=r"a socket\.socket"):
        Codec().encode({"s": sock}, path="result of step 'a#1'")


def test_allow_pickle_false_refuses_encode() -> None:
    with pytest.raises(SerializationError) as info:
        Codec(allow_pickle=False).encode({"x": [Opaque(1)]}, path="argument 'x'")
    message = str(info.value)
    assert message.startswith("argument 'x'['x'][0] (a test_serialization.Opaque)")
    assert "dataclass" in message
    assert "pydantic" in message
    assert "allow_pickle" in message


def test_allow_pickle_false_refuses_decode() -> None:
    tree = Codec().encode([Opaque(1)])
    with pytest.raises(SerializationError, match=r"Opaque.*allow_pickle") as info:
        Codec(allow_pickle=False).decode(tree)
    assert info.value.path == "value[0]"


def test_allow_pickle_false_still_encodes_supported_types() -> None:
    value = {"p": Point(1), "u": User(name="a", joined=datetime(2024, 1, 1)), "t": (1,)}
    assert Codec(allow_pickle=False).decode(Codec(allow_pickle=False).encode(value)) == value


def test_signed_pickle_roundtrips() -> None:
    codec = Codec(secret_key="k" * 32)
    tree = codec.encode(Opaque(5))
    assert "sig" in tree
    assert codec.decode(tree) == Opaque(5)
    assert Codec(secret_key=("k" * 32).encode()).decode(tree) == Opaque(5)


def test_tampered_pickle_is_refused() -> None:
    codec = Codec(secret_key="secret")
    tree = codec.encode(Opaque(5))
    evil = Codec().encode(Opaque(6))
    tampered = {**tree, "data": evil["data"]}
    with pytest.raises(SerializationError, match="signature is missing or wrong"):
        codec.decode(tampered)
    flipped = bytearray(base64.b64decode(tree["data"]))
    flipped[-2] ^= 1
    with pytest.raises(SerializationError, match="signature"):
        codec.decode({**tree, "data": base64.b64encode(bytes(flipped)).decode()})


@pytest.mark.parametrize("secret", ["other", None])
def test_pickle_with_missing_or_foreign_signature_is_refused(secret: str | None) -> None:
    tree = Codec(secret_key=secret).encode(Opaque(5))
    with pytest.raises(SerializationError, match="signature is missing or wrong"):
        Codec(secret_key="secret").decode(tree)


def test_empty_secret_key_is_a_configuration_error() -> None:
    from pyworkflow.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        Codec(secret_key="")


def test_missing_class_names_import_path() -> None:
    tree = Codec().encode(Point(1))
    tree["cls"] = "test_serialization:Gone"
    with pytest.raises(SerializationError, match=r"'test_serialization:Gone'"):
        Codec().decode(tree)
    tree["cls"] = "no_such_module_xyz:Point"
    with pytest.raises(SerializationError, match=r"'no_such_module_xyz:Point'"):
        Codec().decode(tree)


def test_class_of_wrong_kind_is_refused() -> None:
    tree = Codec().encode(Point(1))
    tree["cls"] = "builtins:dict"
    with pytest.raises(SerializationError, match="not a dataclass class"):
        Codec().decode(tree)


@pytest.mark.parametrize(
    "tree",
    [
        {"__pw__": "martian"},
        {"__pw__": "tuple"},
        {"__pw__": "uuid", "v": "nope"},
        {"__pw__": "bytes", "v": "!!"},
        [1, {"__pw__": "date", "v": 3}],
    ],
)
def test_malformed_tree_is_a_serialization_error(tree: Any) -> None:
    with pytest.raises(SerializationError):
        Codec().decode(tree)


def test_loads_refuses_bad_json() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        Codec().loads("{")


def test_cycle_is_reported() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="contains itself"):
        Codec().encode(cycle, path="argument 'c'")


# --- properties --------------------------------------------------------------------------------

ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=45)), PARIS])
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=ZONES)
    | st.dates()
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.sampled_from([Color.RED, Color.BLUE])
)
KEYS = st.text() | st.just("__pw__") | st.integers() | st.tuples(st.integers(), st.text())
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.frozensets(st.integers() | st.text(), max_size=4)
        | st.builds(
            Point, st.integers(), st.floats(allow_nan=False), st.lists(st.text(), max_size=2)
        )
    ),
    max_leaves=20,
)


@given(VALUES)
def test_roundtrip_property(value: Any) -> None:
    codec = Codec(allow_pickle=False)
    tree = codec.encode(value)
    json.dumps(tree, allow_nan=False)
    assert_same(codec.decode(json.loads(json.dumps(tree))), value)
    assert codec.dumps(value) == codec.dumps(codec.loads(codec.dumps(value)))


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: (
            st.lists(inner) | st.dictionaries(st.text().filter(lambda k: k != "__pw__"), inner)
        ),
    )
)
def test_plain_json_shape_is_unchanged(value: Any) -> None:
    assert Codec().encode(value) == value


def test_uuid4_roundtrip() -> None:
    u = uuid4()
    assert Codec().decode(Codec().encode(u)) == u


def test_all() -> None:
    from pyworkflow import serialization

    assert serialization.__all__ == ["DEFAULT_MAX_PAYLOAD_SIZE", "Codec"]
    assert serialization.Codec.__doc__
