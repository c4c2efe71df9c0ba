#!/usr/bin/env python3
"""Generate images with Seedream 5.0 and save them.

    export APIXO_API_KEY=sk-...            # and APIXO_BASE_URL for a simulator
    python3 examples/python/generate.py "a cozy cyberpunk cafe" --max-images 2 --out out/

Against the local simulator (python3 sim/apixo_sim.py --time-scale 0.01):
    APIXO_API_KEY=sk-sim APIXO_BASE_URL=http://127.0.0.1:PORT/api/v1 \\
        python3 examples/python/generate.py "a lighthouse" --time-scale 0.01
"""

import argparse
import os
import sys

import apixo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prompt")
    ap.add_argument("--model", default="seedream-5-0")
    ap.add_argument("--max-images", type=int, default=1)
    ap.add_argument("--resolution", default="2K")
    ap.add_argument("--aspect-ratio", default="1:1")
    ap.add_argument("--format", dest="output_format", choices=("jpeg", "png"), default="jpeg")
    ap.add_argument("--out", default="out", help="directory for the images (default out/)")
    ap.add_argument("--timeout", type=float, default=300.0, help="overall seconds")
    ap.add_argument("--time-scale", type=float,
                    default=float(os.environ.get("APIXO_TIME_SCALE", "1.0")),
                    help="1.0 in production; the simulator's --time-scale otherwise")
    args = ap.parse_args()

    try:
        with apixo.Client(time_scale=args.time_scale) as client:
            task = client.generate(args.prompt, model=args.model, max_images=args.max_images,
                                   resolution=args.resolution, aspect_ratio=args.aspect_ratio,
                                   output_format=args.output_format, timeout=args.timeout)
            print(f"task {task.id}: {task.state} in {task.cost_time:.1f} s")
            for path in task.save(args.out):
                print(path)
    except apixo.TaskFailedError as exc:
        print(f"failed: {exc.fail_code}: {exc.fail_message}", file=sys.stderr)
        return 3
    except apixo.InvalidRequestError as exc:
        print(f"invalid request: {exc}", file=sys.stderr)
        return 2
    except apixo.Error as exc:
        print(f"{exc.code_name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
