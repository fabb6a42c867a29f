"""Agencies upload, validate and publish GTFS feeds over HTTP; riders plan on the network built from them.

The module runs its own app on its own database (same server), so that the networks it publishes
and activates do not change what the other test modules' app serves. It builds four networks.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.db.database import Database
from maas.model import NetworkVersion
from maas.publish import FOLLOW_INTERVAL_S, NetworkService
from maas.settings import Settings
from tests.conftest import SHARED_DATA, derive_feed
from tests.maas.conftest import Users, fresh_database

REGION = Path(__file__).resolve().parents[2] / "maas" / "data" / "region-herrenberg"
S1 = REGION / "gtfs" / "vvs-s1-only.gtfs.zip"
BUS_764 = REGION / "gtfs" / "vvs-bus-764-only.gtfs.zip"
HERRENBERG_TO_EHNINGEN = {"from": "48.5935,8.8630", "to": "48.6582,8.9408", "depart": "2020-10-06T07:30:00+02:00"}
BUILD_TIMEOUT_S = 180
MEASURED: dict[str, float] = {}


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
            osm_file=osm,
        )


@pytest.fixture(scope="module")
def app(feeds_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(feeds_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def people(feeds_settings: Settings, app: TestClient) -> dict[str, dict[str, str]]:
    users = Users(feeds_settings)
    return {
        "vvs": users.make("agency", agency="vvs")[1],
        "vvs2": users.make("agency", agency="vvs")[1],
        "rbs": users.make("agency", agency="rbs")[1],
        "admin": users.make("admin")[1],
        "operator": users.make("operator")[1],
        "rider": users.make("rider")[1],
    }


def _upload(app: TestClient, headers: dict[str, str], path: Path, **params: str) -> dict[str, Any]:
    answer = app.post(
        "/feeds", headers={**headers, "Content-Type": "application/zip"}, params=params, content=path.read_bytes()
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _wait(
    app: TestClient, headers: dict[str, str], version_id: str, timeout_s: float = BUILD_TIMEOUT_S
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        asked = time.perf_counter()
        version = app.get(f"/feeds/{version_id}", headers=headers).json()
        MEASURED["slowest GET /feeds/{id} during a build"] = max(
            MEASURED.get("slowest GET /feeds/{id} during a build", 0.0), time.perf_counter() - asked
        )
        if version["status"] != "publishing":
            return version
        assert time.monotonic() < deadline, f"still publishing after {timeout_s} s"
        time.sleep(0.25)


def _publish(app: TestClient, headers: dict[str, str], version_id: str) -> dict[str, Any]:
    started = time.perf_counter()
    answer = app.post(f"/feeds/{version_id}/publish", headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "publishing"
    version = _wait(app, headers, version_id)
    MEASURED[f"publish {version['feed_id']} {version_id[:8]}"] = time.perf_counter() - started
    return version


def _transit_trips(app: TestClient, rider: dict[str, str]) -> list[str]:
    answer = app.get("/plan", headers=rider, params=HERRENBERG_TO_EHNINGEN)
    assert answer.status_code == 200, answer.text
    best = answer.json()["itineraries"][0]
    return [leg["trip"] for leg in best["legs"] if leg["mode"] == "transit"]


def _uploaded(network: dict[str, Any]) -> list[str]:
    """The feeds of a network that agencies uploaded (the configured network's feeds are in every one)."""
    return sorted(f["feed_id"] for f in network["feeds"] if f["version_id"])


def _serves_s1(client: TestClient, people: dict[str, dict[str, str]]) -> bool:
    """Whether the network `client`'s journey plans come from holds the uploaded S1 (feed `s1`)."""
    answer = client.get("/plan", headers=people["rider"], params=HERRENBERG_TO_EHNINGEN)
    assert answer.status_code == 200, answer.text
    served = int(answer.headers["x-maas-network"])
    network = next(n for n in client.get("/networks", headers=people["operator"]).json() if n["id"] == served)
    return "s1" in _uploaded(network)


def _active(app: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    networks = app.get("/networks", headers=headers).json()
    assert sum(n["active"] for n in networks) == 1
    return next(n for n in networks if n["active"])


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What the tests of this module hand on to the next (they run in file order)."""
    return {}


def test_an_agency_uploads_real_feeds_and_reads_their_reports(
    app: TestClient, people: dict[str, dict[str, str]], state: dict[str, Any]
) -> None:
    s1 = _upload(app, people["vvs"], S1, feed_id="s1")
    assert s1["status"] == "uploaded" and s1["agency"] == "vvs" and s1["feed_id"] == "s1"
    assert s1["sha256"] == hashlib.sha256(S1.read_bytes()).hexdigest() and s1["size_bytes"] == S1.stat().st_size
    assert s1["report"]["ok"] and s1["report"]["errors"] == []
    state["s1"] = s1["id"]
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
    version = _upload(app, people["vvs"], broken, feed_id="s1")
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
    app: TestClient, people: dict[str, dict[str, str]], state: dict[str, Any]
) -> None:
    s1 = state["s1"]
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


def test_publishing_builds_a_network_that_riders_plan_on(
    app: TestClient, people: dict[str, dict[str, str]], state: dict[str, Any]
) -> None:
    configured = _active(app, people["operator"])
    assert configured["created_by"] is None and all(f["version_id"] is None for f in configured["feeds"])
    state["configured"] = configured["id"]
    before = _transit_trips(app, people["rider"])
    assert before and not any(t.startswith("s1:") for t in before)

    started = app.post(f"/feeds/{state['s1']}/publish", headers=people["vvs"])
    assert started.status_code == 202 and started.json()["status"] == "publishing"
    # While the network builds, riders keep planning on the one being served.
    during = _transit_trips(app, people["rider"])
    if app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "publishing":
        assert during == before
    published = _wait(app, people["vvs"], state["s1"])
    assert published["status"] == "published" and published["published_at"] and published["error"] is None
    network = _active(app, people["operator"])
    # Every feed of the configured network stays; the uploaded S1 joins them.
    configured_feeds = [(f["feed_id"], None, None) for f in configured["feeds"]]
    assert sorted((f["feed_id"], f["version_id"], f["agency"]) for f in network["feeds"]) == sorted(
        [*configured_feeds, ("s1", state["s1"], "vvs")], key=str
    )
    assert network["id"] != configured["id"] and network["built_at"] and network["build_seconds"] > 0
    state["with_s1"] = network["id"]
    # Riders plan on the newly published network.
    assert _serves_s1(app, people)
    again = app.post(f"/feeds/{state['s1']}/publish", headers=people["vvs"])
    assert again.status_code == 409 and again.json()["state"] == "published"

    # Another agency's feed joins the S1 in the next network.
    bus = _upload(app, people["rbs"], BUS_764, feed_id="bus764")
    assert _publish(app, people["rbs"], bus["id"])["status"] == "published"
    network = _active(app, people["admin"])
    assert _uploaded(network) == ["bus764", "s1"]
    assert Path(network["directory"]).is_dir() and Path(network["directory"]).name == str(network["id"])
    state["with_bus"] = network["id"]
    assert app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "published"


def test_a_failing_publish_leaves_the_network_serving(
    app: TestClient, people: dict[str, dict[str, str]], feeds_settings: Settings, state: dict[str, Any], tmp_path: Path
) -> None:
    v2 = _upload(
        app,
        people["vvs"],
        derive_feed(
            S1,
            tmp_path / "vvs-s1-only.gtfs.zip",
            {
                "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang,feed_version\nVVS,https://www.vvs.de,de,2\n"
            },
        ),
        feed_id="s1",
    )
    assert v2["status"] == "uploaded", v2["report"]
    state["s1_v2"] = v2["id"]
    osm = Path(feeds_settings.osm_file or "")
    hidden = osm.with_name("hidden.osm.pbf")
    osm.rename(hidden)
    try:
        failed = _publish(app, people["vvs"], v2["id"])
    finally:
        hidden.rename(osm)
    assert failed["status"] == "failed" and str(osm) in failed["error"], failed
    assert _active(app, people["operator"])["id"] == state["with_bus"]
    assert _serves_s1(app, people)
    networks = app.get("/networks", headers=people["operator"]).json()
    assert networks[0]["status"] == "failed" and str(osm) in networks[0]["error"]
    assert app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "published"


def test_operators_roll_back_and_forward_atomically(
    app: TestClient, people: dict[str, dict[str, str]], feeds_settings: Settings, state: dict[str, Any]
) -> None:
    assert app.post(f"/networks/{state['configured']}/activate", headers=people["vvs"]).status_code == 403
    assert app.post("/networks/999999/activate", headers=people["operator"]).status_code == 404
    failed = app.get("/networks", headers=people["operator"]).json()[0]["id"]
    assert app.post(f"/networks/{failed}/activate", headers=people["operator"]).status_code == 409

    with TestClient(create_app(feeds_settings)) as other_process:
        assert _serves_s1(other_process, people)
        back = app.post(f"/networks/{state['configured']}/activate", headers=people["operator"])
        assert back.status_code == 200 and back.json()["active"]
        assert not _serves_s1(app, people)
        # Another process serving the same database follows the activation within FOLLOW_INTERVAL_S.
        deadline = time.monotonic() + 3 * FOLLOW_INTERVAL_S
        while _serves_s1(other_process, people):
            assert time.monotonic() < deadline, "the other process still serves the earlier network"
            time.sleep(0.2)
    assert app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "retired"

    forward = app.post(f"/networks/{state['with_s1']}/activate", headers=people["admin"])
    assert forward.status_code == 200
    assert _serves_s1(app, people)
    assert app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "published"
    bus = next(f["version_id"] for f in _active(app, people["admin"])["feeds"] if f["feed_id"] == "s1")
    assert bus == state["s1"]


def test_publishing_again_after_a_failure_replaces_the_feeds_version(
    app: TestClient, people: dict[str, dict[str, str]], state: dict[str, Any]
) -> None:
    # The failed version is published again (the OSM file is back); the S1's first version retires.
    published = _publish(app, people["vvs"], state["s1_v2"])
    assert published["status"] == "published", published
    assert app.get(f"/feeds/{state['s1']}", headers=people["vvs"]).json()["status"] == "retired"
    feeds = {f["feed_id"]: f["version_id"] for f in _active(app, people["operator"])["feeds"] if f["version_id"]}
    assert feeds == {"s1": state["s1_v2"]}  # built on the active network (S1 only), not on the rolled-back one
    assert _serves_s1(app, people)


def test_every_agency_and_operator_action_is_audited(app: TestClient, people: dict[str, dict[str, str]]) -> None:
    entries = app.get("/audit", headers=people["admin"], params={"limit": 1000}).json()
    actions = {e["action"] for e in entries}
    assert {"upload_feed", "publish_feed", "feed_published", "feed_publish_failed", "activate_network"} <= actions
    failed = next(e for e in entries if e["action"] == "feed_publish_failed")
    assert "osm" in failed["details"]["error"].lower()
    for network in app.get("/networks", headers=people["admin"]).json():
        MEASURED[f"network {network['id']} ({network['status']}) build"] = network["build_seconds"] or 0.0
    print({name: round(seconds, 2) for name, seconds in MEASURED.items()})


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


def _pruned_answer(app: TestClient, headers: dict[str, str], network_id: int) -> None:
    refused = app.post(f"/networks/{network_id}/activate", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["state"] == "pruned" and f"network {network_id} was pruned" in problem["detail"]
    assert "MAAS_KEEP_NETWORKS" in problem["detail"] and "publish its feed versions again" in problem["detail"]


def test_the_serving_network_is_never_pruned(
    app: TestClient, people: dict[str, dict[str, str]], feeds_settings: Settings, state: dict[str, Any]
) -> None:
    networks = {n["id"]: n for n in app.get("/networks", headers=people["admin"]).json()}
    # With the default MAAS_KEEP_NETWORKS (5) every network built so far keeps its directory.
    assert all(n["status"] in ("built", "failed") and n["pruned_at"] is None for n in networks.values())
    newest = max(i for i, n in networks.items() if n["status"] == "built")
    built_here = [state["with_s1"], state["with_bus"], newest]
    assert all(Path(networks[i]["directory"]).is_dir() for i in built_here)
    # Rolled back to the oldest network built here, then pruned to one: the newest and the serving one stay.
    assert app.post(f"/networks/{state['with_s1']}/activate", headers=people["operator"]).status_code == 200
    admin = Users(feeds_settings).make("admin")[0]
    pruned = _prune(msgspec.structs.replace(feeds_settings, keep_networks=1), admin.id)
    assert [n.id for n in pruned] == [state["with_bus"]]
    assert Path(networks[state["with_s1"]]["directory"]).is_dir() and Path(networks[newest]["directory"]).is_dir()
    assert not Path(networks[state["with_bus"]]["directory"]).exists()
    assert Path(feeds_settings.network_dir or "").is_dir()  # MAAS_NETWORK_DIR is never ours to delete
    assert _active(app, people["operator"])["id"] == state["with_s1"]
    assert _serves_s1(app, people)
    listed = {n["id"]: n for n in app.get("/networks", headers=people["operator"]).json()}
    assert listed[state["with_bus"]]["status"] == "pruned" and listed[state["with_bus"]]["pruned_at"]
    _pruned_answer(app, people["operator"], state["with_bus"])
    state["newest"] = newest


def test_with_keep_1_a_publish_prunes_every_older_network(
    app: TestClient, people: dict[str, dict[str, str]], feeds_settings: Settings, state: dict[str, Any]
) -> None:
    directories = {n["id"]: Path(n["directory"]) for n in app.get("/networks", headers=people["admin"]).json()}
    bus = next(v for v in app.get("/feeds", headers=people["rbs"]).json() if v["feed_id"] == "bus764")
    assert bus["status"] == "retired"  # the S1-only network serves
    keep_one = msgspec.structs.replace(feeds_settings, keep_networks=1)
    with TestClient(create_app(keep_one)) as other_process:
        assert _publish(other_process, people["rbs"], bus["id"])["status"] == "published"
        network = _active(other_process, people["admin"])
        assert _uploaded(network) == ["bus764", "s1"]
        assert Path(network["directory"]).is_dir()
        assert _serves_s1(other_process, people)
        # The network served before and the newest before it are pruned; rolling back to either is refused.
        for earlier in (state["with_s1"], state["newest"]):
            assert not directories[earlier].exists()
            _pruned_answer(other_process, people["admin"], earlier)
        assert Path(feeds_settings.network_dir or "").is_dir()
        assert _active(other_process, people["admin"])["id"] == network["id"]
    # A process still serving a pruned network answers from its memory-mapped arrays until it follows.
    assert _serves_s1(app, people)
    entries = app.get("/audit", headers=people["admin"], params={"limit": 1000}).json()
    pruning = [e["details"] for e in entries if e["action"] == "prune_networks"]
    assert {"networks": [state["newest"], state["with_s1"]], "keep": 1} in pruning


def test_stopping_the_service_during_a_publish_ends_the_build_and_says_so(
    feeds_settings: Settings, tmp_path: Path
) -> None:
    """The service stops without waiting for a build nobody will serve: the build process ends with
    it, and the version and network say that the build was interrupted; the served network stays."""
    import multiprocessing
    import signal

    assert feeds_settings.database_url is not None
    with fresh_database(feeds_settings.database_url, "maas_stop") as url:
        own = msgspec.structs.replace(feeds_settings, database_url=url, data_dir=tmp_path)
        users = Users(own)
        with TestClient(create_app(own)) as app:
            vvs, admin = users.make("agency", agency="vvs")[1], users.make("admin")[1]
            served = _active(app, admin)["id"]
            version = _upload(app, vvs, S1, feed_id="s1")["id"]
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
            assert _active(app, admin)["id"] == served
            assert [n["status"] for n in networks if n["id"] != served] == ["failed"]
            # The agency can publish the same version again; it builds and is served.
            assert _publish(app, vvs, version)["status"] == "published"
            assert _active(app, admin)["id"] != served
