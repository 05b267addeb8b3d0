"""``nightskynet explore`` on the tiny run: the JSON API and the pages through aiohttp's test client, its safety
(no path ever opened, no traceback, 400 for a malformed parameter), its marks (two tabs at once, a restart, a kill -9
in the middle of a write), and the pages in a real headless Chromium."""

import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sky_cases
from aiohttp.test_utils import TestClient, TestServer
from conftest import SKY_DIR
from PIL import Image

from nightskynet.core import layout
from nightskynet.explore.app import build_app, open_explorer
from nightskynet.explore.marks import read_marks

pytestmark = pytest.mark.slow
RUN_FILES = (
    layout.CATALOG,
    layout.COMPARISON,
    layout.REPRESENTATIONS,
    layout.REPRESENTATIONS_OBJID,
    layout.INDEX,
    layout.SCORES,
    layout.MODEL,
    "images",
)


def copy_run(tiny_run: Path, dest: Path, files=RUN_FILES) -> Path:
    """The files of the tiny run the explorer reads, in a folder of their own (the explorer writes its marks there)."""
    source = tiny_run / "results" / "demo"
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (source / name).is_dir() else shutil.copy2)(source / name, dest / name)
    return dest


@pytest.fixture()
def run(tiny_run, tmp_path):
    return copy_run(tiny_run, tmp_path / "run")


def call(folder: Path, steps):
    """Run ``steps(client)`` against the explorer of ``folder`` through aiohttp's test client; its result."""

    async def main():
        app = build_app(open_explorer(folder))
        async with TestClient(TestServer(app)) as client:
            return await steps(client)

    return asyncio.run(main())


async def json_of(client, path, status=200, **kwargs):
    response = await client.get(path, **kwargs)
    assert response.status == status, (path, response.status, await response.text())
    return await response.json()


@pytest.mark.parametrize("kind", ["scrape", "pax", "gnu long names", "a directory member"])
def test_the_cutout_store_finds_each_jpeg_of_any_tar_by_its_headers_or_the_tarfile_module(tmp_path, kind):
    import hashlib
    import tarfile

    from nightskynet.explore.cutout_store import CutoutStore, ustar_members
    from nightskynet.sky.cutout_client import Outcome
    from nightskynet.stages.scrape import write_chunk

    rng = np.random.default_rng(0)
    objids = [587722981742084231 + 7 * k for k in range(40)]
    jpegs = {o: rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes() for o in objids}
    tar_path = tmp_path / "chunk_0.tar"
    if kind == "scrape":
        outcomes = []
        for o, data in jpegs.items():
            (tmp_path / f"{o}.jpg").write_bytes(data)
            outcomes.append(Outcome(o, "ok", 200, 1, "", hashlib.sha256(data).hexdigest(), tmp_path / f"{o}.jpg"))
        write_chunk(outcomes, tar_path, tmp_path / "chunk_0.csv")
    else:
        fmt = tarfile.GNU_FORMAT if kind == "gnu long names" else tarfile.PAX_FORMAT
        with tarfile.open(tar_path, "w", format=fmt) as tar:
            if kind == "a directory member":
                info = tarfile.TarInfo("cutouts")
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            for o, data in jpegs.items():
                name = f"{'d' * 120}/{o}.jpg" if kind == "gnu long names" else f"{o}.jpg"
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.pax_headers = {"comment": "ü"} if kind == "pax" else {}
                tar.addfile(info, io.BytesIO(data))
    headers = ustar_members(tar_path)
    assert (headers is not None) == (kind == "scrape")  # anything but the scrape's plain USTAR goes to the tarfile module
    store = CutoutStore([tar_path])
    assert all(store.jpeg(o) == data for o, data in jpegs.items())
    assert store.jpeg(objids[0] + 1) is None


def test_the_ranking_leaves_out_exactly_the_marked_galaxies_from_its_background():
    from nightskynet.explore.ranking import unmarked

    rng = np.random.default_rng(1)
    for _ in range(50):
        ok = np.sort(rng.choice(1000, int(rng.integers(0, 900)), replace=False))
        marked = rng.integers(0, 1100, int(rng.integers(0, 30)))  # repeats, and rows outside ok or the catalog
        assert np.array_equal(unmarked(ok, marked), np.setdiff1d(ok, marked))


def test_a_galaxy_its_neighbours_and_its_cutout(run):
    async def steps(client):
        first = (await json_of(client, "/api/list/unusual"))["rows"][0]
        galaxy = await json_of(client, f"/api/galaxy/{first['objid']}")
        image = await client.get(f"/image/{first['objid']}.jpg")
        page = await client.get(f"/galaxy/{first['objid']}")
        return first, galaxy, image.status, image.content_type, await image.read(), await page.text()

    first, galaxy, status, kind, jpeg, html = call(run, steps)
    assert galaxy["objid"] == first["objid"] and set(galaxy["p"]) == {"elliptical", "face_on_spiral", "edge_on_spiral", "merger"}
    assert galaxy["status"] == "classified" and abs(sum(galaxy["p"].values()) - 1) < 1e-3
    neighbours = [n["objid"] for n in galaxy["neighbours"]]
    assert len(neighbours) == 12 and galaxy["objid"] not in neighbours  # never its own neighbour
    sims = [n["similarity"] for n in galaxy["neighbours"]]
    assert sims == sorted(sims, reverse=True)
    assert status == 200 and kind == "image/jpeg" and Image.open(io.BytesIO(jpeg)).size == (120, 120)
    assert f"/galaxy/{neighbours[0]}" in html and "skyserver.sdss.org" in html and "legacysurvey.org/viewer" in html


def test_every_objid_in_the_json_is_a_string_that_names_its_galaxy_exactly(run):
    """A 64-bit objid as a JSON number loses its last digits in a browser (53-bit numbers) and names another galaxy."""

    async def steps(client):
        rows = (await json_of(client, "/api/list/unusual?per_page=60"))["rows"]
        return rows, [await json_of(client, f"/api/galaxy/{r['objid']}") for r in rows[:5]]

    rows, galaxies = call(run, steps)
    catalog = __import__("pandas").read_csv(run / layout.CATALOG, usecols=["objid"], dtype={"objid": "int64"})["objid"]
    assert all(isinstance(r["objid"], str) for r in rows) and {int(r["objid"]) for r in rows} == set(catalog)
    assert max(int(r["objid"]) for r in rows) > 2**53  # SDSS objids need more than a JavaScript number holds
    for row, galaxy in zip(rows, galaxies, strict=False):
        assert galaxy["objid"] == row["objid"] and all(isinstance(n["objid"], str) for n in galaxy["neighbours"])


def test_lists_are_paged_sorted_and_filtered_on_the_server(run):
    async def steps(client):
        one = await json_of(client, "/api/list/unusual?per_page=10&page=1")
        two = await json_of(client, "/api/list/unusual?per_page=10&page=2")
        asc = await json_of(client, "/api/list/unusual?per_page=10&order=asc")
        top = one["rows"][0]["predicted"]
        mine = await json_of(client, f"/api/list/merger_likeness?predicted={top}&per_page=200")
        rng = await json_of(client, "/api/list/disagreement?p_class=merger&p_min=0.05&p_max=0.5&per_page=200")
        return one, two, asc, top, mine, rng

    one, two, asc, top, mine, rng = call(run, steps)
    assert one["total"] == 60 and one["pages"] == 6 and len(one["rows"]) == 10
    values = [r["unusual"] for r in one["rows"] + two["rows"]]
    assert values == sorted(values, reverse=True) and not {r["objid"] for r in one["rows"]} & {r["objid"] for r in two["rows"]}
    assert [r["unusual"] for r in asc["rows"]] == sorted(r["unusual"] for r in asc["rows"])
    assert mine["rows"] and all(r["predicted"] == top for r in mine["rows"]) and mine["total"] == len(mine["rows"])
    assert all(0.05 <= r["p"]["merger"] <= 0.5 for r in rng["rows"])


def test_search_by_objid_and_by_position_in_decimal_or_sexagesimal(run):
    from astropy.coordinates import Angle

    async def steps(client):
        g = (await json_of(client, "/api/list/unusual"))["rows"][3]
        ra = Angle(g["ra"], "deg").to_string(unit="hourangle", sep="hms", precision=2)
        dec = Angle(g["dec"], "deg").to_string(unit="deg", sep="dms", precision=1, alwayssign=True)
        decimal = await json_of(client, f"/api/search?ra={g['ra']}&dec={g['dec']}&radius=2")
        sexagesimal = await json_of(client, "/api/search", params={"ra": ra, "dec": dec, "radius": "2"})
        by_id = await client.get(f"/search?objid={g['objid']}", allow_redirects=False)
        page = await client.get("/search", params={"ra": ra, "dec": dec, "radius": "2"})
        return g, decimal, sexagesimal, by_id.status, by_id.headers.get("Location"), await page.text()

    g, decimal, sexagesimal, status, location, html = call(run, steps)
    assert decimal["rows"][0]["objid"] == g["objid"] and decimal["rows"][0]["separation_arcsec"] < 0.1
    assert sexagesimal["rows"][0]["objid"] == g["objid"] and sexagesimal["rows"][0]["separation_arcsec"] < 1
    assert status == 302 and location == f"/galaxy/{g['objid']}"
    assert f"/galaxy/{g['objid']}" in html


def test_an_uploaded_image_is_looked_at_first(run):
    rng = np.random.default_rng(3)  # a star the source check refuses (test_predict draws the same)
    galaxy = (SKY_DIR / "images" / sorted(os.listdir(SKY_DIR / "images"))[0]).read_bytes()
    star = io.BytesIO()
    Image.fromarray(sky_cases.star(rng)).save(star, "PNG")

    async def steps(client):
        out = []
        for name, body in (("galaxy.jpg", galaxy), ("star.png", star.getvalue()), ("notes.txt", b"not an image at all")):
            form = {"image": io.BytesIO(body)}
            response = await client.post("/api/image", data=form)
            out.append((response.status, await response.json()))
        big = await client.post("/api/image", data={"image": io.BytesIO(b"\xff" * (6 * 1024 * 1024))})
        out.append((big.status, await big.json()))
        return out

    (s1, galaxy_answer), (s2, star_answer), (s3, text_answer), (s4, big_answer) = call(run, steps)
    assert s1 == 200 and not galaxy_answer["refused"] and len(galaxy_answer["neighbours"]) == 12
    assert s2 == 200 and star_answer["refused"] and star_answer["status"] == "point_source" and not star_answer["neighbours"]
    assert (
        s3 == 200 and text_answer["refused"] and text_answer["status"] == "unreadable" and "not a readable image" in text_answer["reason"]
    )
    assert s4 == 400 and "larger than 5 MB" in big_answer["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/image/..%2F..%2F..%2Fetc%2Fpasswd.jpg",
        "/image/%2Fetc%2Fpasswd.jpg",
        "/image/../model/model.pt",
        "/static/..%2Fexplore.css",
        "/static/%2Fetc%2Fpasswd",
        "/galaxy/..%2F..%2Fetc%2Fpasswd",
        "/api/galaxy/%2Fetc%2Fpasswd",
        "/export/ranking.%2F..%2Fcatalog.csv",
        "/list/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_no_parameter_is_ever_opened_as_a_path(run, path):
    async def steps(client):
        response = await client.get(path)
        return response.status, await response.read()

    status, body = call(run, steps)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"Traceback" not in body and b"objid," not in body


@pytest.mark.parametrize(
    "path, message",
    [
        ("/api/galaxy/12x", "is not a whole number"),
        ("/api/galaxy/1", "is not in this run's catalog"),
        ("/api/list/unusual?page=0", "page 0: between 1"),
        ("/api/list/unusual?per_page=abc", "is not a whole number"),
        ("/api/list/unusual?predicted=dragon", "one of elliptical"),
        ("/api/list/unusual?p_class=merger&p_min=0.9&p_max=0.1", "the smaller first"),
        ("/api/list/unusual?p_min=nan", "between 0 and 1"),
        ("/api/search?ra=400&dec=10", "not on the sky"),
        ("/api/search?ra=10h&dec=north", "is not an angle"),
        ("/api/search?ra=10&dec=10&radius=-1", "radius -1"),
        ("/api/search", "give ra and dec"),
        ("/export/ranking.xlsx", "ranking.csv, ranking.fits or ranking.vot"),
    ],
)
def test_a_malformed_parameter_is_answered_400_with_what_was_wrong(run, path, message):
    async def steps(client):
        response = await client.get(path)
        return response.status, await response.json()

    status, body = call(run, steps)
    assert status in (400, 404) and message in body["error"], (path, status, body)


def test_marks_from_two_tabs_at_once_are_both_kept_and_read_back_after_a_restart(run):
    async def steps(client):
        rows = (await json_of(client, "/api/list/unusual?per_page=20"))["rows"]
        objids = [r["objid"] for r in rows]
        marks = [client.post("/api/marks", json={"objid": o, "mark": "yes" if k % 3 else "no"}) for k, o in enumerate(objids)]
        answers = await asyncio.gather(*marks)  # twenty marks in flight at once, as from several tabs
        assert all(a.status == 200 for a in answers)
        bad = await client.post("/api/marks", json={"objid": objids[0], "mark": "maybe"})
        assert bad.status == 400 and "yes, no or clear" in (await bad.json())["error"]
        cleared = await client.post("/api/marks", json={"objid": objids[1], "mark": "clear"})
        assert (await cleared.json())["mark"] is None
        return objids

    objids = [int(o) for o in call(run, steps)]
    on_disk = read_marks(run / layout.MARKS)
    assert set(on_disk) == set(objids) - {objids[1]}
    assert {o: m for o, (m, _) in on_disk.items()} == {o: "yes" if k % 3 else "no" for k, o in enumerate(objids) if k != 1}

    async def after_restart(client):
        return (await json_of(client, "/api/marks"))["marks"]

    assert {int(m["objid"]): m["mark"] for m in call(run, after_restart)} == {o: m for o, (m, _) in on_disk.items()}


def test_the_ranking_follows_the_marks_and_exports_for_topcat(run):
    from astropy.table import Table

    async def steps(client):
        before = await json_of(client, "/api/ranking")
        rows = (await json_of(client, "/api/list/p_merger?per_page=10"))["rows"]
        for r in rows[:3]:
            await client.post("/api/marks", json={"objid": r["objid"], "mark": "yes"})
        await client.post("/api/marks", json={"objid": rows[-1]["objid"], "mark": "no"})
        after = await json_of(client, "/api/ranking")
        files = {}
        for fmt in ("csv", "fits", "vot"):
            response = await client.get(f"/export/ranking.{fmt}")
            assert response.status == 200
            files[fmt] = await response.read()
        return before, rows, after, files

    before, rows, after, files = call(run, steps)
    assert before["suggested"] == [] and before["yes"] == 0
    assert after["yes"] == 3 and after["no"] == 1 and len(after["suggested"]) == 12
    marked = {r["objid"] for r in rows[:3]} | {rows[-1]["objid"]}
    assert not marked & {g["objid"] for g in after["suggested"] + after["informative"]}  # suggestions are never marked ones
    scores = [g["score"] for g in after["suggested"]]
    assert scores == sorted(scores, reverse=True)
    for fmt, body in files.items():
        path = run / f"ranking.{fmt}"
        path.write_bytes(body)
        table = Table.read(path, format={"csv": "ascii.csv", "fits": "fits", "vot": "votable"}[fmt])
        assert {"rank", "objid", "score", "mark", "ra", "dec", "p_merger", "predicted"} <= set(table.colnames), fmt
        assert len(table) == 60 and list(table["rank"][:3]) == [1, 2, 3] and table["objid"].dtype.kind == "i"
        assert (np.diff(np.asarray(table["score"], float)) <= 1e-12).all()
    assert Table.read(run / "ranking.fits")["score"].description.startswith("the marks' model's probability")


def test_a_kill_minus_9_in_the_middle_of_writing_marks_leaves_the_file_whole(run, tmp_path):
    """A process marking as fast as it can, killed with SIGKILL at twenty moments: each time the marks file reads back
    whole (no half-written file is ever in its place)."""
    script = tmp_path / "marker.py"
    script.write_text(
        "import sys, itertools\n"
        "from pathlib import Path\n"
        "from nightskynet.explore.marks import Marks\n"
        "marks = Marks(Path(sys.argv[1]))\n"
        "for k in itertools.count():\n"
        "    marks.set(10**6 + k % 500, 'yes' if k % 2 else 'no')\n"
    )
    path = run / layout.MARKS
    rng = np.random.default_rng(0)
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, str(script), str(path)])
        time.sleep(0.3 + rng.random() * 0.4)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        marks = read_marks(path)
        assert marks and all(m in ("yes", "no") for m, _ in marks.values())


def test_a_run_without_its_similarity_outputs_is_refused_in_one_line(tiny_run, tmp_path):
    partial = copy_run(tiny_run, tmp_path / "partial", files=RUN_FILES[:4])  # the morphology stage's files, not similarity's
    proc = subprocess.run(
        [sys.executable, "-m", "nightskynet", "explore", "--results", str(partial), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "run the workflow's similarity rule first (snakemake similarity)" in proc.stderr


def start(folder: Path, host: str = "127.0.0.1") -> tuple[subprocess.Popen, str, str]:
    """``nightskynet explore`` in a child process on a free port: (the process, its address, what it printed first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightskynet", "explore", "--results", str(folder), "--port", "0", "--host", host],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = [proc.stdout.readline()]
    if host not in ("127.0.0.1", "localhost"):
        lines.append(proc.stdout.readline())
    address = lines[0].split("http://", 1)[1].split("/", 1)[0]
    return proc, f"http://{address}", "".join(lines)


def test_it_listens_on_loopback_and_says_so_loudly_when_told_otherwise(run):
    proc, url, printed = start(run)
    proc.kill()
    assert url.startswith("http://127.0.0.1:") and "WARNING" not in printed
    proc, url, printed = start(run, host="0.0.0.0")
    proc.kill()
    assert "WARNING: listening on 0.0.0.0: anyone who can reach port" in printed


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture()
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no Chromium and ChromeDriver (Debian: apt-get install chromium chromium-driver); .ci/run installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads")})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def wait_for(condition, timeout=10.0):
    """``condition()``'s first true value, asked every 0.1 s (a page reloading meanwhile is asked again)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            value = condition()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


def test_a_person_works_through_the_explorer_in_a_real_browser(run, browser, tmp_path):
    from astropy.table import Table
    from selenium.webdriver.common.by import By

    proc, url, _ = start(run)
    try:
        # open a galaxy from a list, then click one of its neighbours: that galaxy's page opens
        browser.get(f"{url}/list/unusual")
        first = browser.find_element(By.CSS_SELECTOR, "table.rows tbody tr td a")
        objid = first.get_attribute("href").rsplit("/", 1)[1]
        first.click()
        wait_for(lambda: browser.current_url.endswith(f"/galaxy/{objid}"))
        assert browser.find_element(By.CSS_SELECTOR, "img.cutout").get_property("naturalWidth") == 120
        neighbour = browser.find_element(By.CSS_SELECTOR, ".grid .thumb a")
        other = neighbour.get_attribute("href").rsplit("/", 1)[1]
        neighbour.click()
        wait_for(lambda: browser.current_url.endswith(f"/galaxy/{other}"))
        assert other != objid and f"objid {other}" in browser.find_element(By.TAG_NAME, "h1").text
        browser.save_screenshot(str(tmp_path / "galaxy.png"))
        # search by position from the start page's form: the galaxy is found
        ra = browser.find_element(By.XPATH, "//th[text()='position']/following-sibling::td").text.split()[1]
        dec = browser.find_element(By.XPATH, "//th[text()='position']/following-sibling::td").text.split()[3]
        browser.get(url)
        browser.find_element(By.NAME, "ra").send_keys(ra)
        browser.find_element(By.NAME, "dec").send_keys(dec)
        browser.find_element(By.CSS_SELECTOR, "form[action='/search'] input[name='radius']").submit()
        wait_for(lambda: "/search?" in browser.current_url)
        assert browser.find_element(By.CSS_SELECTOR, f".thumb[data-objid='{other}']")
        # mark five galaxies on lists and pages: the ranking appears and changes with the marks
        browser.get(f"{url}/list/p_merger")
        marked = []
        for row in browser.find_elements(By.CSS_SELECTOR, "table.rows tbody tr")[:3]:
            marked.append(row.get_attribute("data-objid"))
        for objid_ in marked:
            browser.get(f"{url}/galaxy/{objid_}")
            wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")
            browser.find_element(By.CSS_SELECTOR, "table.facts .mark.yes").click()
            wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "table.facts .marks").get_attribute("data-mark") == "yes")
        browser.get(f"{url}/ranking")
        first_suggestions = [e.get_attribute("data-objid") for e in browser.find_elements(By.CSS_SELECTOR, "#suggested .thumb")]
        assert len(first_suggestions) == 12 and not set(first_suggestions) & set(marked)
        for k in range(2):  # two more marks on the ranking page itself: it ranks again
            button = browser.find_elements(By.CSS_SELECTOR, "#suggested .thumb .mark.no")[0]
            marked.append(button.find_element(By.XPATH, "..").get_attribute("data-objid"))
            button.click()
            wait_for(lambda: browser.find_element(By.ID, "no-count").text == str(k + 1))
        suggestions = [e.get_attribute("data-objid") for e in browser.find_elements(By.CSS_SELECTOR, "#suggested .thumb")]
        assert suggestions != first_suggestions and not set(suggestions) & set(marked)
        browser.save_screenshot(str(tmp_path / "ranking.png"))
        # reload: the marks are kept, on the page and on disk
        browser.refresh()
        wait_for(lambda: browser.find_element(By.ID, "yes-count").text == "3" and browser.find_element(By.ID, "no-count").text == "2")
        browser.get(f"{url}/galaxy/{marked[0]}")
        wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "table.facts .marks").get_attribute("data-mark") == "yes")
        assert set(read_marks(run / layout.MARKS)) == {int(o) for o in marked}
        # export: the browser downloads the ranking, and astropy reads it back
        browser.get(f"{url}/ranking")
        browser.find_element(By.LINK_TEXT, "VOTable").click()
        downloaded = wait_for(lambda: [p for p in (tmp_path / "downloads").glob("*.vot")] if (tmp_path / "downloads").is_dir() else [])
        table = Table.read(downloaded[0], format="votable")
        assert len(table) == 60 and {"rank", "objid", "score", "mark"} <= set(table.colnames)
        assert {int(o) for o, m in zip(table["objid"], table["mark"], strict=True) if m} == {int(o) for o in marked}
        # the sky map: a click on a galaxy's spot lists it among the galaxies near that point
        from selenium.webdriver.common.action_chains import ActionChains

        target = browser.execute_script(f"return fetch('/api/galaxy/{other}').then(r => r.json())")
        browser.get(f"{url}/sky")
        image = browser.find_element(By.ID, "skymap")
        wait_for(lambda: image.get_property("naturalWidth") > 0)
        browser.save_screenshot(str(tmp_path / "sky.png"))
        box = {
            k: float(image.get_attribute(f"data-{k}"))
            for k in ("left", "top", "width", "height", "ra-left", "ra-right", "dec-top", "dec-bottom")
        }
        scale = image.get_property("naturalWidth") / image.size["width"]
        x = (box["left"] + box["width"] * (target["ra"] - box["ra-left"]) / (box["ra-right"] - box["ra-left"])) / scale
        y = (box["top"] + box["height"] * (target["dec"] - box["dec-top"]) / (box["dec-bottom"] - box["dec-top"])) / scale
        ActionChains(browser).move_to_element_with_offset(
            image, x - image.size["width"] / 2, y - image.size["height"] / 2
        ).click().perform()
        wait_for(lambda: "/search?ra=" in browser.current_url)
        assert "Within" in browser.find_element(By.TAG_NAME, "h1").text
        assert browser.find_element(By.CSS_SELECTOR, f".thumb[data-objid='{other}']")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    for shot in ("galaxy.png", "ranking.png", "sky.png"):
        pixels = np.asarray(Image.open(tmp_path / shot).convert("L"), dtype=float)
        assert pixels.std() > 10, shot  # a real page, not a blank one
