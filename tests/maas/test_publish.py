"""Agencies upload, validate and publish GTFS feeds over HTTP; riders plan on the network built from them.

The module runs its own app on its own database (same server), so that the networks it publishes
and activates do not change what the other test modules' app serves.

Publishing builds a network in a child process (10-30 s each), so the module's history of networks
is built once, by a chain of module-scoped fixtures, each a stage on top of the one before:

    configured    the network of MAAS_NETWORK_DIR, active before anything is published
    published     vvs publishes the S1 (network `with_s1`), rbs the bus 764 on top (`with_bus`)
    failed        a second S1 version fails to publish (the OSM file is gone); `with_bus` serves on
    rolled        operators roll back to the configured network (a second app process follows), then
                  forward to `with_s1`
    republished   the failed S1 version is published again, on `with_s1` (network `newest`)
    pruned        rolled back to `with_s1`, pruned to keep_networks=1: `with_bus` goes
    kept_one      an app with keep_networks=1 publishes the bus 764 again; every older network goes

Each stage records what happened while it ran (answers, statuses, which network served, which
directories existed) and tests assert on those records only, so that a test sees the same whichever
tests ran before it, and whichever later stages they set up; what they ask the app themselves is
what no later stage changes (refusals, and the audit log, which only grows). The stop-during-a-publish
test runs on a database of its own. Builds: 5 networks, one publish that fails before building, one
build interrupted.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.db.database import Database
from maas.model import NetworkVersion
from maas.publish import FOLLOW_INTERVAL_S, NetworkService
from maas.settings import Settings
from tests.conftest import SHARED_DATA, derive_feed
from tests.helpers import BUILD_TIMEOUT_S, active_network, publish_feed, upload_feed, wait_for_publish
from tests.maas.conftest import RAISED_LIMITS, Users, fresh_database

REGION = Path(__file__).resolve().parents[2] / "maas" / "data" / "region-herrenberg"
S1 = REGION / "gtfs" / "vvs-s1-only.gtfs.zip"
BUS_764 = REGION / "gtfs" / "vvs-bus-764-only.gtfs.zip"
HERRENBERG_TO_EHNINGEN = {"from": "48.5935,8.8630", "to": "48.6582,8.9408", "depart": "2020-10-06T07:30:00+02:00"}
People = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def feeds_settings(
    settings: Settings, network_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    assert settings.database_url is not None
    osm = tmp_path_factory.mktemp("osm") / "herrenberg.osm.pbf"
    shutil.copy(REGION / "herrenberg-and-around.osm.pbf", osm)
    with fresh_database(settings.database_url, "maas_feeds") as url:
        yield Settings.from_env(
            {},
            database_url=url,
            network_dir=network_dir,
            data_dir=tmp_path_factory.mktemp("feeds-data"),
            jwt_secret=secrets.token_urlsafe(32),
            **RAISED_LIMITS,
            osm_file=osm,
        )


@pytest.fixture(scope="module")
def app(feeds_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(feeds_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def people(feeds_settings: Settings, app: TestClient) -> People:
    users = Users(feeds_settings)
    return {
        "vvs": users.make("agency", agency="vvs")[1],
        "vvs2": users.make("agency", agency="vvs")[1],
        "rbs": users.make("agency", agency="rbs")[1],
        "admin": users.make("admin")[1],
        "operator": users.make("operator")[1],
        "rider": users.make("rider")[1],
    }


def _transit_trips(app: TestClient, rider: dict[str, str]) -> list[str]:
    answer = app.get("/plan", headers=rider, params=HERRENBERG_TO_EHNINGEN)
    assert answer.status_code == 200, answer.text
    best = answer.json()["itineraries"][0]
    return [leg["trip"] for leg in best["legs"] if leg["mode"] == "transit"]


def _uploaded(network: dict[str, Any]) -> list[str]:
    """The feeds of a network that agencies uploaded (the configured network's feeds are in every one)."""
    return sorted(f["feed_id"] for f in network["feeds"] if f["version_id"])


def _serves_s1(client: TestClient, people: People) -> bool:
    """Whether the network `client`'s journey plans come from holds the uploaded S1 (feed `s1`)."""
    answer = client.get("/plan", headers=people["rider"], params=HERRENBERG_TO_EHNINGEN)
    assert answer.status_code == 200, answer.text
    served = int(answer.headers["x-maas-network"])
    network = next(n for n in client.get("/networks", headers=people["operator"]).json() if n["id"] == served)
    return "s1" in _uploaded(network)


def _status(app: TestClient, people: People, version: dict[str, Any]) -> str:
    return app.get(
        f"/feeds/{version['id']}", headers=people["vvs"] if version["agency"] == "vvs" else people["rbs"]
    ).json()["status"]


def _directories(app: TestClient, people: People) -> dict[int, bool]:
    """Whether the directory of each network listed exists, by network id."""
    return {n["id"]: Path(n["directory"]).is_dir() for n in app.get("/networks", headers=people["admin"]).json()}


@pytest.fixture(scope="module")
def s1_upload(app: TestClient, people: People) -> dict[str, Any]:
    """The S1 as vvs uploaded it, as feed `s1` (its answer at upload; the stages below publish it)."""
    return upload_feed(app, people["vvs"], S1, feed_id="s1")


@dataclass(frozen=True)
class Configured:
    network: dict[str, Any]  # the active network before anything was published
    trips: list[str]  # the transit trips of the best plan on it


@pytest.fixture(scope="module")
def configured(app: TestClient, people: People) -> Configured:
    return Configured(network=active_network(app, people["operator"]), trips=_transit_trips(app, people["rider"]))


@dataclass(frozen=True)
class Published:
    started: httpx.Response  # POST /feeds/{s1}/publish
    trips_during: list[str]  # planned right after it
    status_during: str  # the S1's status right after that plan
    s1: dict[str, Any]  # the S1 version once built
    with_s1: dict[str, Any]  # the active network then
    serves_s1: bool
    again: httpx.Response  # publishing the published S1 again
    bus: dict[str, Any]  # the bus 764 version rbs published next, once built
    with_bus: dict[str, Any]  # the active network then
    with_bus_built: bool  # whether its directory was there
    s1_status: str  # the S1's status then


@pytest.fixture(scope="module")
def published(app: TestClient, people: People, configured: Configured, s1_upload: dict[str, Any]) -> Published:
    started = app.post(f"/feeds/{s1_upload['id']}/publish", headers=people["vvs"])
    trips_during = _transit_trips(app, people["rider"])
    status_during = _status(app, people, s1_upload)
    s1 = wait_for_publish(app, people["vvs"], s1_upload["id"])
    with_s1 = active_network(app, people["operator"])
    serves_s1 = _serves_s1(app, people)
    again = app.post(f"/feeds/{s1_upload['id']}/publish", headers=people["vvs"])
    bus = publish_feed(app, people["rbs"], upload_feed(app, people["rbs"], BUS_764, feed_id="bus764")["id"])
    with_bus = active_network(app, people["admin"])
    return Published(
        started=started,
        trips_during=trips_during,
        status_during=status_during,
        s1=s1,
        with_s1=with_s1,
        serves_s1=serves_s1,
        again=again,
        bus=bus,
        with_bus=with_bus,
        with_bus_built=Path(with_bus["directory"]).is_dir(),
        s1_status=_status(app, people, s1_upload),
    )


@dataclass(frozen=True)
class Failed:
    osm: Path  # the OSM file that was missing during the build
    v2: dict[str, Any]  # the second S1 version, as uploaded
    failed: dict[str, Any]  # and once its publish failed
    active: dict[str, Any]  # the active network then
    serves_s1: bool
    networks: list[dict[str, Any]]  # GET /networks then
    s1_status: str  # the first S1 version's status then


@pytest.fixture(scope="module")
def failed(
    app: TestClient,
    people: People,
    feeds_settings: Settings,
    published: Published,
    tmp_path_factory: pytest.TempPathFactory,
) -> Failed:
    v2 = upload_feed(
        app,
        people["vvs"],
        derive_feed(
            S1,
            tmp_path_factory.mktemp("s1-v2") / "vvs-s1-only.gtfs.zip",
            {
                "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang,feed_version\nVVS,https://www.vvs.de,de,2\n"
            },
        ),
        feed_id="s1",
    )
    assert v2["status"] == "uploaded", v2["report"]
    osm = Path(feeds_settings.osm_file or "")
    hidden = osm.with_name("hidden.osm.pbf")
    osm.rename(hidden)
    try:
        failed = publish_feed(app, people["vvs"], v2["id"])
    finally:
        hidden.rename(osm)
    return Failed(
        osm=osm,
        v2=v2,
        failed=failed,
        active=active_network(app, people["operator"]),
        serves_s1=_serves_s1(app, people),
        networks=app.get("/networks", headers=people["operator"]).json(),
        s1_status=_status(app, people, published.s1),
    )


@dataclass(frozen=True)
class Rolled:
    other_served_s1: bool  # a second app process, before the roll back
    back: httpx.Response  # activating the configured network
    served_s1_after_back: bool  # this app, right after
    other_followed_after_s: float | None  # how long until the second process served it too (None: not in time)
    s1_status_after_back: str
    forward: httpx.Response  # activating `with_s1` again
    served_s1_after_forward: bool
    s1_status_after_forward: str
    active_s1_version: str | None  # the S1 version of the active network then


@pytest.fixture(scope="module")
def rolled(
    app: TestClient,
    people: People,
    feeds_settings: Settings,
    configured: Configured,
    published: Published,
    failed: Failed,
) -> Rolled:
    with TestClient(create_app(feeds_settings)) as other_process:
        other_served_s1 = _serves_s1(other_process, people)
        back = app.post(f"/networks/{configured.network['id']}/activate", headers=people["operator"])
        served_s1_after_back = _serves_s1(app, people)
        activated = time.monotonic()
        followed_after_s: float | None = None
        while time.monotonic() < activated + 3 * FOLLOW_INTERVAL_S:
            if not _serves_s1(other_process, people):
                followed_after_s = time.monotonic() - activated
                break
            time.sleep(0.2)
    s1_status_after_back = _status(app, people, published.s1)
    forward = app.post(f"/networks/{published.with_s1['id']}/activate", headers=people["admin"])
    return Rolled(
        other_served_s1=other_served_s1,
        back=back,
        served_s1_after_back=served_s1_after_back,
        other_followed_after_s=followed_after_s,
        s1_status_after_back=s1_status_after_back,
        forward=forward,
        served_s1_after_forward=_serves_s1(app, people),
        s1_status_after_forward=_status(app, people, published.s1),
        active_s1_version=next(
            (f["version_id"] for f in active_network(app, people["admin"])["feeds"] if f["feed_id"] == "s1"), None
        ),
    )


@dataclass(frozen=True)
class Republished:
    v2: dict[str, Any]  # the failed S1 version, published again once the OSM file is back
    s1_status: str  # the first S1 version's status then
    newest: dict[str, Any]  # the active network then
    serves_s1: bool


@pytest.fixture(scope="module")
def republished(app: TestClient, people: People, published: Published, failed: Failed, rolled: Rolled) -> Republished:
    v2 = publish_feed(app, people["vvs"], failed.v2["id"])
    return Republished(
        v2=v2,
        s1_status=_status(app, people, published.s1),
        newest=active_network(app, people["operator"]),
        serves_s1=_serves_s1(app, people),
    )


def _prune(settings: Settings, actor: Any) -> list[NetworkVersion]:
    """What NetworkService.prune deletes with `settings`, run as another process of the service would."""

    async def work() -> list[NetworkVersion]:
        db = await Database.open(settings)
        try:
            service = await NetworkService.open(settings, db)
            try:
                return await service.prune(actor)
            finally:
                await service.close()
        finally:
            await db.close()

    return asyncio.run(work())


@dataclass(frozen=True)
class Pruned:
    networks_before: dict[int, dict[str, Any]]  # GET /networks before, by id
    directories_before: dict[int, bool]
    rolled_back: httpx.Response  # activating `with_s1`
    pruned: list[int]  # what prune with keep_networks=1 deleted
    directories_after: dict[int, bool]
    network_dir_kept: bool  # MAAS_NETWORK_DIR still there
    active: dict[str, Any]
    serves_s1: bool
    networks_after: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def pruned(
    app: TestClient, people: People, feeds_settings: Settings, published: Published, republished: Republished
) -> Pruned:
    networks_before = {n["id"]: n for n in app.get("/networks", headers=people["admin"]).json()}
    directories_before = _directories(app, people)
    rolled_back = app.post(f"/networks/{published.with_s1['id']}/activate", headers=people["operator"])
    admin = Users(feeds_settings).make("admin")[0]
    pruned = _prune(msgspec.structs.replace(feeds_settings, keep_networks=1), admin.id)
    return Pruned(
        networks_before=networks_before,
        directories_before=directories_before,
        rolled_back=rolled_back,
        pruned=[n.id for n in pruned],
        directories_after=_directories(app, people),
        network_dir_kept=Path(feeds_settings.network_dir or "").is_dir(),
        active=active_network(app, people["operator"]),
        serves_s1=_serves_s1(app, people),
        networks_after={n["id"]: n for n in app.get("/networks", headers=people["operator"]).json()},
    )


@dataclass(frozen=True)
class KeptOne:
    bus_status_before: str  # the bus 764 version's status before (the S1-only network serves)
    bus: dict[str, Any]  # once published again by an app with keep_networks=1
    network: dict[str, Any]  # the active network then, as that app lists it
    serves_s1: bool  # that app
    directories: dict[int, bool]  # after the publish
    refusals: dict[int, httpx.Response]  # activating an earlier network pruned by it, by network id
    network_dir_kept: bool
    active: dict[str, Any]  # the active network, asked last in that app
    first_app_serves_s1: bool  # the module's app, still serving a pruned network until it follows


@pytest.fixture(scope="module")
def kept_one(
    app: TestClient,
    people: People,
    feeds_settings: Settings,
    published: Published,
    republished: Republished,
    pruned: Pruned,
) -> KeptOne:
    bus_status_before = _status(app, people, published.bus)
    keep_one = msgspec.structs.replace(feeds_settings, keep_networks=1)
    with TestClient(create_app(keep_one)) as other_process:
        bus = publish_feed(other_process, people["rbs"], published.bus["id"])
        network = active_network(other_process, people["admin"])
        serves_s1 = _serves_s1(other_process, people)
        directories = _directories(other_process, people)
        refusals = {
            i: other_process.post(f"/networks/{i}/activate", headers=people["admin"])
            for i in (published.with_s1["id"], republished.newest["id"])
        }
        network_dir_kept = Path(feeds_settings.network_dir or "").is_dir()
        active = active_network(other_process, people["admin"])
    return KeptOne(
        bus_status_before=bus_status_before,
        bus=bus,
        network=network,
        serves_s1=serves_s1,
        directories=directories,
        refusals=refusals,
        network_dir_kept=network_dir_kept,
        active=active,
        first_app_serves_s1=_serves_s1(app, people),
    )


def test_an_agency_uploads_real_feeds_and_reads_their_reports(
    app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    s1 = upload_feed(app, people["vvs"], S1, feed_id="s1")
    assert s1["status"] == "uploaded" and s1["agency"] == "vvs" and s1["feed_id"] == "s1"
    assert s1["sha256"] == hashlib.sha256(S1.read_bytes()).hexdigest() and s1["size_bytes"] == S1.stat().st_size
    assert s1["report"]["ok"] and s1["report"]["errors"] == []
    # Multipart with the feed id taken from the file name; a larger feed from elsewhere, its warnings named.
    answer = app.post(
        "/feeds",
        headers=people["vvs"],
        files={
            "file": (
                "seattle-area-2017.gtfs.zip",
                (SHARED_DATA / "gtfs" / "seattle-area-2017.gtfs.zip").read_bytes(),
                "application/zip",
            )
        },
    )
    assert answer.status_code == 201, answer.text
    seattle = answer.json()
    assert seattle["feed_id"] == "seattle-area-2017" and seattle["status"] in ("uploaded", "rejected")
    for finding in seattle["report"]["errors"] + seattle["report"]["warnings"]:
        assert finding["file"] and finding["message"] and finding["code"]
    listed = app.get("/feeds", headers=people["vvs2"]).json()  # a colleague of the same agency sees them
    assert {v["id"] for v in listed} >= {s1["id"], seattle["id"]} and "report" not in listed[0]
    got = app.get(f"/feeds/{s1['id']}", headers=people["vvs"]).json()
    assert got["report"] == s1["report"] and got["status"] == "uploaded"


@pytest.mark.parametrize(
    "case, changes, code, file, line",
    [
        ("bad_time", {"stop_times.txt": "time"}, "invalid_time", "stop_times.txt", 3),
        ("missing_stops", {"stops.txt": None}, "missing_file", "stops.txt", None),
        ("dangling_stop", {"stop_times.txt": "stop"}, "dangling_reference", "stop_times.txt", 5),
    ],
)
def test_a_broken_feed_is_rejected_with_findings_naming_file_and_line(
    app: TestClient,
    people: dict[str, dict[str, str]],
    tmp_path: Path,
    case: str,
    changes: dict[str, Any],
    code: str,
    file: str,
    line: int | None,
) -> None:
    def edit(line_no: int, column: str, value: str):
        def change(text: str) -> str:
            lines = text.splitlines()
            cells = lines[line_no - 1].split(",")
            cells[lines[0].split(",").index(column)] = value
            lines[line_no - 1] = ",".join(cells)
            return "\n".join(lines) + "\n"

        return change

    edits = {"time": edit(3, "arrival_time", "14:5x:00"), "stop": edit(5, "stop_id", "nowhere")}
    broken = derive_feed(
        S1,
        tmp_path / f"s1-{case}.gtfs.zip",
        {name: edits[c] if isinstance(c, str) else c for name, c in changes.items()},
    )
    version = upload_feed(app, people["vvs"], broken, feed_id="s1")
    assert version["status"] == "rejected" and not version["report"]["ok"]
    found = [f for f in version["report"]["errors"] if f["code"] == code and f["file"] == file]
    assert found, version["report"]["errors"]
    if line is not None:
        assert any(f["line"] == line for f in found), found
    refused = app.post(f"/feeds/{version['id']}/publish", headers=people["vvs"])
    assert refused.status_code == 422 and "validation errors" in refused.json()["detail"]


def test_what_is_no_feed_at_all_gets_a_report_not_a_500(app: TestClient, people: dict[str, dict[str, str]]) -> None:
    answer = app.post(
        "/feeds",
        headers={**people["vvs"], "Content-Type": "application/zip"},
        params={"feed_id": "junk"},
        content=b"this is not a zip archive",
    )
    assert answer.status_code == 201, answer.text
    junk = answer.json()
    assert junk["status"] == "rejected"
    assert [f["code"] for f in junk["report"]["errors"]] == ["unusable_feed"]
    assert "not a zip archive" in junk["report"]["errors"][0]["message"]
    assert "/tmp" not in junk["report"]["errors"][0]["message"]  # the server's temporary path does not leak
    empty = app.post("/feeds", headers={**people["vvs"], "Content-Type": "application/zip"}, params={"feed_id": "x"})
    assert empty.status_code == 422
    nameless = app.post("/feeds", headers={**people["vvs"], "Content-Type": "application/zip"}, content=b"PK")
    assert nameless.status_code == 422 and "feed id" in nameless.json()["detail"]
    bad_id = app.post(
        "/feeds",
        headers={**people["vvs"], "Content-Type": "application/zip"},
        params={"feed_id": "a:b"},
        content=S1.read_bytes(),
    )
    assert bad_id.status_code == 422


def test_file_names_and_sizes_of_uploads(
    app: TestClient, people: dict[str, dict[str, str]], feeds_settings: Settings
) -> None:
    # A raw body named by Content-Disposition; a multipart name with folders keeps only its file name.
    named = app.post(
        "/feeds",
        headers={
            **people["vvs"],
            "Content-Type": "application/zip",
            "Content-Disposition": 'attachment; filename="vvs-bus-764-only.gtfs.zip"',
        },
        content=BUS_764.read_bytes(),
    )
    assert named.status_code == 201 and named.json()["feed_id"] == "vvs-bus-764-only", named.text
    folders = app.post(
        "/feeds", headers=people["vvs"], files={"file": ("../../x/junk.zip", b"junk", "application/zip")}
    )
    assert folders.status_code == 201 and folders.json()["feed_id"] == "junk"
    assert folders.json()["report"]["errors"][0]["file"] == "junk.zip"
    dotted = app.post("/feeds", headers=people["vvs"], files={"file": ("..", b"junk", "application/zip")})
    assert dotted.status_code == 422
    # Larger than the app's request_max_body_size: 413 before anything is stored, raw or multipart.
    small = msgspec.structs.replace(feeds_settings, max_body_bytes=100_000)
    with TestClient(create_app(small)) as limited:
        raw = limited.post(
            "/feeds",
            headers={**people["vvs"], "Content-Type": "application/zip"},
            params={"feed_id": "s1"},
            content=S1.read_bytes(),
        )
        assert raw.status_code == 413 and raw.headers["content-type"].startswith("application/problem+json")
        form = limited.post(
            "/feeds", headers=people["vvs"], files={"file": (S1.name, S1.read_bytes(), "application/zip")}
        )
        assert form.status_code == 413


def test_other_agencies_and_other_roles_see_nothing(
    app: TestClient, people: dict[str, dict[str, str]], s1_upload: dict[str, Any]
) -> None:
    s1 = s1_upload["id"]  # vvs's feed `s1`
    assert app.get(f"/feeds/{s1}", headers=people["rbs"]).status_code == 404
    assert app.post(f"/feeds/{s1}/publish", headers=people["rbs"]).status_code == 404
    assert all(v["agency"] == "rbs" for v in app.get("/feeds", headers=people["rbs"]).json())
    assert app.get(f"/feeds/{s1}", headers=people["admin"]).status_code == 200
    assert app.get("/feeds", headers=people["rider"]).status_code == 403
    assert app.post("/feeds", headers=people["operator"], params={"feed_id": "x"}, content=b"PK").status_code == 403
    taken = app.post(
        "/feeds",
        headers={**people["rbs"], "Content-Type": "application/zip"},
        params={"feed_id": "s1"},
        content=S1.read_bytes(),
    )
    assert taken.status_code == 409 and "vvs" in taken.json()["detail"]
    assert (
        app.get(f"/feeds/{secrets.token_hex(16)[:8]}-0000-4000-8000-000000000000", headers=people["admin"]).status_code
        == 404
    )


def test_publishing_builds_a_network_that_riders_plan_on(configured: Configured, published: Published) -> None:
    assert configured.network["created_by"] is None
    assert all(f["version_id"] is None for f in configured.network["feeds"])
    assert configured.trips and not any(t.startswith("s1:") for t in configured.trips)
    assert published.started.status_code == 202 and published.started.json()["status"] == "publishing"
    # While the network builds, riders keep planning on the one being served.
    if published.status_during == "publishing":
        assert published.trips_during == configured.trips
    s1 = published.s1
    assert s1["status"] == "published" and s1["published_at"] and s1["error"] is None
    # Every feed of the configured network stays; the uploaded S1 joins them.
    network = published.with_s1
    configured_feeds = [(f["feed_id"], None, None) for f in configured.network["feeds"]]
    assert sorted((f["feed_id"], f["version_id"], f["agency"]) for f in network["feeds"]) == sorted(
        [*configured_feeds, ("s1", s1["id"], "vvs")], key=str
    )
    assert network["id"] != configured.network["id"] and network["built_at"] and network["build_seconds"] > 0
    # Riders plan on the newly published network.
    assert published.serves_s1
    assert published.again.status_code == 409 and published.again.json()["state"] == "published"

    # Another agency's feed joins the S1 in the next network.
    assert published.bus["status"] == "published"
    network = published.with_bus
    assert _uploaded(network) == ["bus764", "s1"]
    assert published.with_bus_built and Path(network["directory"]).name == str(network["id"])
    assert published.s1_status == "published"


def test_a_failing_publish_leaves_the_network_serving(published: Published, failed: Failed) -> None:
    assert failed.v2["status"] == "uploaded", failed.v2["report"]
    assert failed.failed["status"] == "failed" and str(failed.osm) in failed.failed["error"], failed.failed
    assert failed.active["id"] == published.with_bus["id"]
    assert failed.serves_s1
    assert failed.networks[0]["status"] == "failed" and str(failed.osm) in failed.networks[0]["error"]
    assert failed.s1_status == "published"


def test_operators_roll_back_and_forward_atomically(
    app: TestClient, people: People, configured: Configured, published: Published, failed: Failed, rolled: Rolled
) -> None:
    # Refused activations change nothing, whenever they are asked.
    assert app.post(f"/networks/{configured.network['id']}/activate", headers=people["vvs"]).status_code == 403
    assert app.post("/networks/999999/activate", headers=people["operator"]).status_code == 404
    assert app.post(f"/networks/{failed.networks[0]['id']}/activate", headers=people["operator"]).status_code == 409

    assert rolled.other_served_s1
    assert rolled.back.status_code == 200 and rolled.back.json()["active"]
    assert not rolled.served_s1_after_back
    # Another process serving the same database follows the activation within FOLLOW_INTERVAL_S.
    assert rolled.other_followed_after_s is not None, "the other process still serves the earlier network"
    assert rolled.s1_status_after_back == "retired"

    assert rolled.forward.status_code == 200
    assert rolled.served_s1_after_forward
    assert rolled.s1_status_after_forward == "published"
    assert rolled.active_s1_version == published.s1["id"]


def test_publishing_again_after_a_failure_replaces_the_feeds_version(
    published: Published, failed: Failed, republished: Republished
) -> None:
    # The failed version is published again (the OSM file is back); the S1's first version retires.
    assert republished.v2["status"] == "published", republished.v2
    assert republished.s1_status == "retired"
    feeds = {f["feed_id"]: f["version_id"] for f in republished.newest["feeds"] if f["version_id"]}
    assert feeds == {"s1": failed.v2["id"]}  # built on the active network (S1 only), not on the rolled-back one
    assert republished.serves_s1


def test_every_agency_and_operator_action_is_audited(app: TestClient, people: People, rolled: Rolled) -> None:
    # `rolled` and the stages under it uploaded, published, failed and activated (the log only grows).
    entries = app.get("/audit", headers=people["admin"], params={"limit": 1000}).json()
    actions = {e["action"] for e in entries}
    assert {"upload_feed", "publish_feed", "feed_published", "feed_publish_failed", "activate_network"} <= actions
    failed = next(e for e in entries if e["action"] == "feed_publish_failed")
    assert "osm" in failed["details"]["error"].lower()


def _assert_pruned_answer(refused: httpx.Response, network_id: int) -> None:
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["state"] == "pruned" and f"network {network_id} was pruned" in problem["detail"]
    assert "MAAS_KEEP_NETWORKS" in problem["detail"] and "publish its feed versions again" in problem["detail"]


def test_the_serving_network_is_never_pruned(
    app: TestClient, people: People, published: Published, republished: Republished, pruned: Pruned
) -> None:
    with_s1, with_bus, newest = published.with_s1["id"], published.with_bus["id"], republished.newest["id"]
    networks = pruned.networks_before
    # With the default MAAS_KEEP_NETWORKS (5) every network built so far keeps its directory.
    assert all(n["status"] in ("built", "failed") and n["pruned_at"] is None for n in networks.values())
    assert newest == max(i for i, n in networks.items() if n["status"] == "built")
    assert all(pruned.directories_before[i] for i in (with_s1, with_bus, newest))
    # Rolled back to the oldest network built here, then pruned to one: the newest and the serving one stay.
    assert pruned.rolled_back.status_code == 200
    assert pruned.pruned == [with_bus]
    assert pruned.directories_after[with_s1] and pruned.directories_after[newest]
    assert not pruned.directories_after[with_bus]
    assert pruned.network_dir_kept  # MAAS_NETWORK_DIR is never ours to delete
    assert pruned.active["id"] == with_s1
    assert pruned.serves_s1
    assert pruned.networks_after[with_bus]["status"] == "pruned" and pruned.networks_after[with_bus]["pruned_at"]
    # A pruned network stays pruned: this refusal is the same whenever it is asked.
    _assert_pruned_answer(app.post(f"/networks/{with_bus}/activate", headers=people["operator"]), with_bus)


def test_with_keep_1_a_publish_prunes_every_older_network(
    app: TestClient, people: People, published: Published, republished: Republished, kept_one: KeptOne
) -> None:
    assert kept_one.bus_status_before == "retired"  # the S1-only network serves
    assert kept_one.bus["status"] == "published"
    assert _uploaded(kept_one.network) == ["bus764", "s1"]
    assert kept_one.directories[kept_one.network["id"]]
    assert kept_one.serves_s1
    # The network served before and the newest before it are pruned; rolling back to either is refused.
    earlier = (published.with_s1["id"], republished.newest["id"])
    for network_id in earlier:
        assert not kept_one.directories[network_id]
        _assert_pruned_answer(kept_one.refusals[network_id], network_id)
    assert kept_one.network_dir_kept
    assert kept_one.active["id"] == kept_one.network["id"]
    # A process still serving a pruned network answers from its memory-mapped arrays until it follows.
    assert kept_one.first_app_serves_s1
    entries = app.get("/audit", headers=people["admin"], params={"limit": 1000}).json()
    pruning = [e["details"] for e in entries if e["action"] == "prune_networks"]
    assert {"networks": [republished.newest["id"], published.with_s1["id"]], "keep": 1} in pruning


def test_stopping_the_service_during_a_publish_ends_the_build_and_says_so(
    feeds_settings: Settings, tmp_path: Path
) -> None:
    """The service stops without waiting for a build nobody will serve: the build process ends with
    it, and the version and network say that the build was interrupted; the served network stays."""
    assert feeds_settings.database_url is not None
    with fresh_database(feeds_settings.database_url, "maas_stop") as url:
        own = msgspec.structs.replace(feeds_settings, database_url=url, data_dir=tmp_path)
        users = Users(own)
        with TestClient(create_app(own)) as app:
            vvs, admin = users.make("agency", agency="vvs")[1], users.make("admin")[1]
            served = active_network(app, admin)["id"]
            version = upload_feed(app, vvs, S1, feed_id="s1")["id"]
            assert app.post(f"/feeds/{version}/publish", headers=vvs).status_code == 202
            deadline = time.monotonic() + BUILD_TIMEOUT_S
            while not (builds := [c for c in multiprocessing.active_children() if c.name == "maas-build"]):
                assert time.monotonic() < deadline, "no build process started"
                time.sleep(0.05)
        # The app has stopped (its shutdown ran when the client closed): the build was ended, not finished.
        assert builds[0].exitcode == -signal.SIGTERM
        assert not any(c.name == "maas-build" for c in multiprocessing.active_children())
        with TestClient(create_app(own)) as app:
            stopped = app.get(f"/feeds/{version}", headers=vvs).json()
            assert stopped["status"] == "failed" and "interrupted" in stopped["error"], stopped
            networks = app.get("/networks", headers=admin).json()
            assert active_network(app, admin)["id"] == served
            assert [n["status"] for n in networks if n["id"] != served] == ["failed"]
            # The agency can publish the same version again; it builds and is served.
            assert publish_feed(app, vvs, version)["status"] == "published"
            assert active_network(app, admin)["id"] != served
