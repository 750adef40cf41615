"""cbam.imagenet: ImageNet weights from a local file, the cache or a safe download; never the real network.

Every test runs behind ``no_network``, which fails the test if anything tries to resolve or connect
to an address other than the loopback one. Downloads come from a small HTTP server on 127.0.0.1
(so that Content-Length, truncation and HTTP errors are real), or from file:// URLs. The weights
files are built here with random weights in the real layouts: pytorchcv's own ``cbam_resnet50``
network for the pytorchcv file, and our state dict renamed back to the authors' keys for theirs.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import http.server
import io
import ipaddress
import os
import socket
import socketserver
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.hub
from pytorchcv.models.cbamresnet import cbam_resnet50 as pytorchcv_cbam_resnet50
from torch import nn

from cbam import checkpoints, imagenet
from cbam.checkpoints import CheckpointError
from cbam.compat import convert_state_dict
from cbam.imagenet import (
    ENV_VAR,
    IMAGENET_CLASSES,
    PYTORCHCV_CBAM_RESNET50,
    OfflineError,
    WeightsError,
)
from cbam.models import cbam_resnet50

# --------------------------------------------------------------------------------------------
# No network, and a cache of our own
# --------------------------------------------------------------------------------------------

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse (and record) every name lookup or connection that is not to the loopback address.

    The test fails at teardown if anything was attempted, unless the test itself expected it and
    cleared the returned list.
    """
    attempts: list[object] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_loopback(host):
            attempts.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"name lookups are disabled in tests ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def refused(sock: socket.socket, address: object) -> bool:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(address)
            return True
        return False

    def connect(sock, address):
        if refused(sock, address):
            raise OSError(errno.ENETUNREACH, f"connections are disabled in tests ({address})")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        return errno.ENETUNREACH if refused(sock, address) else real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for name in _PROXY_VARIABLES:  # urllib would otherwise send 127.0.0.1 requests through a proxy
        monkeypatch.delenv(name, raising=False)
    yield attempts
    assert not attempts, f"the test tried to reach the network: {attempts}"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """An empty torch hub folder under tmp_path (via TORCH_HOME), no configured file, nothing verified."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called torch.hub.set_dir
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(imagenet, "_verified_files", set())
    return tmp_path / "torch" / "hub" / "checkpoints"


def _files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden temporary files included), as relative paths."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# --------------------------------------------------------------------------------------------
# A small HTTP server on 127.0.0.1
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        site: LocalSite = self.server.site
        site.requests.append(self.path)
        if self.path not in site.routes:
            self.send_error(404, "Not Found")
            return
        body, content_length = site.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()
        self.wfile.write(body)  # HTTP/1.0: the connection closes after the body, short or not

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that stops reading (a refused download) breaks the pipe: expected


class LocalSite:
    """Serves bytes at paths of http://127.0.0.1:PORT and records the requested paths."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        self.requests: list[str] = []
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.site = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, path: str, body: bytes, content_length: int | None | str = "exact") -> str:
        """Serve ``body`` at ``path``, announcing its true length, another one, or none (None)."""
        self.routes[path] = (body, len(body) if content_length == "exact" else content_length)
        return self.base_url + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def site():
    local = LocalSite()
    yield local
    local.close()


# --------------------------------------------------------------------------------------------
# Weights files in the real layouts, with random weights
# --------------------------------------------------------------------------------------------

# Our keys -> the authors' (MODELS/cbam.py of Jongchan/attention-module), the reverse of cbam.compat.
_OURS_TO_AUTHORS = (
    (".cbam.channel_attention.fc1.", ".cbam.ChannelGate.mlp.1."),
    (".cbam.channel_attention.fc2.", ".cbam.ChannelGate.mlp.3."),
    (".cbam.spatial_attention.conv.", ".cbam.SpatialGate.spatial.conv."),
    (".cbam.spatial_attention.bn.", ".cbam.SpatialGate.spatial.bn."),
)


def _authors_key(key: str) -> str:
    for ours, theirs in _OURS_TO_AUTHORS:
        key = key.replace(ours, theirs)
    return "module." + key  # saved from nn.DataParallel


@torch.no_grad()
def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics of moderate size, so that the logits differ from class to class."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
            if module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        elif isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
            module.bias.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return model.eval()


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@torch.no_grad()
def _logits(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    return model.eval()(image)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> SimpleNamespace:
    """A random CBAM-ResNet-50 saved as pytorchcv's file and as the authors' checkpoint, with reference logits."""
    folder = tmp_path_factory.mktemp("weights")
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    network = _randomize(pytorchcv_cbam_resnet50(pretrained=False), seed=1)
    pytorchcv_state = network.state_dict()
    pytorchcv_logits = _logits(network, image)
    del network

    ours = convert_state_dict(pytorchcv_state, "pytorchcv")
    direct = checkpoints.load_into(cbam_resnet50(), ours)
    direct_logits = _logits(direct, image)
    parameters = sum(p.numel() for p in direct.parameters())
    del direct

    pytorchcv_bytes = _saved(pytorchcv_state)
    pytorchcv_path = folder / "cbam_resnet50-random.pth"
    pytorchcv_path.write_bytes(pytorchcv_bytes)

    authors_checkpoint = {
        "epoch": 100,
        "arch": "resnet",
        "state_dict": {_authors_key(key): tensor for key, tensor in ours.items()},
        "best_prec1": 77.622,
    }
    authors_path = folder / "RESNET50_CBAM_random.pth.tar"
    torch.save(authors_checkpoint, authors_path)

    return SimpleNamespace(
        image=image,
        pytorchcv_state=pytorchcv_state,
        pytorchcv_logits=pytorchcv_logits,
        ours=ours,
        direct_logits=direct_logits,
        parameters=parameters,
        pytorchcv_bytes=pytorchcv_bytes,
        pytorchcv_path=pytorchcv_path,
        authors_path=authors_path,
    )


def _assert_same_state(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key


def _assert_same_logits(model: nn.Module, weights: SimpleNamespace) -> None:
    assert not model.training
    torch.testing.assert_close(_logits(model, weights.image), weights.direct_logits, rtol=0, atol=1e-5)


def _small_source(site: LocalSite, payload: bytes, **changes) -> imagenet.WeightsSource:
    """pytorchcv's source, but served by ``site`` as a zip holding ``payload``."""
    url = site.serve("/weights.pth.zip", _zipped(PYTORCHCV_CBAM_RESNET50.file_name, payload))
    return dataclasses.replace(PYTORCHCV_CBAM_RESNET50, url=url, sha1=_sha1(payload), **changes)


# --------------------------------------------------------------------------------------------
# The published facts
# --------------------------------------------------------------------------------------------


def test_pytorchcv_constants_are_those_of_the_installed_pytorchcv():
    from pytorchcv.models.common.model_store import get_model_metainfo

    parameters, error_field, sha1, release = get_model_metainfo("cbam_resnet50")
    assert imagenet.PYTORCHCV_PARAMETERS == parameters == 28_089_624
    assert imagenet.PYTORCHCV_SHA1 == sha1
    assert imagenet.PYTORCHCV_RELEASE == release == "v0.0.537"
    assert imagenet.PYTORCHCV_FILE_NAME == f"cbam_resnet50-{error_field}-{sha1[:8]}.pth"
    assert imagenet.PYTORCHCV_URL == (
        f"https://github.com/osmr/imgclsmob/releases/download/{release}/{imagenet.PYTORCHCV_FILE_NAME}.zip"
    )
    assert PYTORCHCV_CBAM_RESNET50.archive == "zip"


def test_our_network_has_pytorchcvs_parameter_count(weights):
    assert weights.parameters == imagenet.PYTORCHCV_PARAMETERS


def test_the_fixture_files_compute_pytorchcvs_function(weights):
    assert weights.direct_logits.std() > 0.05, "nearly constant logits would prove little"
    torch.testing.assert_close(weights.direct_logits, weights.pytorchcv_logits, rtol=0, atol=1e-4)


def test_cache_dir_follows_torch_home(cache, tmp_path):
    assert imagenet.cache_dir() == cache == tmp_path / "torch" / "hub" / "checkpoints"
    assert imagenet.cached_path() == cache / imagenet.PYTORCHCV_FILE_NAME


# --------------------------------------------------------------------------------------------
# Local files: argument, environment variable, upload
# --------------------------------------------------------------------------------------------


def test_local_pytorchcv_file_gives_the_same_logits(weights, cache):
    model = imagenet.load_imagenet_model(local_path=weights.pytorchcv_path, allow_download=False)
    _assert_same_logits(model, weights)
    assert _files_in(cache) == []


def test_authors_checkpoint_from_the_environment_gives_the_same_logits(weights, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights.authors_path))
    assert imagenet.is_available_offline()
    model = imagenet.load_imagenet_model(allow_download=False)
    _assert_same_logits(model, weights)


def test_local_path_comes_first_then_the_environment_then_the_cache(weights, cache, monkeypatch):
    cache.mkdir(parents=True)
    cached = cache / imagenet.PYTORCHCV_FILE_NAME
    cached.write_bytes(b"payload")
    source = dataclasses.replace(PYTORCHCV_CBAM_RESNET50, sha1=_sha1(b"payload"))
    assert imagenet.weights_file(source=source, allow_download=False) == cached

    monkeypatch.setenv(ENV_VAR, str(weights.authors_path))
    assert imagenet.weights_file(source=source, allow_download=False) == weights.authors_path
    assert imagenet.weights_file(source=source, local_path=weights.pytorchcv_path) == weights.pytorchcv_path


def test_a_configured_path_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsError, match="no ImageNet weights file at"):
        imagenet.imagenet_weights(local_path=missing)
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(WeightsError, match=f"{ENV_VAR} is set to .*nowhere.pth.*no file there"):
        imagenet.imagenet_weights()
    assert not imagenet.is_available_offline()


@pytest.mark.parametrize("form", ["pytorchcv", "pytorchcv zip", "authors", "ours"])
def test_uploads_in_every_layout_give_our_state_dict(weights, form):
    if form == "pytorchcv":
        data = weights.pytorchcv_bytes
    elif form == "pytorchcv zip":  # the file exactly as the model store serves it
        data = _zipped(imagenet.PYTORCHCV_FILE_NAME, weights.pytorchcv_bytes)
    elif form == "authors":
        data = weights.authors_path.read_bytes()
    else:
        data = _saved(weights.ours)
    expected = weights.ours
    loaded = imagenet.from_uploaded_bytes(io.BytesIO(data) if form == "ours" else data)
    assert set(loaded) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key


def test_detect_format():
    tensor = torch.zeros(1)
    assert imagenet.detect_format({"features.stage1.unit1.body.conv1.conv.weight": tensor}) == "pytorchcv"
    assert imagenet.detect_format({"module.layer1.0.cbam.ChannelGate.mlp.1.weight": tensor}) == "official"
    assert imagenet.detect_format({"layer1.0.cbam.SpatialGate.spatial.bn.bias": tensor}) == "official"
    assert imagenet.detect_format({"layer1.0.cbam.channel_attention.fc1.weight": tensor}) == "cbam_lab"
    assert imagenet.detect_format({"layer1.0.se.spatial.conv.bn.bias": tensor}) == "timm"
    with pytest.raises(CheckpointError, match="ResNet without CBAM blocks"):
        imagenet.detect_format({"conv1.weight": tensor, "layer1.0.conv1.weight": tensor})
    with pytest.raises(CheckpointError, match="not CBAM-ResNet weights: keys such as encoder.weight"):
        imagenet.detect_format({"encoder.weight": tensor})


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_uploads_that_are_not_weights_are_refused():
    with pytest.raises(CheckpointError, match="refused to load"):
        imagenet.from_uploaded_bytes(_saved({"state_dict": {"conv1.weight": torch.zeros(1)}, "hook": _RunsCode()}))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        imagenet.from_uploaded_bytes(b"<html>Dropbox sign-in page</html>")
    with pytest.raises(CheckpointError, match="ResNet without CBAM blocks"):
        imagenet.from_uploaded_bytes(_saved({"conv1.weight": torch.zeros(1), "layer1.0.conv1.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="cannot be used as CBAM-ResNet weights.*features.stage9"):
        imagenet.from_uploaded_bytes(_saved({"features.stage9.unit1.body.conv1.conv.weight": torch.zeros(1)}))


def test_wrong_shapes_and_keys_are_named(weights, tmp_path):
    wrong_head = dict(weights.pytorchcv_state)
    wrong_head["output.weight"] = torch.zeros(10, 2048)
    wrong_head["output.bias"] = torch.zeros(10)
    path = tmp_path / "ten_classes.pth"
    torch.save(wrong_head, path)
    with pytest.raises(
        CheckpointError, match=r"wrong shape: fc\.weight \(model \[1000, 2048\], checkpoint \[10, 2048\]\)"
    ):
        imagenet.load_imagenet_model(local_path=path, allow_download=False)

    missing_block = {key: value for key, value in weights.ours.items() if not key.startswith("layer4.2.")}
    with pytest.raises(CheckpointError, match=r"missing key\(s\) .*layer4\.2\.conv1\.weight"):
        imagenet.build_imagenet_model(missing_block)


# --------------------------------------------------------------------------------------------
# Offline
# --------------------------------------------------------------------------------------------


def test_offline_the_real_url_fails_with_an_explanation(cache, no_network):
    # urllib asks for github.com's address; the guard answers as a machine without DNS would.
    with pytest.raises(OfflineError) as raised:
        imagenet.imagenet_weights()
    assert no_network == ["github.com"]
    no_network.clear()
    message = str(raised.value)
    assert message.startswith("CBAM Lab could not reach the pytorchcv model store to download the ImageNet weights (")
    assert "The bundled models still work." in message
    assert f"download {imagenet.PYTORCHCV_FILE_NAME}.zip from {imagenet.PYTORCHCV_URL}" in message
    assert f"set {ENV_VAR}=/path/to/{imagenet.PYTORCHCV_FILE_NAME} or upload it in the app" in message
    assert _files_in(cache) == []
    assert not imagenet.is_available_offline()


def test_allow_download_false_never_connects(cache, monkeypatch):
    def no_call(*args, **kwargs):
        raise AssertionError("allow_download=False must not open any URL")

    monkeypatch.setattr(imagenet, "_open_url", no_call)
    with pytest.raises(OfflineError, match="downloading is turned off.*The bundled models still work"):
        imagenet.load_imagenet_model(allow_download=False)
    assert _files_in(cache) == []


def test_refused_connection_is_offline(cache):
    with socket.socket() as probe:  # a port on 127.0.0.1 where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = dataclasses.replace(PYTORCHCV_CBAM_RESNET50, url=f"http://127.0.0.1:{port}/weights.pth.zip")
    with pytest.raises(OfflineError, match="ConnectionRefusedError"):
        imagenet.imagenet_weights(source=source)
    assert _files_in(cache) == []


# --------------------------------------------------------------------------------------------
# Downloading into the cache
# --------------------------------------------------------------------------------------------


def test_download_verifies_caches_and_is_not_repeated(weights, site, cache, monkeypatch):
    source = _small_source(site, weights.pytorchcv_bytes)
    zipped_size = len(_zipped(source.file_name, weights.pytorchcv_bytes))
    assert not imagenet.is_available_offline(source=source)

    calls: list[tuple[int, int | None]] = []
    loaded = imagenet.imagenet_weights(source=source, progress=lambda done, total: calls.append((done, total)))
    _assert_same_state(loaded, weights.ours)
    assert site.requests == ["/weights.pth.zip"]
    assert calls[0] == (0, zipped_size) and calls[-1] == (zipped_size, zipped_size)
    done = [d for d, _ in calls]
    assert len(calls) > 10 and done == sorted(set(done)), "progress must be reported in increasing steps"
    assert {total for _, total in calls} == {zipped_size}

    assert _files_in(cache) == [source.file_name]  # the .pth alone: no zip, no temporary file
    assert imagenet.sha1_of(cache / source.file_name) == source.sha1
    assert imagenet.is_available_offline(source=source)

    hashed: list[Path] = []
    real_sha1_of = imagenet.sha1_of
    monkeypatch.setattr(imagenet, "sha1_of", lambda path: hashed.append(path) or real_sha1_of(path))
    _assert_same_state(imagenet.imagenet_weights(source=source), weights.ours)
    assert imagenet.weights_file(source=source, allow_download=False) == cache / source.file_name
    assert site.requests == ["/weights.pth.zip"], "the cached file must be used, not downloaded again"
    assert hashed == [], "a file verified by its download is not hashed again"

    monkeypatch.setattr(imagenet, "_verified_files", set())  # as in a new process
    assert imagenet.is_available_offline(source=source)
    assert imagenet.weights_file(source=source, allow_download=False) == cache / source.file_name
    assert len(hashed) == 1, "a cached file is hashed once per process"


def test_corrupt_cached_file_is_deleted_and_downloaded_again(site, cache):
    payload = os.urandom(100_000)
    source = _small_source(site, payload)
    cached = imagenet.cached_path(source)
    cache.mkdir(parents=True)
    cached.write_bytes(payload[:-1] + b"!")

    assert not imagenet.is_available_offline(source=source)
    with pytest.raises(OfflineError, match=r"was corrupt.*deleted"):
        imagenet.weights_file(source=source, allow_download=False)
    assert not cached.exists()

    cached.write_bytes(b"truncated")
    assert imagenet.weights_file(source=source) == cached
    assert cached.read_bytes() == payload
    assert site.requests == ["/weights.pth.zip"]


def test_unzipped_file_with_the_wrong_checksum_is_refused(site, cache):
    source = dataclasses.replace(
        _small_source(site, b"not the published weights"), sha1=_sha1(b"the published weights")
    )
    with pytest.raises(WeightsError, match="wrong checksum"):
        imagenet.weights_file(source=source)
    assert _files_in(cache) == []


def test_broken_archives_are_refused(site, cache):
    source = _small_source(site, b"weights")
    site.serve("/weights.pth.zip", b"PK\x03\x04 this is no zip")
    with pytest.raises(WeightsError, match="not a readable zip archive"):
        imagenet.weights_file(source=source)
    site.serve("/weights.pth.zip", _zipped("other_name.pth", b"weights"))
    with pytest.raises(WeightsError, match=f"does not hold {source.file_name} .*other_name.pth"):
        imagenet.weights_file(source=source)
    assert _files_in(cache) == []


def test_http_error_is_not_offline(site, cache):
    source = dataclasses.replace(PYTORCHCV_CBAM_RESNET50, url=site.base_url + "/moved.zip")
    with pytest.raises(WeightsError, match="HTTP 404") as raised:
        imagenet.weights_file(source=source)
    assert not isinstance(raised.value, OfflineError)
    assert _files_in(cache) == []


# --------------------------------------------------------------------------------------------
# download() itself
# --------------------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: several pieces of CHUNK_BYTES


def test_download_streams_with_progress_and_checks_the_checksum(site, tmp_path):
    url = site.serve("/file.bin", PAYLOAD)
    calls: list[tuple[int, int | None]] = []
    dest = imagenet.download(
        url, tmp_path / "out" / "file.bin", expected_sha1=_sha1(PAYLOAD), progress=lambda *c: calls.append(c)
    )
    assert dest.read_bytes() == PAYLOAD
    assert [done for done, _ in calls] == [0, 1 << 20, 2 << 20, 3 << 20, len(PAYLOAD)]
    assert {total for _, total in calls} == {len(PAYLOAD)}
    assert _files_in(tmp_path / "out") == ["file.bin"]


def test_download_from_a_file_url(tmp_path):
    source = tmp_path / "published.bin"
    source.write_bytes(PAYLOAD)
    dest = imagenet.download(source.as_uri(), tmp_path / "copy.bin", expected_sha1=_sha1(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def _assert_refused(site, tmp_path, match: str, body: bytes, content_length, **options) -> None:
    """The download fails with ``match``, and an older file at the destination is left untouched."""
    url = site.serve("/file.bin", body, content_length)
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)
    (folder / "file.bin").write_bytes(b"the previous good file")
    options.setdefault("expected_sha1", _sha1(PAYLOAD))
    with pytest.raises(WeightsError, match=match):
        imagenet.download(url, folder / "file.bin", **options)
    assert _files_in(folder) == ["file.bin"]
    assert (folder / "file.bin").read_bytes() == b"the previous good file"


def test_corrupt_download_is_refused(site, tmp_path):
    corrupt = bytearray(PAYLOAD)
    corrupt[1_234_567] ^= 0xFF
    _assert_refused(site, tmp_path, "wrong checksum", bytes(corrupt), "exact")


def test_truncated_download_is_refused(site, tmp_path):
    short = PAYLOAD[:-1000]
    _assert_refused(site, tmp_path, f"cut short: {len(short):,} of {len(PAYLOAD):,} bytes", short, len(PAYLOAD))


def test_oversize_download_is_refused(site, tmp_path):
    # announced by Content-Length: refused before reading
    _assert_refused(site, tmp_path, "over the limit of 1.0 MiB", PAYLOAD, "exact", max_bytes=1 << 20)
    # not announced: stopped as soon as the limit is passed
    calls: list[int] = []
    _assert_refused(
        site, tmp_path, "larger than the limit", PAYLOAD, None, max_bytes=1 << 20, progress=lambda d, t: calls.append(d)
    )
    assert max(calls) <= 1 << 20


def test_only_web_and_file_urls(tmp_path):
    with pytest.raises(ValueError, match="only https, http, file"):
        imagenet.download("ftp://example.org/w.pth", tmp_path / "w.pth", expected_sha1=None)


def test_tqdm_progress_draws_and_closes():
    output = io.StringIO()
    progress = imagenet.tqdm_progress("weights", file=output)
    for done in (0, 40, 100):
        progress(done, 100)
    assert "weights" in output.getvalue() and "100" in output.getvalue()
    assert progress._bar is None  # closed at the end


# --------------------------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------------------------


def test_imagenet_classes():
    assert len(IMAGENET_CLASSES) == 1000
    assert all(isinstance(name, str) and name for name in IMAGENET_CLASSES)
    assert IMAGENET_CLASSES[0] == "tench" and IMAGENET_CLASSES[281] == "tabby"


def test_top_k_sorts_and_is_a_probability():
    logits = torch.randn(1, 1000, generator=torch.Generator().manual_seed(3))
    logits[0, 281] = 20.0
    top = imagenet.top_k(logits, k=5)
    assert len(top) == 5 and top[0][0] == "tabby"
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6
    assert top == imagenet.top_k(logits[0], k=5)
    assert sum(p for _, p in imagenet.top_k(logits, k=1000)) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="shape"):
        imagenet.top_k(torch.zeros(2, 1000))
    with pytest.raises(ValueError, match="positive"):
        imagenet.top_k(logits, k=0)


def test_the_class_names_are_torchvisions_list():
    from torchvision.models import ResNet50_Weights

    assert IMAGENET_CLASSES == tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


# --------------------------------------------------------------------------------------------
# In Chinese
# --------------------------------------------------------------------------------------------


def _assert_chinese(message: str) -> None:
    import re

    from test_i18n import english_words

    assert re.search(r"[\u4e00-\u9fff]", message), message
    assert not english_words(message), (english_words(message), message)


def test_in_chinese_the_download_errors_read_in_chinese(cache, tmp_path, monkeypatch):
    from cbam import i18n

    monkeypatch.setattr(imagenet, "_open_url", lambda *args: pytest.fail("nothing may be downloaded"))
    raised = []
    with i18n.use("zh"):
        for call in (lambda: imagenet.imagenet_weights(allow_download=False),
                     lambda: imagenet.imagenet_weights(local_path="nowhere.pth"),  # short: tmp_path has English words
                     lambda: imagenet.from_uploaded_bytes(_saved({"conv1.weight": torch.zeros(1),
                                                                  "layer1.0.conv1.weight": torch.zeros(1)})),
                     lambda: imagenet.from_uploaded_bytes(_saved({"conv.weight": torch.zeros(1)}))):
            with pytest.raises((WeightsError, CheckpointError)) as error:
                call()
            raised.append(error.value)
            _assert_chinese(str(error.value))
    assert "downloading is turned off" in i18n.again(raised[0])  # the same error, worded again in English
