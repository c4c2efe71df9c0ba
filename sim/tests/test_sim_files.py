"""Point 6: result files are real images of the documented size, served under /files/, expiring."""

import json
import time

import pytest

import sim_imgcheck as imgcheck
import sim_images
from simtest import wait_until

SIZES_5 = {("2K", "1:1"): (2048, 2048), ("3K", "1:1"): (3072, 3072),
           ("2K", "16:9"): (2848, 1600), ("3K", "16:9"): (4096, 2304),
           ("2K", "21:9"): (3136, 1344), ("3K", "9:16"): (2304, 4096),
           ("2K", "4:3"): (2304, 1728), ("3K", "2:3"): (2496, 3744)}


def urls_of(d):
    return json.loads(d["resultJson"])["resultUrls"]


def fetch(sim, url, method="GET"):
    assert url.startswith(sim.url + "/files/")
    return sim.request(method, url[len(sim.url):], key=None)


def small(w, h):
    s = 64.0 / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def test_small_images_decode_with_ratio_kept(sim):
    cases = [(fmt, res, ratio) for fmt in ("jpeg", "png")
             for res, ratio in (("2K", "1:1"), ("3K", "16:9"), ("2K", "21:9"), ("3K", "9:16"))]
    subs = [(c, sim.submit_ok({"resolution": c[1], "aspect_ratio": c[2], "output_format": c[0],
                               "max_images": 2})) for c in cases]
    for (fmt, res, ratio), tid in subs:
        d = sim.wait(tid)
        w, h = small(*SIZES_5[(res, ratio)])
        bodies = []
        for url in urls_of(d):
            r = fetch(sim, url)
            assert r.status == 200
            assert int(r.headers["content-length"]) == len(r.body)
            if fmt == "jpeg":
                assert url.endswith(".jpg") and r.headers["content-type"] == "image/jpeg"
                info = imgcheck.check_jpeg(r.body)           # full pure-python decode
                dims = imgcheck.djpeg_dims(r.body)
                if dims is not None:
                    assert dims == (w, h)
            else:
                assert url.endswith(".png") and r.headers["content-type"] == "image/png"
                info = imgcheck.check_png(r.body)
            assert (info["width"], info["height"]) == (w, h), (fmt, res, ratio)
            bodies.append(r.body)
        assert bodies[0] != bodies[1]                      # the images of a task differ


def test_full_size_jpeg_dimensions(sim):
    sim.config(small_images=False)
    subs = [(key, sim.submit_ok({"resolution": key[0], "aspect_ratio": key[1]}))
            for key in SIZES_5]
    for key, tid in subs:
        r = fetch(sim, urls_of(sim.wait(tid))[0])
        info = imgcheck.check_jpeg(r.body, decode=False)  # markers, stuffing, RSTs, EOI
        assert (info["width"], info["height"]) == SIZES_5[key]


def test_full_size_decodes_with_djpeg_if_installed(sim):
    sim.config(small_images=False)
    d = sim.wait(sim.submit_ok({"resolution": "3K"}))
    body = fetch(sim, urls_of(d)[0]).body
    dims = imgcheck.djpeg_dims(body)
    if dims is None:
        pytest.skip("djpeg not installed (apt-get install libjpeg-turbo-progs)")
    assert dims == (3072, 3072)


def test_full_size_png_and_explicit_sizes(sim):
    sim.config(small_images=False)
    a = sim.submit_ok({"resolution": "3K", "output_format": "png"})
    b = sim.submit_ok({"resolution": "1920*2560", "aspect_ratio": "16:9"})
    info = imgcheck.check_png(fetch(sim, urls_of(sim.wait(a))[0]).body, decode=False)
    assert (info["width"], info["height"]) == (3072, 3072)
    info = imgcheck.check_jpeg(fetch(sim, urls_of(sim.wait(b))[0]).body, decode=False)
    assert (info["width"], info["height"]) == (1920, 2560)      # explicit size wins


def test_seedream_4_5_4k_sizes(sim):
    sim.config(small_images=False)
    cases = [("1:1", (4096, 4096)), ("21:9", (6240, 2656)), ("9:16", (3040, 5504))]
    subs = [(size, sim.submit_ok({"resolution": "4K", "aspect_ratio": ratio},
                                 model="seedream-4-5")) for ratio, size in cases]
    for size, tid in subs:
        d = sim.wait(tid, model="seedream-4-5")
        info = imgcheck.check_jpeg(fetch(sim, urls_of(d)[0]).body, decode=False)
        assert (info["width"], info["height"]) == size


def test_preset_tables_keep_pixel_count():
    import apixo_sim
    for table, px in ((apixo_sim.SIZES_2K, 2048 * 2048), (apixo_sim.SIZES_3K, 3072 * 3072),
                      (apixo_sim.SIZES_4K, 4096 * 4096)):
        for ratio, (w, h) in table.items():
            a, b = map(int, ratio.split(":"))
            assert abs(w * h - px) / px < 0.1, (ratio, w, h)   # APIXO's own tables
            assert abs(w / h - a / b) / (a / b) < 0.03, (ratio, w, h)


def test_head_and_no_auth_needed(sim):
    d = sim.wait(sim.submit_ok())
    url = urls_of(d)[0]
    g = fetch(sim, url)
    h = fetch(sim, url, "HEAD")
    assert h.status == 200 and h.body == b""
    assert h.headers["content-length"] == str(len(g.body))
    assert h.headers["content-type"] == "image/jpeg"


def test_file_404s(sim):
    tid = sim.submit_ok({"max_images": 2})
    r = sim.request("GET", "/files/%s-1.jpg" % tid, key=None)
    assert r.status == 404 and r.json["code"] == 404          # not finished yet
    sim.wait(tid)
    assert sim.request("GET", "/files/%s-1.jpg" % tid, key=None).status == 200
    for name in ("%s-3.jpg" % tid, "%s-0.jpg" % tid, "%s-1.png" % tid, "%s-1" % tid,
                 "task_ffff-1.jpg", "../apixo_sim.py", "%s-1.jpg/x" % tid, ""):
        assert sim.request("GET", "/files/" + name, key=None).status == 404, name
    failed = sim.submit_ok({"prompt": "[fail:GENERATION_FAILED]"})
    sim.wait(failed)
    assert sim.request("GET", "/files/%s-1.jpg" % failed, key=None).status == 404


def test_urls_expire_after_ttl(sim):
    sim.config(url_ttl=30)                # 30 s simulated = 0.3 s at time scale 0.01
    d = sim.wait(sim.submit_ok())
    url = urls_of(d)[0]
    assert fetch(sim, url).status == 200 or time.time() * 1000 > d["completeTime"] + 300
    wait_until(lambda: fetch(sim, url).status == 404, timeout=10, what="URL expiry")
    assert time.time() * 1000 >= d["completeTime"] + 300
    # the status still lists the (now dead) URLs
    assert urls_of(sim.status(d["taskId"]).json["data"]) == [url]


def test_default_ttl_is_15_days_scaled(sim):
    d = sim.wait(sim.submit_ok())
    time.sleep(0.2)
    assert fetch(sim, urls_of(d)[0]).status == 200      # 15 days * 0.01 = 3.6 h


def test_encoder_unit_many_sizes():
    for w, h in [(1, 1), (7, 9), (8, 8), (17, 33), (64, 27), (300, 20)]:
        for v in range(4):
            j = imgcheck.check_jpeg(sim_images.encode_jpeg(w, h, v))
            assert (j["width"], j["height"]) == (w, h)
            cols, rows, band_of_row, colours = sim_images.band_colours(w, h, v)
            for r in range(rows):
                for c in range(cols):
                    got = imgcheck.ycc_to_rgb(*(j["blocks"][k][r][c] for k in range(3)))
                    exp = colours[band_of_row[r]][c]
                    assert max(abs(a - b) for a, b in zip(got, exp)) <= 2
            p = imgcheck.check_png(sim_images.encode_png(w, h, v))
            assert len(p["rows"]) == h
            x = w - 1
            assert tuple(p["rows"][0][3 * x:3 * x + 3]) == colours[0][x // 8]
            assert imgcheck.djpeg_dims(sim_images.encode_jpeg(w, h, v)) in (None, (w, h))
