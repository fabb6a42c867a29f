"""Saving and loading a network directory: numpy arrays plus a msgspec-encoded manifest, never pickles."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np

from routing.errors import RoutingError
from routing.model import (
    FORMAT_VERSION,
    Manifest,
    Network,
    SharingArrays,
    StopSnap,
    StreetArrays,
    Timetable,
)

MANIFEST_FILE = "manifest.json"

_S = TypeVar("_S", bound=msgspec.Struct)
_manifest_encoder = msgspec.json.Encoder()
_manifest_decoder = msgspec.json.Decoder(Manifest)


class NetworkError(RoutingError):
    """A network directory that cannot be loaded; the message says which file and what to do."""


def _array_fields(cls: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(cls) if f.type is np.ndarray]


def write_arrays(obj: msgspec.Struct, group: str, directory: Path) -> dict[str, str]:
    """Write every array field of `obj` as `<group>/<field>.npy`; returns the manifest's index entries."""
    folder = directory / group
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    for name in _array_fields(type(obj)):
        array = np.ascontiguousarray(getattr(obj, name))
        if array.dtype == object:
            raise TypeError(f"{group}.{name}: object arrays cannot be saved without pickle")
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
        index[f"{group}.{name}"] = f"{group}/{name}.npy"
    return index


def _read_array(path: Path) -> np.ndarray:
    array: np.ndarray
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        # numpy refuses to memory-map a zero-length array; those are read normally.
        array = np.load(path, allow_pickle=False)
    return array


def read_arrays(cls: type[_S], group: str, directory: Path, index: dict[str, str], **extra: Any) -> _S:
    """Load the arrays of `group` into a `cls` (memory-mapped, read-only)."""
    values: dict[str, Any] = dict(extra)
    for name in _array_fields(cls):
        key = f"{group}.{name}"
        if key not in index:
            raise NetworkError(f"{directory / MANIFEST_FILE}: no array {key}; rebuild the network")
        path = directory / index[key]
        if not path.exists():
            raise NetworkError(f"{path}: missing; the network directory is incomplete, rebuild it")
        values[name] = _read_array(path)
    return cls(**values)


def save_manifest(manifest: Manifest, directory: Path) -> None:
    (directory / MANIFEST_FILE).write_bytes(msgspec.json.format(_manifest_encoder.encode(manifest)))


def read_manifest(directory: str | Path) -> Manifest:
    """The manifest of a network directory; NetworkError when absent, unreadable or of another format."""
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise NetworkError(f"{path}: not found; is {directory} a network built by 'maas network build'?")
    raw = path.read_bytes()
    try:
        version = msgspec.json.decode(raw, type=dict).get("format_version")
    except msgspec.DecodeError as exc:
        raise NetworkError(f"{path}: not valid JSON: {exc}") from exc
    if version != FORMAT_VERSION:
        raise NetworkError(
            f"{path}: network format {version}, this program reads format {FORMAT_VERSION}; rebuild the network"
        )
    try:
        return _manifest_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise NetworkError(f"{path}: invalid manifest: {exc}") from exc


def load_network(directory: str | Path) -> Network:
    """Load a built network; arrays are memory-mapped, so loading costs little beyond the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    index = manifest.arrays
    timetable = read_arrays(Timetable, "timetable", directory, index)
    streets = {
        mode: read_arrays(StreetArrays, f"streets.{mode}", directory, index, mode=mode)
        for mode in manifest.counts.streets
    }
    snaps = {
        mode: read_arrays(StopSnap, f"snaps.{mode}", directory, index, mode=mode) for mode in manifest.counts.streets
    }
    sharing = read_arrays(SharingArrays, "sharing", directory, index)
    return Network(manifest=manifest, timetable=timetable, streets=streets, snaps=snaps, sharing=sharing)


def save_network(network: Network, directory: Path) -> None:
    """Write all arrays of `network` and its manifest (whose `arrays` index is filled in here)."""
    directory.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    index.update(write_arrays(network.timetable, "timetable", directory))
    for mode, graph in network.streets.items():
        index.update(write_arrays(graph, f"streets.{mode}", directory))
    for mode, snap in network.snaps.items():
        index.update(write_arrays(snap, f"snaps.{mode}", directory))
    index.update(write_arrays(network.sharing, "sharing", directory))
    save_manifest(msgspec.structs.replace(network.manifest, arrays=index), directory)
