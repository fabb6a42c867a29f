"""Finding places of a built network by name: stops, streets, localities and bike-sharing stations.

The index is made once per network from its own data (GTFS stop names, the walking graph's street
names, GBFS station names) and answers a query with a few binary searches over sorted arrays.
Localities are not in the network directory (it keeps no OSM place nodes): they are derived from
stop names, whose first word names the town or village in German timetables ("Herrenberg
Bahnhof", "Affstätt Kirche"), wherever several differently named stops nearby share it.

Matching folds case and accents (ä = ae, ß = ss, and also ä = a), every query word must be the
prefix of a word of the name; an exact name ranks above a name the query begins, which ranks above
a match of words. Stops rank above localities, bike stations and streets.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from typing import Literal

import msgspec
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from routing.model import Network
from routing.spatial import NearestIndex, haversine_m

PlaceKind = Literal["stop", "locality", "bike_station", "street"]
_KIND_RANK: dict[str, int] = {"stop": 0, "locality": 1, "bike_station": 2, "street": 3}

# Stops of one name this close together are one place (the platforms of a station, the two sides of a road).
SAME_STOP_M = 100.0
# Stops sharing a first word this close (chained) form one locality.
LOCALITY_LINK_M = 2500.0
# A street belongs to the locality of the nearest locality stop within this distance.
STREET_LOCALITY_M = 3000.0

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe", "œ": "oe"})
_WORD = re.compile(r"[^\W_]+")
_IFOPT = re.compile(r"^[a-z]{2}:\d+:\d+(?=:|$)")
# GTFS route types of trains (2 and the extended 100-117): a station named only by its town is its "Bahnhof".
_RAIL = {2, *range(100, 118)}


class Place(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str
    kind: PlaceKind
    lat: float
    lon: float


class StopGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Stops of one name at one place (a station's platforms, a stop of several feeds)."""

    name: str
    label: str  # the name, or "<town> Bahnhof" for a railway station named by its town alone
    stops: list[int]  # timetable stop indices, the first the representative
    lat: float
    lon: float
    aka: list[str] = []  # the other names its stops have in other feeds ("IBM" for "Ehningen IBM")


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold(text: str) -> list[str]:
    """The forms a text is matched in: umlauts spelled out (ä = ae) and accents dropped (ä = a), lower case."""
    lower = unicodedata.normalize("NFC", text).lower()
    forms = [_strip_accents(lower.translate(_UMLAUTS)), _strip_accents(lower).replace("ß", "ss")]
    return list(dict.fromkeys(" ".join(_WORD.findall(f)) for f in forms))


def stop_groups(network: Network) -> list[StopGroup]:
    """The network's stops grouped into places: a parent station with its platforms, and stops of one
    name within SAME_STOP_M of each other (chained)."""
    t = network.timetable
    n = t.n_stops
    lat, lon = np.asarray(t.stop_lat, dtype=np.float64), np.asarray(t.stop_lon, dtype=np.float64)
    names = [str(s) for s in t.stop_name.tolist()]
    parent = np.asarray(t.stop_parent)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    has_parent = np.flatnonzero(parent >= 0)
    rows.append(has_parent)
    cols.append(parent[has_parent].astype(np.int64))
    pairs = NearestIndex(lat, lon).pairs_within(SAME_STOP_M)
    if len(pairs):
        same = np.array([names[a] == names[b] for a, b in pairs.tolist()], dtype=bool)
        rows.append(pairs[same, 0])
        cols.append(pairs[same, 1])
    # Stops of one IFOPT stop place (de:08115:4512:1:2 and de:08115:4512:4:101: platforms of one station).
    first: dict[str, int] = {}
    for stop, stop_id in enumerate(t.stop_id.tolist()):
        ifopt = _IFOPT.match(str(stop_id).split(":", 1)[-1])
        if ifopt is not None:
            known = first.setdefault(ifopt.group(0), stop)
            if known != stop:
                rows.append(np.array([stop]))
                cols.append(np.array([known]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    members: dict[int, list[int]] = defaultdict(list)
    for stop, group in enumerate(label.tolist()):
        members[group].append(stop)
    groups: list[StopGroup] = []
    for stops in members.values():
        located = [s for s in stops if np.isfinite(lat[s]) and np.isfinite(lon[s])]
        if not located:
            continue
        # The station (a stop without parent) represents its platforms and names the place.
        stops = sorted(stops, key=lambda s: (parent[s] >= 0, t.stop_location_type[s] != 1, s))
        # Feeds name one stop place differently: "Bahnhof", "Ehningen Bf" and four times "Ehningen"; one says
        # "IBM" where another says "Ehningen IBM". The name most of its stops have names the place (the
        # station's first among equals), unless another is that name with its town before it; every name
        # finds it.
        counts = Counter(names[s] for s in stops)
        name = max((names[s] for s in stops), key=lambda text: counts[text])
        qualified = [names[s] for s in stops if parent[s] < 0 and names[s].endswith(f" {name}")]
        if qualified:
            name = min(qualified, key=len)
        aka = sorted({names[s] for s in stops} - {name})
        groups.append(
            StopGroup(
                name=name,
                label=f"{name} Bahnhof" if " " not in name and _is_station(network, stops) else name,
                stops=stops,
                lat=float(np.mean(lat[located])),
                lon=float(np.mean(lon[located])),
                aka=aka,
            )
        )
    return groups


def _is_station(network: Network, stops: list[int]) -> bool:
    t = network.timetable
    for stop in stops:
        patterns = t.stop_patterns[t.stop_pattern_offsets[stop] : t.stop_pattern_offsets[stop + 1]]
        if any(int(t.route_type[t.pattern_route[p]]) in _RAIL for p in patterns):
            return True
    return False


def _localities(groups: list[StopGroup]) -> tuple[list[Place], np.ndarray, np.ndarray, np.ndarray]:
    """Localities named by the first word of several differently named stops near each other; also the
    stops behind them (lat, lon, locality index) to assign streets to the nearest."""
    by_word: dict[str, list[StopGroup]] = defaultdict(list)
    for g in groups:
        words = g.name.split()
        first = words[0] if len(words) > 1 else ""
        if len(first) >= 3 and first.replace("-", "").isalpha() and first[0].isupper():
            by_word[first].append(g)
    places: list[Place] = []
    stop_lat: list[float] = []
    stop_lon: list[float] = []
    stop_place: list[int] = []
    for word, members in sorted(by_word.items()):
        lat = np.array([g.lat for g in members])
        lon = np.array([g.lon for g in members])
        pairs = NearestIndex(lat, lon).pairs_within(LOCALITY_LINK_M)
        k = len(members)
        graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(k, k))
        _, label = connected_components(graph, directed=False)
        for cluster in range(int(label.max()) + 1 if k else 0):
            inside = np.flatnonzero(label == cluster)
            if len({members[i].name for i in inside}) < 2:
                continue
            index = len(places)
            places.append(
                Place(
                    id=f"locality:{word}:{index}",
                    label=word,
                    kind="locality",
                    lat=round(float(np.median(lat[inside])), 6),
                    lon=round(float(np.median(lon[inside])), 6),
                )
            )
            stop_lat.extend(lat[inside].tolist())
            stop_lon.extend(lon[inside].tolist())
            stop_place.extend([index] * len(inside))
    return places, np.array(stop_lat), np.array(stop_lon), np.array(stop_place, dtype=np.int32)


def _streets(network: Network, localities: list[Place], near: NearestIndex, near_place: np.ndarray) -> list[Place]:
    """One place per street name and locality, at the point of the street nearest its middle."""
    walk = network.streets.get("walk") or network.streets.get("drive")
    if walk is None or not walk.n_edges:
        return []
    name_idx = np.asarray(walk.name_idx)
    offsets = np.asarray(walk.geometry_offsets)
    g_lat, g_lon = np.asarray(walk.geometry_lat), np.asarray(walk.geometry_lon)
    named = np.flatnonzero(name_idx >= 0)
    # An edge's middle point stands for it.
    middle = (offsets[named] + offsets[named + 1] - 1) // 2
    m_lat, m_lon = g_lat[middle], g_lon[middle]
    found, _ = near.nearest(m_lat, m_lon, STREET_LOCALITY_M)
    locality = np.where(found >= 0, near_place[np.maximum(found, 0)], -1)
    key = name_idx[named].astype(np.int64) * (len(localities) + 1) + (locality + 1)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    names = walk.names
    places: list[Place] = []
    for part in np.split(order, bounds):
        if not len(part):
            continue
        lat, lon = m_lat[part], m_lon[part]
        best = int(np.argmin(haversine_m(lat, lon, np.full(len(part), lat.mean()), np.full(len(part), lon.mean()))))
        name = str(names[name_idx[named[part[0]]]])
        where = int(locality[part[0]])
        label = name if where < 0 else f"{name}, {localities[where].label}"
        places.append(
            Place(
                id=f"street:{int(name_idx[named[part[0]]])}:{where}",
                label=label,
                kind="street",
                lat=round(float(lat[best]), 6),
                lon=round(float(lon[best]), 6),
            )
        )
    return places


class PlaceIndex:
    """The places of one network, searchable by name (build once, query often, from any thread)."""

    def __init__(self, network: Network) -> None:
        t = network.timetable
        groups = stop_groups(network)
        localities, loc_lat, loc_lon, loc_place = _localities(groups)
        places = [
            Place(
                id=f"stop:{t.stop_id[g.stops[0]]}", label=g.label, kind="stop", lat=round(g.lat, 6), lon=round(g.lon, 6)
            )
            for g in groups
        ]
        # A station labelled "<town> Bahnhof" is found by its GTFS name too.
        aliases = {i: [g.name] if g.label != g.name else [] for i, g in enumerate(groups)}
        for i, g in enumerate(groups):
            aliases[i] += g.aka
        places += localities
        s = network.sharing
        for i in range(len(s.station_id)):
            lat, lon = float(s.station_lat[i]), float(s.station_lon[i])
            if np.isfinite(lat) and np.isfinite(lon) and str(s.station_name[i]).strip():
                system = str(s.system_id[int(s.station_system[i])])
                places.append(
                    Place(
                        id=f"bike_station:{system}:{s.station_id[i]}",
                        label=str(s.station_name[i]),
                        kind="bike_station",
                        lat=round(lat, 6),
                        lon=round(lon, 6),
                    )
                )
        places += _streets(network, localities, NearestIndex(loc_lat, loc_lon), loc_place)
        self.places = places
        # The name of a place is the label before ", <locality>"; the locality's word matches too.
        words: list[tuple[str, int]] = []
        fulls: list[tuple[str, int]] = []
        for i, p in enumerate(places):
            other = aliases.get(i, [])
            names = [p.label.split(", ")[0]] if p.kind == "street" else other
            for form in [f for text in [*names, p.label] for f in fold(text)]:
                fulls.append((form, i))
            for form in [f for text in [p.label, *other] for f in fold(text)]:
                for word in set(form.split()):
                    words.append((word, i))
        words = sorted(set(words))
        fulls = sorted(set(fulls))
        self._words = np.array([w for w, _ in words], dtype=str)
        self._word_place = np.array([i for _, i in words], dtype=np.int32)
        self._fulls = np.array([f for f, _ in fulls], dtype=str)
        self._full_place = np.array([i for _, i in fulls], dtype=np.int32)
        self._kind = np.array([_KIND_RANK[p.kind] for p in places], dtype=np.int8)
        self._length = np.array([len(p.label) for p in places], dtype=np.int32)
        self._lat = np.array([p.lat for p in places])
        self._lon = np.array([p.lon for p in places])

    def __len__(self) -> int:
        return len(self.places)

    @staticmethod
    def _prefixed(sorted_text: np.ndarray, prefix: str) -> tuple[int, int]:
        lo = int(np.searchsorted(sorted_text, prefix, side="left"))
        hi = int(np.searchsorted(sorted_text, prefix + "\U0010ffff", side="left"))
        return lo, hi

    def search(self, query: str, limit: int = 10, near: tuple[float, float] | None = None) -> list[Place]:
        """The best `limit` places whose name matches every word of `query`, nearest first among equals
        when `near` (lat, lon) is given."""
        candidates: np.ndarray | None = None
        # A place matches when every word of some fold of the query begins one of its words.
        for form in fold(query):
            words = form.split()
            if not words:
                continue
            found: np.ndarray | None = None
            for word in words:
                lo, hi = self._prefixed(self._words, word)
                hits = np.unique(self._word_place[lo:hi])
                found = hits if found is None else np.intersect1d(found, hits, assume_unique=True)
                if not len(found):
                    break
            if found is not None:
                candidates = found if candidates is None else np.union1d(candidates, found)
        if candidates is None or not len(candidates):
            return []
        match = np.full(len(self.places), 2, dtype=np.int8)
        for form in fold(query):
            lo, hi = self._prefixed(self._fulls, form)
            match[self._full_place[lo:hi]] = np.minimum(match[self._full_place[lo:hi]], 1)
            exact = self._full_place[lo:hi][self._fulls[lo:hi] == form]
            match[exact] = 0
        if near is not None:
            second = haversine_m(
                np.full(len(candidates), near[0]),
                np.full(len(candidates), near[1]),
                self._lat[candidates],
                self._lon[candidates],
            )
        else:
            second = self._length[candidates].astype(np.float64)
        # lexsort sorts by the last key first: match class, then kind, then distance or label length.
        order = np.lexsort((candidates, second, self._kind[candidates], match[candidates]))
        return [self.places[int(i)] for i in candidates[order[:limit]]]
