#!/usr/bin/env python3
"""Run a batch of prompts concurrently on one asyncio event loop.

    python3 examples/python/async_batch.py prompts.txt --out out/     # one prompt a line
    python3 examples/python/async_batch.py --demo 20 --time-scale 0.01

No thread per task: the client's engine thread does the I/O, its limiter keeps the batch
inside the account's budget (requests per minute, concurrent tasks), and results come back
to the loop through call_soon_threadsafe.
"""

import argparse
import asyncio
import os
import sys
import time

import apixo


async def run(client: apixo.Client, prompts, out: str, max_images: int):
    async def one(i: int, prompt: str):
        try:
            task = await client.agenerate(prompt, max_images=max_images, tag=f"line-{i + 1}")
        except apixo.TaskFailedError as exc:
            return i, prompt, f"failed {exc.fail_code}", []
        except apixo.Error as exc:
            return i, prompt, exc.code_name, []
        # downloading blocks: run it beside the loop rather than on it
        paths = await asyncio.get_running_loop().run_in_executor(None, task.save, out) \
            if out else []
        return i, prompt, f"ok {task.id}", paths

    return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="prompts, one a line")
    ap.add_argument("--demo", type=int, default=0, help="generate N demo prompts instead")
    ap.add_argument("--max-images", type=int, default=1)
    ap.add_argument("--out", default="", help="save results here (default: do not download)")
    ap.add_argument("--time-scale", type=float,
                    default=float(os.environ.get("APIXO_TIME_SCALE", "1.0")))
    args = ap.parse_args()
    if args.file:
        with open(args.file) as f:
            prompts = [line.strip() for line in f if line.strip()]
    else:
        prompts = [f"demo picture number {i + 1}" for i in range(args.demo)]
    if not prompts:
        ap.error("no prompts: give a file or --demo N")

    start = time.monotonic()
    with apixo.Client(time_scale=args.time_scale) as client:
        results = asyncio.run(run(client, prompts, args.out, args.max_images))
    ok = 0
    for i, prompt, outcome, paths in results:
        ok += outcome.startswith("ok")
        print(f"{i + 1:4d} {outcome}  {prompt[:50]}" + (f"  -> {len(paths)} file(s)" if paths else ""))
    print(f"{ok}/{len(prompts)} succeeded in {time.monotonic() - start:.1f} s")
    return 0 if ok == len(prompts) else 1


if __name__ == "__main__":
    sys.exit(main())
