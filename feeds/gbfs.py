"""GBFS v2.2, v2.3 and v3.0 shared-mobility feeds: read from a directory or over http(s), validated.

A feed is found through its discovery file (`gbfs.json`) or a v3 `manifest.json` listing several
systems. In a directory, the URLs inside the discovery file are not followed (they point to the
web or to `file:` paths of another machine): each file is taken from next to the discovery file
by its feed name, `<name>.json`.

What is unusable raises GbfsError naming the file and the JSON path: invalid JSON, a value of the
wrong type, a missing system_information. What real feeds get wrong but can still be read is a
warning finding in the system's report: null coordinates (the record is skipped), -1 counts
(read as unknown), 0/1 for booleans, numbers written as strings, a zone without geometry, a
missing optional file.
"""

from __future__ import annotations

import collections
import difflib
import http.client
import math
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from pathlib import Path
from typing import Any

import msgspec

from feeds.model import FeedError, Finding, ValidationReport

# A feed file larger than this is refused unread; the largest real ones are a few MB of zones.
MAX_FILE_BYTES = 20 * 1024**2
HTTP_TIMEOUT_S = 30.0
# Findings of one kind in one file beyond this many are summarised in one line.
MAX_FINDINGS_PER_KIND = 20

SUPPORTED_VERSIONS = ("2.2", "2.3", "3.0")

_FORM_FACTORS = frozenset(
    {"bicycle", "cargo_bicycle", "car", "moped", "scooter", "scooter_standing", "scooter_seated", "other"}
)
_PROPULSION_TYPES = frozenset(
    {
        "human",
        "electric_assist",
        "electric",
        "combustion",
        "combustion_diesel",
        "hybrid",
        "plug_in_hybrid",
        "hydrogen_fuel_cell",
    }
)
# v3 renamed free_bike_status to vehicle_status; a feed lists one of them.
_VEHICLE_FILES = ("vehicle_status", "free_bike_status")


class GbfsError(FeedError):
    """A GBFS feed that cannot be used at all; the message names the file and the JSON path."""


class SharingStation(msgspec.Struct, frozen=True, kw_only=True):
    """A station of station_information joined with its station_status (None: not reported)."""

    station_id: str
    name: str
    lat: float
    lon: float
    capacity: int | None
    vehicles_available: int | None
    docks_available: int | None
    is_renting: bool
    is_returning: bool


class SharingVehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle of free_bike_status / vehicle_status; without coordinates it stands at `station_id`."""

    vehicle_id: str
    lat: float | None
    lon: float | None
    station_id: str | None
    vehicle_type_id: str | None
    is_reserved: bool
    is_disabled: bool
    current_range_m: float | None


class VehicleType(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle type; form_factor and propulsion_type are GBFS's words as given."""

    vehicle_type_id: str
    form_factor: str
    propulsion_type: str
    name: str | None
    max_range_m: float | None


class GeofencingZone(msgspec.Struct, frozen=True, kw_only=True):
    """A zone: GeoJSON MultiPolygon (lon, lat order) or None when the feed gives none; rules as given."""

    name: str | None
    geometry: dict[str, Any] | None
    rules: list[dict[str, Any]]


class SharingSystem(msgspec.Struct, frozen=True, kw_only=True):
    """One sharing system as read; `report` holds the warnings about it."""

    system_id: str
    name: str
    version: str
    timezone: str | None
    source: str
    vehicle_types: list[VehicleType]
    stations: list[SharingStation]
    vehicles: list[SharingVehicle]
    geofencing_zones: list[GeofencingZone]
    report: ValidationReport


def load_gbfs(source: str | Path) -> list[SharingSystem]:
    """Every system of a feed: a directory, or a path or http(s) URL of gbfs.json or manifest.json.

    A manifest gives one system per dataset, a discovery file (or a bare directory) gives one.
    Raises GbfsError when the feed cannot be used.
    """
    text = str(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower() if isinstance(source, str) else ""
    if scheme in ("http", "https"):
        return _load_entry(_Web(text), text)
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(text).path)) if scheme == "file" else Path(source)
    if not path.exists():
        raise GbfsError(f"{path}: no such file or directory")
    if path.is_file():
        return _load_entry(_Directory(path.parent), str(path))
    for entry in ("gbfs.json", "manifest.json"):
        if (path / entry).is_file():
            return _load_entry(_Directory(path), str(path / entry))
    if (path / "system_information.json").is_file():
        return [_SystemReader(_Directory(path), None, str(path)).read()]
    raise GbfsError(f"{path}: no gbfs.json, manifest.json or system_information.json; not a GBFS feed directory")


# --------------------------------------------------------------------------------------------
# Where the files come from


class _Missing(Exception):
    """A file that is not there (no such file, an HTTP error status); the reason is the message."""


class _Directory:
    """Files of a feed copied to a directory, found by name next to the discovery file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fallback_id(self) -> str:
        return self.root.name

    def locate(self, name: str, url: str | None) -> str:
        candidates = [self.root / f"{name}.json"]
        if url:
            base = Path(urllib.parse.urlsplit(url).path).name
            if base:
                candidates.append(self.root / base)
        for candidate in candidates:
            if candidate.is_file():
                return str(candidate)
        return str(candidates[0])

    def locate_system(self, url: str, system_id: str | None) -> tuple[_Directory, str]:
        """A manifest's gbfs.json in a copy: the longest tail of its URL path under root, else `<system_id>/`."""
        parts = [p for p in urllib.parse.urlsplit(url).path.split("/") if p]
        tails = [parts[k:] for k in range(len(parts) - 1)]
        if system_id:
            tails.append([system_id, "gbfs.json"])
        for tail in tails:
            if any(p in (".", "..") for p in tail):
                continue
            candidate = self.root.joinpath(*tail)
            if candidate.is_file():
                return _Directory(candidate.parent), str(candidate)
        raise GbfsError(
            f"{self.root / 'manifest.json'}: the gbfs.json of {system_id or url!r} ({url}) is not"
            f" in {self.root} (looked for the end of its URL path and for <system_id>/gbfs.json)"
        )

    def fetch(self, where: str) -> bytes:
        path = Path(where)
        if not path.is_file():
            raise _Missing("no such file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise GbfsError(f"{path}: {_mb(size)}, more than the limit of {_mb(MAX_FILE_BYTES)}; refused unread")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise GbfsError(f"{path}: cannot be read: {exc}") from exc


class _Web:
    """Files of a feed over http(s), following the discovery URLs."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def fallback_id(self) -> str:
        url = urllib.parse.urlsplit(self.base_url)
        parts = [p for p in url.path.split("/") if p]
        return parts[-2] if len(parts) >= 2 else url.hostname or "gbfs"

    def locate(self, name: str, url: str | None) -> str:
        if url:
            absolute = urllib.parse.urljoin(self.base_url, url)
            if urllib.parse.urlsplit(absolute).scheme.lower() in ("http", "https"):
                return absolute
        # A `file:` URL from a served copy of a feed: never read local files on a remote's word.
        return urllib.parse.urljoin(self.base_url, f"{name}.json")

    def locate_system(self, url: str, system_id: str | None) -> tuple[_Web, str]:
        absolute = urllib.parse.urljoin(self.base_url, url)
        if urllib.parse.urlsplit(absolute).scheme.lower() not in ("http", "https"):
            raise GbfsError(f"{self.base_url}: dataset {system_id!r} has a non-http URL {url!r}")
        return _Web(absolute), absolute

    def fetch(self, where: str) -> bytes:
        request = urllib.request.Request(where, headers={"User-Agent": "maas-gbfs/0.1", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > MAX_FILE_BYTES:
                    raise GbfsError(
                        f"{where}: announces {_mb(int(length))}, more than the limit of"
                        f" {_mb(MAX_FILE_BYTES)}; refused unread"
                    )
                data: bytes = response.read(MAX_FILE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _Missing(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise GbfsError(f"{where}: cannot be fetched: {reason}") from exc
        if len(data) > MAX_FILE_BYTES:
            raise GbfsError(f"{where}: more than the limit of {_mb(MAX_FILE_BYTES)}; refused")
        return data


_Place = _Directory | _Web


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.1f} MB"


# --------------------------------------------------------------------------------------------
# Decoding


class _Envelope(msgspec.Struct):
    """What every GBFS file shares; `data` is converted field by field to name bad values exactly."""

    data: dict[str, Any]
    version: str | float | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _decode(raw: bytes, where: str) -> _Envelope:
    try:
        return _ENVELOPE.decode(raw)
    except msgspec.ValidationError as exc:
        raise GbfsError(f"{where}: not a GBFS file: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise GbfsError(f"{where}: invalid JSON: {exc}") from exc


def _version_text(value: str | float | None) -> str | None:
    if value is None:
        return None
    return value.strip() if isinstance(value, str) else repr(value)


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def _load_entry(place: _Place, where: str) -> list[SharingSystem]:
    """The systems behind a discovery file or a manifest, told apart by their content."""
    try:
        raw = place.fetch(where)
    except _Missing as exc:
        raise GbfsError(f"{where}: {exc}") from None
    envelope = _decode(raw, where)
    if "datasets" in envelope.data:
        return _load_manifest(place, where, envelope)
    return [_SystemReader(place, (where, envelope), where).read()]


def _load_manifest(place: _Place, where: str, envelope: _Envelope) -> list[SharingSystem]:
    datasets = envelope.data["datasets"]
    if not isinstance(datasets, list) or not datasets:
        raise GbfsError(f"{where} [data.datasets]: the manifest lists no datasets")
    systems = []
    for i, dataset in enumerate(datasets):
        path = f"data.datasets[{i}]"
        if not isinstance(dataset, dict) or not isinstance(dataset.get("versions"), list):
            raise GbfsError(f"{where} [{path}]: expected an object with a `versions` list")
        system_id = dataset.get("system_id") if isinstance(dataset.get("system_id"), str) else None
        offered = []
        for k, entry in enumerate(dataset["versions"]):
            if not (isinstance(entry, dict) and isinstance(entry.get("url"), str)):
                raise GbfsError(f"{where} [{path}.versions[{k}]]: expected an object with a `url`")
            version = _version_text(entry.get("version")) or ""
            offered.append(((version in SUPPORTED_VERSIONS, _version_key(version)), entry["url"]))
        if not offered:
            raise GbfsError(f"{where} [{path}.versions]: the dataset offers no version")
        # The newest version we support; failing that the newest offered, read with a warning.
        url = max(offered, key=lambda o: o[0])[1]
        sub_place, sub_where = place.locate_system(url, system_id)
        try:
            raw = sub_place.fetch(sub_where)
        except _Missing as exc:
            raise GbfsError(f"{sub_where} (listed in {where} [{path}]): {exc}") from None
        reader = _SystemReader(sub_place, (sub_where, _decode(raw, sub_where)), sub_where)
        systems.append(reader.read(expected_system_id=system_id))
    return systems


# --------------------------------------------------------------------------------------------
# One system


class _Findings:
    """Warnings of one system, summarising a kind past MAX_FINDINGS_PER_KIND per file in one line."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def warn(self, code: str, file: str, message: str, field: str | None = None) -> None:
        self._counts[code, file] += 1
        if self._counts[code, file] <= MAX_FINDINGS_PER_KIND:
            self.items.append(Finding(severity="warning", code=code, file=file, field=field, message=message))

    def finish(self) -> list[Finding]:
        for (code, file), n in self._counts.items():
            if n > MAX_FINDINGS_PER_KIND:
                self.items.append(
                    Finding(
                        severity="warning",
                        code=code,
                        file=file,
                        message=f"{n - MAX_FINDINGS_PER_KIND} more like this",
                    )
                )
        return self.items


class _SystemReader:
    """Reads the files of one system; `discovery` is (location, decoded gbfs.json) or None."""

    def __init__(self, place: _Place, discovery: tuple[str, _Envelope] | None, source: str) -> None:
        self.place = place
        self.source = source
        self.findings = _Findings()
        self.where: dict[str, str] = {}  # file label -> path or URL, for error messages
        self.languages: list[str] = []
        self.feeds: dict[str, str] | None = None
        self.version = ""
        self._discovery_version: str | None = None
        if discovery is not None:
            where, envelope = discovery
            self.where["gbfs.json"] = where
            self.feeds = self._discovery_feeds(envelope)
            self._discovery_version = _version_text(envelope.version)

    # ---- discovery and files

    def _discovery_feeds(self, envelope: _Envelope) -> dict[str, str]:
        data = envelope.data
        feeds, path = data.get("feeds"), "data.feeds"
        if feeds is None:
            for language, block in data.items():
                if isinstance(block, dict) and "feeds" in block:
                    feeds, path = block["feeds"], f"data.{language}.feeds"
                    self.languages.append(language)
                    break
        if not isinstance(feeds, list) or not feeds:
            raise self._error("gbfs.json", path, "no feeds listed (v2: data.<language>.feeds, v3: data.feeds)")
        urls: dict[str, str] = {}
        for i, feed in enumerate(feeds):
            if not (isinstance(feed, dict) and isinstance(feed.get("name"), str) and isinstance(feed.get("url"), str)):
                raise self._error("gbfs.json", f"{path}[{i}]", "expected an object with name and url")
            urls.setdefault(feed["name"], feed["url"])
        return urls

    def _read(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        """The `data` of a file; None when the feed does not have it (a warning if it lists it)."""
        envelope = self._read_envelope(name, required=required)
        return None if envelope is None else envelope.data

    def _read_envelope(self, name: str, *, required: bool = False) -> _Envelope | None:
        file = f"{name}.json"
        listed = self.feeds is None or name in self.feeds
        if not listed and not required:
            return None
        url = self.feeds.get(name) if self.feeds is not None else None
        where = self.place.locate(name, url)
        self.where[file] = where
        try:
            raw = self.place.fetch(where)
        except _Missing as exc:
            if required:
                raise GbfsError(f"{where}: {exc}; {file} is required") from None
            if self.feeds is not None:
                self.findings.warn("gbfs_missing_file", file, f"listed in gbfs.json but missing ({exc}); left out")
            return None
        envelope = _decode(raw, where)
        version = _version_text(envelope.version)
        if version and self.version and version != self.version:
            self.findings.warn(
                "gbfs_version_mismatch",
                file,
                f"file says version {version}, the feed {self.version}",
                field="version",
            )
        return envelope

    def _error(self, file: str, path: str, message: str) -> GbfsError:
        return GbfsError(f"{self.where.get(file, file)} [{path}]: {message}")

    # ---- values

    def _number(self, value: Any, file: str, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise self._error(file, path, f"expected a number, got {value!r}") from None
            if math.isfinite(number):
                self.findings.warn("gbfs_number_as_string", file, f"number written as a string {value!r}", path)
                return number
        raise self._error(file, path, f"expected a number, got {value!r}")

    def _count(self, value: Any, file: str, path: str) -> int | None:
        """A non-negative integer; a negative one (car sharing's -1) is read as unknown."""
        number = self._number(value, file, path)
        if number is None:
            return None
        if not number.is_integer():
            raise self._error(file, path, f"expected an integer, got {value!r}")
        if number < 0:
            self.findings.warn("gbfs_negative_count", file, f"count {value!r} read as unknown", path)
            return None
        return int(number)

    def _bool(self, value: Any, file: str, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        # GBFS 1.0 wrote booleans as 1/0; later versions require true/false.
        if isinstance(value, int) and value in (0, 1):
            if _version_key(self.version) >= (1, 1):
                self.findings.warn("gbfs_bool_as_int", file, f"boolean written as {value}", path)
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            self.findings.warn("gbfs_bool_as_string", file, f"boolean written as {value!r}", path)
            return value.strip().lower() == "true"
        raise self._error(file, path, f"expected true or false, got {value!r}")

    def _id(self, value: Any, file: str, path: str) -> str | None:
        """An id as text; None when absent or empty."""
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int) and not isinstance(value, bool):
            self.findings.warn("gbfs_id_not_string", file, f"id written as a number {value}", path)
            return str(value)
        raise self._error(file, path, f"expected an id (a string), got {value!r}")

    def _text(self, value: Any, file: str, path: str) -> str | None:
        """A plain string (v2) or the best language of a localized one (v3: [{text, language}])."""
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if not isinstance(value, list):
            raise self._error(file, path, f"expected a string or localized strings, got {value!r}")
        texts: dict[str, str] = {}
        for i, entry in enumerate(value):
            if not (isinstance(entry, dict) and isinstance(entry.get("text"), str)):
                raise self._error(file, f"{path}[{i}]", "expected an object with text and language")
            language = entry.get("language")
            texts.setdefault(language.lower() if isinstance(language, str) else "", entry["text"])
        for wanted in self.languages:
            wanted = wanted.lower()
            for language, text in texts.items():
                if language == wanted or language.split("-")[0] == wanted.split("-")[0]:
                    return text.strip() or None
        return next(iter(texts.values()), "").strip() or None

    def _records(self, data: dict[str, Any], keys: tuple[str, ...], file: str) -> tuple[str, list[dict[str, Any]]]:
        """The list of objects under the first of `keys` present, and its JSON path."""
        for key in keys:
            if key in data:
                records = data[key]
                if not isinstance(records, list):
                    raise self._error(file, f"data.{key}", f"expected a list, got {records!r:.60}")
                for i, record in enumerate(records):
                    if not isinstance(record, dict):
                        raise self._error(file, f"data.{key}[{i}]", "expected an object")
                return f"data.{key}", records
        raise self._error(file, f"data.{keys[0]}", "missing")

    # ---- files

    def read(self, expected_system_id: str | None = None) -> SharingSystem:
        system_id, name, timezone = self._system_information(expected_system_id)
        vehicle_types = self._vehicle_types()
        stations, station_ids = self._stations()
        vehicles = self._vehicles(station_ids, {t.vehicle_type_id for t in vehicle_types})
        zones = self._geofencing_zones()
        report = ValidationReport(feed_id=system_id, source=self.source, findings=self.findings.finish())
        return SharingSystem(
            system_id=system_id,
            name=name,
            version=self.version,
            timezone=timezone,
            source=self.source,
            vehicle_types=vehicle_types,
            stations=stations,
            vehicles=vehicles,
            geofencing_zones=zones,
            report=report,
        )

    def _system_information(self, expected_system_id: str | None) -> tuple[str, str, str | None]:
        file = "system_information.json"
        # Set before reading, so that the file's own version is compared with the discovery's.
        self.version = self._discovery_version or ""
        envelope = self._read_envelope("system_information", required=True)
        assert envelope is not None  # required=True raises instead
        self._set_version(self.version or _version_text(envelope.version))
        data = envelope.data
        languages = data.get("languages", data.get("language"))
        if isinstance(languages, str):
            languages = [languages]
        if isinstance(languages, list):
            self.languages = [x for x in languages if isinstance(x, str)] + self.languages
        system_id = self._id(data.get("system_id"), file, "data.system_id")
        if system_id is None:
            system_id = self.place.fallback_id()
            self.findings.warn("gbfs_missing_system_id", file, f"no system_id; using {system_id!r}", "data.system_id")
        if expected_system_id and expected_system_id != system_id:
            self.findings.warn(
                "gbfs_system_id_mismatch",
                file,
                f"system_id {system_id!r}, but the manifest lists it as {expected_system_id!r}",
                "data.system_id",
            )
        name = self._text(data.get("name"), file, "data.name")
        if name is None:
            name = system_id
            self.findings.warn("gbfs_missing_name", file, "no name; using the system_id", "data.name")
        timezone = data.get("timezone")
        if timezone is None:
            self.findings.warn("gbfs_missing_timezone", file, "no timezone", "data.timezone")
        elif not isinstance(timezone, str):
            raise self._error(file, "data.timezone", f"expected a time zone name, got {timezone!r}")
        else:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder
                self.findings.warn(
                    "gbfs_unknown_timezone",
                    file,
                    f"unknown time zone {timezone!r}; left out",
                    "data.timezone",
                )
                timezone = None
        return system_id, name, timezone

    def _set_version(self, version: str | None) -> None:
        file = "gbfs.json" if self.feeds is not None else "system_information.json"
        if version is None:
            # The field exists since GBFS 1.1, so a feed without it is 1.0 by the specification.
            version = "1.0"
            self.findings.warn(
                "gbfs_version_missing",
                file,
                "no version given; read as GBFS 1.0, with the rules of 2.x",
                "version",
            )
        elif version not in SUPPORTED_VERSIONS:
            self.findings.warn(
                "gbfs_version_unsupported",
                file,
                f"version {version!r} is not one of {', '.join(SUPPORTED_VERSIONS)};"
                " read with the rules of the nearest",
                "version",
            )
        self.version = version

    def _vehicle_types(self) -> list[VehicleType]:
        file = "vehicle_types.json"
        data = self._read("vehicle_types")
        if data is None:
            return []
        base, records = self._records(data, ("vehicle_types",), file)
        types: dict[str, VehicleType] = {}
        for i, rec in enumerate(records):
            path = f"{base}[{i}]"
            type_id = self._id(rec.get("vehicle_type_id"), file, f"{path}.vehicle_type_id")
            form_factor = self._id(rec.get("form_factor"), file, f"{path}.form_factor")
            propulsion = self._id(rec.get("propulsion_type"), file, f"{path}.propulsion_type")
            if type_id is None or form_factor is None or propulsion is None:
                self.findings.warn(
                    "gbfs_missing_field",
                    file,
                    "vehicle type without vehicle_type_id, form_factor or propulsion_type; skipped",
                    path,
                )
                continue
            if type_id in types:
                self.findings.warn("gbfs_duplicate_id", file, f"vehicle type {type_id!r} again; skipped", path)
                continue
            if form_factor not in _FORM_FACTORS:
                self.findings.warn(
                    "gbfs_unknown_value",
                    file,
                    f"unknown form_factor {form_factor!r}",
                    f"{path}.form_factor",
                )
            if propulsion not in _PROPULSION_TYPES:
                self.findings.warn(
                    "gbfs_unknown_value",
                    file,
                    f"unknown propulsion_type {propulsion!r}",
                    f"{path}.propulsion_type",
                )
            max_range_m = self._number(rec.get("max_range_meters"), file, f"{path}.max_range_meters")
            if max_range_m is not None and max_range_m < 0:
                self.findings.warn(
                    "gbfs_negative_count",
                    file,
                    f"max_range_meters {max_range_m} read as unknown",
                    f"{path}.max_range_meters",
                )
                max_range_m = None
            if max_range_m is None and propulsion != "human":
                # Required for motorised vehicles; a misspelt key is the usual cause.
                close = difflib.get_close_matches("max_range_meters", [str(k) for k in rec], n=1)
                hint = f" (found {close[0]!r}, misspelt?)" if close else ""
                self.findings.warn(
                    "gbfs_missing_max_range",
                    file,
                    f"vehicle type {type_id!r} is {propulsion} but has no max_range_meters{hint}",
                    f"{path}.max_range_meters",
                )
            types[type_id] = VehicleType(
                vehicle_type_id=type_id,
                form_factor=form_factor,
                propulsion_type=propulsion,
                name=self._text(rec.get("name"), file, f"{path}.name"),
                max_range_m=max_range_m,
            )
        return list(types.values())

    def _stations(self) -> tuple[list[SharingStation], set[str]]:
        """Stations with coordinates, joined with their status; and the ids of all stations given."""
        file = "station_information.json"
        info = self._read("station_information")
        if info is None:
            return [], set()
        base, records = self._records(info, ("stations",), file)
        status = self._station_status()
        if status is None and not (self.feeds is not None and "station_status" in self.feeds):
            # (When listed but missing, _read has already said so.)
            self.findings.warn(
                "gbfs_missing_file",
                "station_status.json",
                "no station status; stations are read as neither renting nor returning",
            )
        known: set[str] = set()
        stations = []
        for i, rec in enumerate(records):
            path = f"{base}[{i}]"
            station_id = self._id(rec.get("station_id"), file, f"{path}.station_id")
            if station_id is None:
                self.findings.warn(
                    "gbfs_missing_station_id",
                    file,
                    "station without station_id; skipped",
                    f"{path}.station_id",
                )
                continue
            if station_id in known:
                self.findings.warn("gbfs_duplicate_id", file, f"station {station_id!r} again; skipped", path)
                continue
            known.add(station_id)
            lat = self._number(rec.get("lat"), file, f"{path}.lat")
            lon = self._number(rec.get("lon"), file, f"{path}.lon")
            if lat is None or lon is None:
                self.findings.warn(
                    "gbfs_missing_coordinates",
                    file,
                    f"station {station_id!r} has no coordinates; skipped",
                    f"{path}.lat",
                )
                continue
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                self.findings.warn(
                    "gbfs_coordinates_out_of_range",
                    file,
                    f"station {station_id!r} at ({lat}, {lon}) is off the globe; skipped",
                    f"{path}.lat",
                )
                continue
            name = self._text(rec.get("name"), file, f"{path}.name")
            if name is None:
                self.findings.warn(
                    "gbfs_missing_name",
                    file,
                    f"station {station_id!r} has no name; using its id",
                    f"{path}.name",
                )
                name = station_id
            capacity = self._count(rec.get("capacity"), file, f"{path}.capacity")
            stations.append(self._station(station_id, name, lat, lon, capacity, status))
        if status is not None:
            for station_id, (path, _) in status.items():
                if station_id not in known:
                    self.findings.warn(
                        "gbfs_unknown_station",
                        "station_status.json",
                        f"status of station {station_id!r}, which station_information does not have",
                        f"{path}.station_id",
                    )
        return stations, known

    def _station_status(self) -> dict[str, tuple[str, dict[str, Any]]] | None:
        """Status records by station_id, with their JSON paths; None when the feed has none."""
        file = "station_status.json"
        data = self._read("station_status")
        if data is None:
            return None
        base, records = self._records(data, ("stations",), file)
        by_id: dict[str, tuple[str, dict[str, Any]]] = {}
        for i, rec in enumerate(records):
            path = f"{base}[{i}]"
            station_id = self._id(rec.get("station_id"), file, f"{path}.station_id")
            if station_id is None:
                self.findings.warn(
                    "gbfs_missing_station_id",
                    file,
                    "status without station_id; skipped",
                    f"{path}.station_id",
                )
            elif station_id in by_id:
                self.findings.warn("gbfs_duplicate_id", file, f"status of station {station_id!r} again; skipped", path)
            else:
                by_id[station_id] = (path, rec)
        return by_id

    def _station(
        self,
        station_id: str,
        name: str,
        lat: float,
        lon: float,
        capacity: int | None,
        status: dict[str, tuple[str, dict[str, Any]]] | None,
    ) -> SharingStation:
        file = "station_status.json"
        vehicles = docks = None
        renting = returning = False
        entry = status.get(station_id) if status is not None else None
        if status is not None and entry is None:
            self.findings.warn(
                "gbfs_station_without_status",
                file,
                f"station {station_id!r} has no status; read as neither renting nor returning",
            )
        if entry is not None:
            path, rec = entry
            # v3 renamed num_bikes_available; a feed between versions may use either.
            key = "num_vehicles_available" if "num_vehicles_available" in rec else "num_bikes_available"
            if key not in rec:
                self.findings.warn("gbfs_missing_field", file, f"station {station_id!r}: no {key}", f"{path}.{key}")
            vehicles = self._count(rec.get(key), file, f"{path}.{key}")
            docks = self._count(rec.get("num_docks_available"), file, f"{path}.num_docks_available")
            # Without a word on renting or returning, assume the station does not; a station listed
            # in station_information is on the street unless it says otherwise.
            flags: dict[str, bool] = {}
            for flag, default in (("is_installed", True), ("is_renting", False), ("is_returning", False)):
                value = self._bool(rec.get(flag), file, f"{path}.{flag}")
                if value is None:
                    self.findings.warn(
                        "gbfs_missing_field",
                        file,
                        f"station {station_id!r}: no {flag}; read as {str(default).lower()}",
                        f"{path}.{flag}",
                    )
                    value = default
                flags[flag] = value
            # A station that is not installed can neither rent nor take back.
            renting = flags["is_installed"] and flags["is_renting"]
            returning = flags["is_installed"] and flags["is_returning"]
            if capacity is not None and vehicles is not None and docks is not None and vehicles + docks > capacity:
                self.findings.warn(
                    "gbfs_capacity_exceeded",
                    file,
                    f"station {station_id!r}: {vehicles} vehicles and {docks} docks available,"
                    f" but a capacity of {capacity}",
                    path,
                )
        return SharingStation(
            station_id=station_id,
            name=name,
            lat=lat,
            lon=lon,
            capacity=capacity,
            vehicles_available=vehicles,
            docks_available=docks,
            is_renting=renting,
            is_returning=returning,
        )

    def _vehicles(self, station_ids: set[str], type_ids: set[str]) -> list[SharingVehicle]:
        if self.feeds is not None:
            present = [n for n in _VEHICLE_FILES if n in self.feeds]
        else:  # a directory without gbfs.json: whichever file is there
            present = [n for n in _VEHICLE_FILES if Path(self.place.locate(n, None)).is_file()]
        if not present:
            return []
        name = present[0]
        file = f"{name}.json"
        data = self._read(name)
        if data is None:
            return []
        base, records = self._records(data, ("vehicles", "bikes"), file)
        vehicles: dict[str, SharingVehicle] = {}
        for i, rec in enumerate(records):
            path = f"{base}[{i}]"
            id_key = "vehicle_id" if "vehicle_id" in rec else "bike_id"
            vehicle_id = self._id(rec.get(id_key), file, f"{path}.{id_key}")
            if vehicle_id is None:
                self.findings.warn("gbfs_missing_field", file, f"vehicle without {id_key}; skipped", f"{path}.{id_key}")
                continue
            if vehicle_id in vehicles:
                self.findings.warn("gbfs_duplicate_id", file, f"vehicle {vehicle_id!r} again; skipped", path)
                continue
            lat = self._number(rec.get("lat"), file, f"{path}.lat")
            lon = self._number(rec.get("lon"), file, f"{path}.lon")
            station_id = self._id(rec.get("station_id"), file, f"{path}.station_id")
            if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
                self.findings.warn(
                    "gbfs_coordinates_out_of_range",
                    file,
                    f"vehicle {vehicle_id!r} at ({lat}, {lon}) is off the globe",
                    f"{path}.lat",
                )
                lat = lon = None
            if lat is None or lon is None:
                lat = lon = None
                if station_id is None:
                    self.findings.warn(
                        "gbfs_missing_coordinates",
                        file,
                        f"vehicle {vehicle_id!r} has neither coordinates nor a station; skipped",
                        f"{path}.lat",
                    )
                    continue
            if station_id is not None and station_id not in station_ids:
                self.findings.warn(
                    "gbfs_unknown_station",
                    file,
                    f"vehicle {vehicle_id!r} at station {station_id!r}, which station_information does not have",
                    f"{path}.station_id",
                )
            type_id = self._id(rec.get("vehicle_type_id"), file, f"{path}.vehicle_type_id")
            if type_id is not None and type_id not in type_ids:
                self.findings.warn(
                    "gbfs_unknown_vehicle_type",
                    file,
                    f"vehicle {vehicle_id!r} of type {type_id!r}, which vehicle_types does not have",
                    f"{path}.vehicle_type_id",
                )
            flags: dict[str, bool | None] = {}
            for flag in ("is_reserved", "is_disabled"):
                flags[flag] = self._bool(rec.get(flag), file, f"{path}.{flag}")
                if flags[flag] is None:
                    self.findings.warn(
                        "gbfs_missing_field",
                        file,
                        f"vehicle {vehicle_id!r}: no {flag}; read as false",
                        f"{path}.{flag}",
                    )
            range_path = f"{path}.current_range_meters"
            range_m = self._number(rec.get("current_range_meters"), file, range_path)
            if range_m is not None and range_m < 0:
                self.findings.warn(
                    "gbfs_negative_count",
                    file,
                    f"current_range_meters {range_m} read as unknown",
                    range_path,
                )
                range_m = None
            vehicles[vehicle_id] = SharingVehicle(
                vehicle_id=vehicle_id,
                lat=lat,
                lon=lon,
                station_id=station_id,
                vehicle_type_id=type_id,
                is_reserved=bool(flags["is_reserved"]),
                is_disabled=bool(flags["is_disabled"]),
                current_range_m=range_m,
            )
        return list(vehicles.values())

    def _geofencing_zones(self) -> list[GeofencingZone]:
        """Every zone of the file, those without a usable geometry kept with geometry None."""
        file = "geofencing_zones.json"
        data = self._read("geofencing_zones")
        if data is None:
            return []
        collection = data.get("geofencing_zones")
        if not isinstance(collection, dict):
            raise self._error(file, "data.geofencing_zones", "expected a GeoJSON FeatureCollection")
        features = collection.get("features")
        base = "data.geofencing_zones.features"
        if not (isinstance(features, list) and all(isinstance(f, dict) for f in features)):
            raise self._error(file, base, "expected a list of GeoJSON features")
        zones = []
        for i, feature in enumerate(features):
            path = f"{base}[{i}]"
            properties = feature.get("properties") or {}
            if not isinstance(properties, dict):
                raise self._error(file, f"{path}.properties", "expected an object")
            name = self._text(properties.get("name"), file, f"{path}.properties.name")
            rules = properties.get("rules") or []
            if not (isinstance(rules, list) and all(isinstance(r, dict) for r in rules)):
                raise self._error(file, f"{path}.properties.rules", "expected a list of objects")
            zones.append(
                GeofencingZone(
                    name=name,
                    geometry=self._zone_geometry(feature.get("geometry"), name, path),
                    rules=rules,
                )
            )
        return zones

    def _zone_geometry(self, geometry: Any, name: str | None, path: str) -> dict[str, Any] | None:
        file = "geofencing_zones.json"
        label = f"zone {name!r}" if name else "zone"
        if geometry is None:
            self.findings.warn(
                "gbfs_null_geometry",
                file,
                f"{label} has no geometry; it restricts nothing",
                f"{path}.geometry",
            )
            return None
        if not isinstance(geometry, dict) or not isinstance(geometry.get("coordinates"), list):
            raise self._error(file, f"{path}.geometry", "expected a GeoJSON geometry object")
        kind = geometry.get("type")
        if kind == "MultiPolygon":
            return geometry
        if kind == "Polygon":
            # GBFS requires MultiPolygon; a lone polygon is the same area one level shallower.
            self.findings.warn(
                "gbfs_geometry_not_multipolygon",
                file,
                f"{label} is a Polygon; read as a MultiPolygon",
                f"{path}.geometry.type",
            )
            return {"type": "MultiPolygon", "coordinates": [geometry["coordinates"]]}
        self.findings.warn(
            "gbfs_geometry_not_multipolygon",
            file,
            f"{label} is a {kind!r}, not an area; left without geometry",
            f"{path}.geometry.type",
        )
        return None
