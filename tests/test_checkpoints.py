"""cbam.checkpoints: the one safe loader (weights only, size-limited, one error type)."""

from __future__ import annotations

import io
import os
import pathlib
import pickle

import pytest
import torch
from torch import nn

from cbam.checkpoints import (
    DEFAULT_MAX_BYTES,
    CheckpointError,
    extract_state_dict,
    load,
    load_into,
)


def _state() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.arange(24.0).reshape(2, 3, 2, 2), "conv.bias": torch.tensor([1.0, -1.0])}


def _saved(obj: object, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def _assert_same_state(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(expected)
    for key in expected:
        assert torch.equal(loaded[key], expected[key])
        assert loaded[key].device.type == "cpu"


class NonSeekable(io.RawIOBase):
    """A stream that can only be read forward, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.bytes_read += len(data)
        return data


class ReadCounting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_calls = 0

    def read(self, size: int | None = -1) -> bytes:
        self.read_calls += 1
        return super().read(size)


# --------------------------------------------------------------------------------------------
# Reading from every kind of source
# --------------------------------------------------------------------------------------------


def test_load_from_path_str_bytes_and_file_objects(tmp_path):
    state = _state()
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    data = path.read_bytes()

    _assert_same_state(load(path), state)
    _assert_same_state(load(str(path)), state)
    _assert_same_state(load(data), state)
    _assert_same_state(load(bytearray(data)), state)
    with open(path, "rb") as file:
        _assert_same_state(load(file), state)
    _assert_same_state(load(NonSeekable(data)), state)


def test_legacy_format_loads_too():
    state = _state()
    _assert_same_state(load(_saved(state, _use_new_zipfile_serialization=False)), state)


def test_checkpoint_container_is_returned_whole():
    state = _state()
    container = {"epoch": 90, "arch": "resnet", "state_dict": state, "best_prec1": 77.3, "optimizer": {"lr": 0.1}}
    loaded = load(_saved(container))
    assert set(loaded) == set(container)
    assert loaded["epoch"] == 90 and loaded["best_prec1"] == 77.3
    _assert_same_state(extract_state_dict(loaded), state)
    _assert_same_state(extract_state_dict(load(_saved(state))), state)


def test_default_limit_is_generous():
    assert DEFAULT_MAX_BYTES >= 256 * 2**20


# --------------------------------------------------------------------------------------------
# Failures, each a CheckpointError with a readable message
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "absent.pth")
    with pytest.raises(CheckpointError, match="is a folder"):
        load(tmp_path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_too_large_is_refused_before_reading(tmp_path):
    data = _saved(_state())
    path = tmp_path / "weights.pth"
    path.write_bytes(data)
    limit = len(data) - 1
    with pytest.raises(CheckpointError, match="too large"):
        load(path, max_bytes=limit)
    with pytest.raises(CheckpointError, match="too large"):
        load(data, max_bytes=limit)
    stream = ReadCounting(data)
    with pytest.raises(CheckpointError, match="too large"):
        load(stream, max_bytes=limit)
    assert stream.read_calls == 0  # the size came from seeking, nothing was read
    forward_only = NonSeekable(data)
    with pytest.raises(CheckpointError, match="too large"):
        load(forward_only, max_bytes=limit)
    assert forward_only.bytes_read <= limit + 1  # never more than one byte past the limit
    # Exactly at the limit is fine.
    _assert_same_state(load(data, max_bytes=len(data)), _state())


def test_bad_max_bytes():
    with pytest.raises(ValueError, match="max_bytes"):
        load(b"", max_bytes=0)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_saved(_state())[:-200], id="truncated zip"),
        pytest.param(_saved(_state())[: len(_saved(_state())) // 2], id="half a zip"),
        pytest.param(_saved(_state(), _use_new_zipfile_serialization=False)[:100], id="truncated legacy"),
        pytest.param(bytes(range(256)) * 8, id="random bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>404 Not Found</html>", id="an error page"),
    ],
)
def test_corrupt_data(data):
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load(data)


def test_random_bytes_from_a_generator():
    noise = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load(noise.numpy().tobytes())


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (torch.zeros(3), "single tensor"),
        ([torch.zeros(3)], "holds a list"),
        ({}, "empty dict"),
        ({"a": 1, "b": torch.zeros(1)}, "'a' (int)"),
        ({1: torch.zeros(1)}, "not strings"),
        ({"state_dict": {"w": 3.0}}, "'w' (float)"),
        ({"state_dict": {}}, "'state_dict' entry is empty"),
        ({"state_dict": [1, 2]}, "'state_dict' entry is a list"),
    ],
)
def test_not_a_dict_of_tensors(obj, message):
    with pytest.raises(CheckpointError, match="not a state dict") as error:
        load(_saved(obj))
    assert message in str(error.value)


def test_text_mode_file_is_rejected(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with open(path) as text_file:
        with pytest.raises(CheckpointError, match="binary mode"):
            load(text_file)


def test_unsupported_source_type():
    with pytest.raises(CheckpointError, match="give a path, bytes or a binary file"):
        load(12345)


# --------------------------------------------------------------------------------------------
# A pickle that would run code
# --------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this calls ``Path(marker).touch()``: it creates a file, the proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_the_payload_is_live(tmp_path):
    # Control: an ordinary unpickler does run it. Without this, the test below could pass vacuously.
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda obj: _saved(obj), id="torch zip format"),
        pytest.param(lambda obj: _saved(obj, _use_new_zipfile_serialization=False), id="torch legacy format"),
        pytest.param(lambda obj: pickle.dumps(obj, protocol=2), id="plain pickle, protocol 2"),
        pytest.param(lambda obj: pickle.dumps(obj), id="plain pickle, default protocol"),
    ],
)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, make):
    marker = tmp_path / "pwned"
    data = make({"conv.weight": torch.zeros(2), "evil": Payload(marker)})
    assert not marker.exists()  # building the payload does not run it

    with pytest.raises(CheckpointError) as error:
        load(data)
    assert not marker.exists()
    message = str(error.value)
    assert "refused" in message or "not a readable PyTorch checkpoint" in message

    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        load(path)
    assert not marker.exists()


def test_zip_payload_message_says_why(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="refused.*could run code"):
        load(_saved({"evil": Payload(marker)}))
    assert not marker.exists()


def test_os_system_payload_is_refused(tmp_path):
    marker = tmp_path / "system-marker"

    class SystemPayload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(CheckpointError, match="refused"):
        load(_saved({"w": torch.zeros(1), "x": SystemPayload()}))
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# load_into
# --------------------------------------------------------------------------------------------


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def test_load_into_loads_strictly():
    source, target = _net(), _net()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    returned = load_into(target, source.state_dict())
    assert returned is target
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_into_names_missing_unexpected_and_wrong_shapes():
    target = _net()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    state = dict(_net().state_dict())
    del state["3.bias"]
    state["4.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(CheckpointError) as error:
        load_into(target, state)
    message = str(error.value)
    assert "1 missing key(s)" in message and "3.bias" in message
    assert "1 unexpected key(s)" in message and "4.weight" in message
    assert "1 key(s) with the wrong shape" in message
    assert "0.weight (model [4, 3, 3, 3], checkpoint [4, 3, 5, 5])" in message
    # Nothing was loaded.
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_load_into_cuts_long_lists():
    many = nn.Sequential(*[nn.Linear(2, 2) for _ in range(30)])  # 60 keys
    with pytest.raises(CheckpointError) as error:
        load_into(many, {"other.weight": torch.zeros(1)})
    message = str(error.value)
    assert "60 missing key(s)" in message
    assert "... and 50 more" in message
    assert "29.bias" not in message  # only the first ten are listed


def test_load_into_hints_at_data_parallel_prefix():
    state = {f"module.{k}": v for k, v in _net().state_dict().items()}
    with pytest.raises(CheckpointError, match="module\\."):
        load_into(_net(), state)


def test_load_into_rejects_non_state_dicts():
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_into(_net(), {"0.weight": [1, 2]})
