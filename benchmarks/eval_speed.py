"""Evaluation speed with the standard FID network: feature extraction (images/s) and a whole
`ganforge eval` (N samples of a checkpoint against the recipe's real images, cold and warm cache).

    OMP_NUM_THREADS=2 GANFORGE_DATA=../shared/data .venv/bin/python benchmarks/eval_speed.py \
        --checkpoint runs/dcgan-cats-XXXX --num 1000 [--bf16]

Without --checkpoint only the extraction speed is measured. --bf16 also extracts the real set under
bf16 autocast and reports the speed and how far FD/KID of the two halves of the real set move.
Needs the network (`ganforge metrics install`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from ganforge.data.folders import load_image_folder
from ganforge.eval.evaluator import Evaluator, default_metrics, evaluate_checkpoint
from ganforge.io.inference import load_for_inference
from ganforge.core.plugins import get_registry


def extraction_speed(extractor, images: torch.Tensor, rounds: int = 2) -> float:
    extractor.load()
    extractor(images[:2])  # warm-up
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for chunk in images.split(extractor.batch_size):
            extractor(chunk)
        best = min(best, time.perf_counter() - t0)
    return len(images) / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a run or checkpoint to evaluate end to end")
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--speed-images", type=int, default=100, help="images timed for the extraction speed")
    p.add_argument("--real", default=os.path.join(os.environ.get("GANFORGE_DATA", "../shared/data"), "grumpify-cats/grumpy"))
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or torch.get_num_threads())
    registry = get_registry()
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}

    real = load_image_folder(args.real, 64, progress=False)
    real = real.get_batch(torch.arange(len(real)))
    extractor = registry.build("feature_extractor", "inception-v3-fid")
    images = real[: args.speed_images]
    report["extract_images_per_s_fp32"] = round(extraction_speed(extractor, images), 2)
    print(json.dumps(report), flush=True)

    if args.bf16:
        from ganforge_metrics import maths

        with torch.inference_mode():
            f32 = torch.cat([extractor(c) for c in real.split(extractor.batch_size)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            report["extract_images_per_s_bf16"] = round(extraction_speed(extractor, images), 2)
            with torch.inference_mode():
                bf = torch.cat([extractor(c).float() for c in real.split(extractor.batch_size)])
        half = len(real) // 2
        for name, f in (("fp32", f32), ("bf16", bf)):
            report[f"halves_fd_{name}"] = round(maths.fid(f[:half], f[half:]), 4)
            report[f"halves_kid_{name}"] = round(maths.kid(f[:half], f[half:])["kid"], 6)
        report["bf16_max_abs_feature_diff"] = round(float((bf - f32).abs().max()), 4)
        print(json.dumps(report), flush=True)

    if args.checkpoint:
        loaded = load_for_inference(args.checkpoint, registry)
        weights = {"weights": str(extractor.path)}  # the installed network, found before the cache moves
        with tempfile.TemporaryDirectory() as cache:
            os.environ["GANFORGE_CACHE"] = cache  # cold: nothing cached yet
            t0 = time.perf_counter()
            evaluator = Evaluator(registry, default_metrics(registry, False), "inception-v3-fid", weights, progress=False)
            evaluator.load()
            evaluator.set_real(real, args.real)
            result = evaluate_checkpoint(evaluator, loaded, num=args.num, seed=0)
            cold = time.perf_counter() - t0
            # Warm: the real features come from the cache; everything else is as above.
            t1 = time.perf_counter()
            again = Evaluator(registry, default_metrics(registry, False), "inception-v3-fid", weights, progress=False)
            again.set_real(real, args.real)
            warm_real = time.perf_counter() - t1
            assert again.real_cached
        report[f"eval_{args.num}_vs_{len(real)}_cold_cache_s"] = round(cold, 1)
        report[f"eval_{args.num}_vs_{len(real)}_warm_cache_s"] = round(cold - evaluator.real_seconds + warm_real, 1)
        report["scores"] = {k: round(v, 5) for k, v in result.scores.items()}
        report["step"] = result.step
        report["seconds"] = result.seconds
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
