"""One search step of Unforge (Burn) against the original PyTorch modules on the same
machine: the rosinality generator (256 px, channel multiplier 1) and Artifact-Eraser's Xception
at 256 px, batch 1, forward and backward to W+.

    .venv-ref/bin/python tools/bench/compare_torch.py --sources SOURCES [--unforge PATH]
    python3 tools/bench/compare_torch.py --sources SOURCES --device cuda --backend wgpu

SOURCES is laid out as for tools/fixtures/make_fixtures.py. On the CPU both use `--threads`;
on a GPU PyTorch runs on CUDA and Burn on wgpu (Vulkan), with each timed call synchronised.
Both sides time both forms of the modulated convolution, fused (per-sample weights) and
non-fused (rosinality's `fused=False`: style on the input, one shared convolution,
demodulation after), with the weights frozen as in a search. Prints the medians and the ratio
of Burn's non-fused step (what the search runs) to PyTorch's fastest form (both runs in this
one script, one after the other).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import make_fixtures as mf  # noqa: E402


def median_time(fn, steps, sync):
    fn()  # warm-up
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--unforge", default="target/release/unforge")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (PyTorch's side)")
    ap.add_argument("--backend", default="flex", help="flex or wgpu (Burn's side)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    g, det = mf.stylegan2(args.sources).to(dev), mf.xception(args.sources).to(dev)
    for p in list(g.parameters()) + list(det.parameters()):
        p.requires_grad_(False)
    latent = mf.keyed_normal("bench.latent", [1, 14, 512]).contiguous().to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    modulated = [m for m in g.modules() if hasattr(m, "fused") and hasattr(m, "demodulate")]

    def gen_forward():
        with torch.no_grad():
            g([latent], input_is_latent=True, randomize_noise=False)

    def forward():
        with torch.no_grad():
            torch.softmax(det(g([latent], input_is_latent=True, randomize_noise=False)[0]), 1)[:, 1]

    def gen_backward():
        w = latent.clone().requires_grad_(True)
        g([w], input_is_latent=True, randomize_noise=False)[0].mean().backward()
        w.grad.sum().item()

    def step():
        w = latent.clone().requires_grad_(True)
        p = torch.softmax(det(g([w], input_is_latent=True, randomize_noise=False)[0]), 1)[:, 1]
        (p ** 2).mean().backward()
        (w.detach() - 1e-3 * w.grad.sign()).sum().item()

    parts = [("generator_forward_s", gen_forward), ("forward_s", forward), ("generator_backward_s", gen_backward), ("step_s", step)]
    torch_times = {}
    for form, fused in [("fused", True), ("non_fused", False)]:
        for m in modulated:
            m.fused = fused
        torch_times[form] = {k: median_time(f, args.steps, sync) for k, f in parts}
    cmd = [args.unforge, "bench", "--json", "--steps", str(args.steps), "--backend", args.backend]
    # Burn's CPU backend runs on rayon's pool: the same thread count as PyTorch's.
    env = {**os.environ, "RAYON_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    burn_times = json.loads(out.stdout.strip().splitlines()[-1])

    where = torch.cuda.get_device_name() if dev.type == "cuda" else f"{args.threads} threads"
    print(f"one search step, batch 1, {where}, median of {args.steps} (torch {torch.__version__} on {args.device}, Burn on {args.backend})")
    print(f"{'':30s} {'Burn fused':>11s} {'Burn non-f.':>11s} {'torch fused':>11s} {'torch non-f.':>12s} {'Burn non-f. / torch fastest':>28s}")
    for key, label in [("generator_forward_s", "generator forward"), ("forward_s", "generator + detector forward"), ("generator_backward_s", "generator forward + backward"), ("step_s", "forward + backward + update")]:
        bf, bn = burn_times["fused"][key], burn_times["non_fused"][key]
        tf, tn = torch_times["fused"][key], torch_times["non_fused"][key]
        print(f"{label:30s} {bf:10.3f}s {bn:10.3f}s {tf:10.3f}s {tn:11.3f}s {bn / min(tf, tn):27.2f}x")


if __name__ == "__main__":
    main()
