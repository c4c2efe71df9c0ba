"""Point 3: every documented rule of seedream-5-0, seedream-4-5's own rules, pass-through models."""

import pytest

GEN5 = "/api/v1/generateTask/seedream-5-0"
GEN45 = "/api/v1/generateTask/seedream-4-5"


def body(**inp):
    b = {"input": {"prompt": "a cat", "max_images": 1}}
    b["input"].update(inp)
    return b


def top(**kw):
    b = body()
    b.update(kw)
    return b


def without(field):
    b = body()
    del b["input"][field]
    return b


I2I = {"mode": "image-to-image"}

BAD_5 = [
    # top level
    (top(request_type="sync"), "request_type must be one of: async, callback"),
    (top(request_type=None), "request_type must be one of: async, callback"),
    (top(request_type="callback"), "callback_url is required when request_type is callback"),
    (top(request_type="callback", callback_url=""), "callback_url is required"),
    (top(request_type="callback", callback_url="ftp://x.example/cb"),
     "callback_url must be an http or https URL"),
    (top(request_type="callback", callback_url="not a url"), "callback_url must be an http"),
    (top(request_type="callback", callback_url=5), "callback_url must be an http"),
    (top(provider="cheap"), "provider must be one of: auto, value, official"),
    (top(provider=1), "provider must be one of: auto, value, official"),
    ({"request_type": "async"}, "Missing required field: input"),
    ({"input": "a cat"}, "input must be a JSON object"),
    ({"input": None}, "input must be a JSON object"),
    # mode
    (body(mode="img2img"), "input.mode must be one of: text-to-image, image-to-image"),
    # prompt
    (without("prompt"), "Missing required field: input.prompt (a string of 1 to 5000 characters)"),
    (body(prompt=""), "input.prompt must be a string of 1 to 5000 characters"),
    (body(prompt="x" * 5001), "input.prompt must be a string of 1 to 5000 characters"),
    (body(prompt="\u00e9" * 5001), "input.prompt must be a string of 1 to 5000 characters"),
    (body(prompt=42), "input.prompt must be a string of 1 to 5000 characters"),
    (body(prompt=None), "input.prompt must be a string"),
    # max_images
    (without("max_images"), "Missing required field: input.max_images (an integer from 1 to 10)"),
    (body(max_images=0), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=11), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=-1), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=True), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=2.0), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=2.5), "input.max_images must be an integer from 1 to 10"),
    (body(max_images="2"), "input.max_images must be an integer from 1 to 10"),
    (body(max_images=None), "input.max_images must be an integer from 1 to 10"),
    # image_urls
    (body(**I2I), "Missing required field: input.image_urls (1 to 14 http or https URLs"),
    (body(image_urls=[], **I2I), "input.image_urls must be an array of 1 to 14"),
    (body(image_urls=["https://x.example/%d.png" % i for i in range(15)], **I2I),
     "input.image_urls must be an array of 1 to 14"),
    (body(image_urls="https://x.example/a.png", **I2I), "input.image_urls must be an array"),
    (body(image_urls=["https://x.example/a.png", "file:///etc/passwd"], **I2I),
     "input.image_urls[1] must be an http or https URL"),
    (body(image_urls=[3], **I2I), "input.image_urls[0] must be an http or https URL"),
    (body(image_urls=["https://x.example/%d.png" % i for i in range(15)]),
     "input.image_urls must be an array of 1 to 14"),
    # resolution
    (body(resolution="4K"), "input.resolution must be one of: 2K, 3K, or an explicit size"),
    (body(resolution="2k"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="1K"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution=2), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="100x100"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="8192x8192"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="10000x400"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="2048 x 2048"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="2048x"), "input.resolution must be one of: 2K, 3K"),
    (body(resolution="0x2048"), "input.resolution must be one of: 2K, 3K"),
    # aspect_ratio
    (body(aspect_ratio="5:4"), "input.aspect_ratio must be one of: 1:1, 2:3, 3:2, 4:3, 3:4, "
                               "9:16, 16:9, 21:9"),
    (body(aspect_ratio="16/9"), "input.aspect_ratio must be one of"),
    (body(aspect_ratio=1), "input.aspect_ratio must be one of"),
    # sequential_image_generation
    (body(sequential_image_generation="on"),
     "input.sequential_image_generation must be one of: disabled, auto"),
    (body(sequential_image_generation=True), "input.sequential_image_generation must be one of"),
    # web_search
    (body(web_search="true"), "input.web_search must be a boolean (true or false)"),
    (body(web_search=1), "input.web_search must be a boolean"),
    (body(web_search=None), "input.web_search must be a boolean"),
    # output_format
    (body(output_format="jpg"), "input.output_format must be one of: jpeg, png"),
    (body(output_format="webp"), "input.output_format must be one of: jpeg, png"),
    (body(output_format="PNG"), "input.output_format must be one of: jpeg, png"),
    # prompt_optimize_mode
    (body(prompt_optimize_mode="fast"), "input.prompt_optimize_mode must be one of: standard"),
]


@pytest.mark.parametrize("b,msg", BAD_5, ids=[m[:40] for _, m in BAD_5])
def test_seedream_5_0_rejects(sim, b, msg):
    r = sim.request("POST", GEN5, b)
    assert r.status == 400, r
    e = r.json
    assert e == {"code": 400, "message": "Invalid request", "data": {"error": e["data"]["error"]}}
    assert e["data"]["error"].startswith(msg), e
    assert sim.stats()["tasks_created"] == 0


GOOD_5 = [
    body(),
    body(prompt="x"),
    body(prompt="x" * 5000),
    body(prompt="\u00e9" * 5000),              # 5000 characters, 10000 bytes
    body(prompt="\U0001F600" * 5000),         # characters, not UTF-16 units or bytes
    body(max_images=10),
    body(mode="text-to-image"),
    body(image_urls=["https://x.example/%d.png" % i for i in range(14)], **I2I),
    body(image_urls=["http://x.example/a.webp"], **I2I),
    body(image_urls=[]),                      # text-to-image may carry an empty list
    body(resolution="2K"), body(resolution="3K"),
    body(resolution="2048x2048"), body(resolution="2048X2048"), body(resolution="2048*2048"),
    body(resolution="2560x1440"), body(resolution="4096x4096"), body(resolution="1024x4096"),
    *[body(aspect_ratio=a) for a in ("1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9")],
    body(sequential_image_generation="disabled"), body(sequential_image_generation="auto"),
    body(web_search=True), body(web_search=False),
    body(output_format="jpeg"), body(output_format="png"),
    body(prompt_optimize_mode="standard"),
    top(request_type="async"), top(provider="auto"), top(provider="value"),
    top(provider="official"),
    top(request_type="callback", callback_url="https://hooks.example/cb"),
    top(request_type="callback", callback_url="http://127.0.0.1:9/cb?x=1"),
    top(request_type="async", callback_url="ignored when async"),
    # unknown fields anywhere are passed through and ignored
    dict(body(some_new_flag={"deep": [1, 2]}), extra_top="x"),
]


@pytest.mark.parametrize("b", GOOD_5)
def test_seedream_5_0_accepts(sim, b):
    r = sim.request("POST", GEN5, b)
    assert r.status == 200, r
    assert r.json["data"]["taskId"].startswith("task_")


BAD_45 = [
    (body(resolution="3K"), "input.resolution must be one of: 2K, 4K, or an explicit size"),
    (body(resolution="1K"), "input.resolution must be one of: 2K, 4K"),
    (without("max_images"), "Missing required field: input.max_images"),
    (body(max_images=11), "input.max_images must be an integer from 1 to 10"),
    (body(image_urls=["https://x.example/%d.png" % i for i in range(15)], **I2I),
     "input.image_urls must be an array of 1 to 14"),
    (body(**I2I), "Missing required field: input.image_urls"),
    (body(aspect_ratio="5:4"), "input.aspect_ratio must be one of"),
    (body(sequential_image_generation="x"), "input.sequential_image_generation must be"),
    (body(prompt="x" * 5001), "input.prompt must be a string of 1 to 5000 characters"),
    (body(prompt_optimize_mode="fast"), "input.prompt_optimize_mode must be one of: standard"),
    (top(request_type="callback"), "callback_url is required"),
]


@pytest.mark.parametrize("b,msg", BAD_45, ids=[m[:40] for _, m in BAD_45])
def test_seedream_4_5_rejects(sim, b, msg):
    r = sim.request("POST", GEN45, b)
    assert r.status == 400, r
    assert r.json["data"]["error"].startswith(msg), r


@pytest.mark.parametrize("b", [body(resolution="2K"), body(resolution="4K"),
                               body(resolution="4096x4096", aspect_ratio="21:9"),
                               # not documented for 4.5: ignored like any unknown field
                               body(web_search="whatever", output_format="bmp")])
def test_seedream_4_5_accepts(sim, b):
    assert sim.request("POST", GEN45, b).status == 200


@pytest.mark.parametrize("model", ["nano-banana", "flux-2"])
def test_pass_through_models_structural_checks_only(sim, model):
    path = "/api/v1/generateTask/" + model
    ok = {"input": {"prompt": "x", "any_field": [1, {"a": None}], "resolution": "whatever",
                    "max_images": "not checked"}}
    assert sim.request("POST", path, ok).status == 200
    r = sim.request("POST", path, {"input": {"any_field": 1}})
    assert r.status == 400 and "input.prompt" in r.json["data"]["error"]
    r = sim.request("POST", path, {"input": {"prompt": ""}})
    assert r.status == 400 and "input.prompt must be a non-empty string" in r.json["data"]["error"]
    r = sim.request("POST", path, {"prompt": "x"})
    assert r.status == 400 and "Missing required field: input" in r.json["data"]["error"]
    # the common top-level rules still apply
    r = sim.request("POST", path, {"request_type": "callback", "input": {"prompt": "x"}})
    assert r.status == 400 and "callback_url" in r.json["data"]["error"]


def test_pass_through_model_task_completes(sim):
    r = sim.request("POST", "/api/v1/generateTask/nano-banana",
                    {"input": {"prompt": "x", "aspect_ratio": "16:9"}})
    tid = r.json["data"]["taskId"]
    d = sim.wait(tid, model="nano-banana")
    assert d["state"] == "success" and d["resultJson"].count("/files/") == 1
