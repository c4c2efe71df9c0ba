"""Calls a type checker must reject: each line marked "# rejected" is one mistake.
tests/test_typing.py asserts that mypy and basedpyright report exactly those lines."""

from __future__ import annotations

import apixo

client = apixo.Client()
client.generate("x", max_imgaes=2)  # rejected
client.generate("x", max_images="2")  # rejected
client.generate("x", resolution="2k")  # rejected
client.generate("x", output_format="jpg")  # rejected
client.generate("x", aspect_ratio="16/9")  # rejected
client.submit("x", provider="cheap")  # rejected
client.submit("x", on_done=print).upper()  # rejected
client.wait(42)  # rejected
