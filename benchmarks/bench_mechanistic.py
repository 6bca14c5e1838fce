"""Benchmark: the mechanistic CD7 CAR-T model, one year per patient, outputs at the schedule days.

Backends: numpy (vectorised over patients), JAX jit on the CPU (one XLA device per core: this
script sets ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` before importing
JAX, and the engine pmaps over the devices), JAX on a GPU when one is present, and the
per-patient ``scipy.integrate.solve_ivp`` loop of the same model (LSODA, rtol 1e-6, atol
1e-9 — the accuracy class of RK4 at dt = 0.05 d) as the anchor.

Figures: patient-years/s, achieved GFLOP/s from the hand count
(:data:`celltrial.kinetics.mechanistic.FLOPS_PER_STEP` = 235 flops per patient-step, 7,300
steps per patient-year), the ratio to solve_ivp, and float32-vs-float64 agreement per
patient with and without the extinction floor. On a GPU it also measures the FP32 FMA
ceiling (a long chain of fused multiply-adds) and reports the fraction reached.

Usage: .venv/bin/python benchmarks/bench_mechanistic.py [--sizes 1000,100000,1000000]
       [--numpy-max 1000000] [--ivp 200] [--json OUT] [--virtual-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CORES = os.cpu_count() or 1
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={CORES}")

import numpy as np  # noqa: E402

from celltrial.kinetics.engine import Infusion, simulate, solve_ivp_reference  # noqa: E402
from celltrial.kinetics.mechanistic import (  # noqa: E402
    FLOPS_PER_STEP, CD7Model, effectors_per_ul, initial_state,
)
from celltrial.kinetics.parameters import draw_parameters  # noqa: E402

DAYS = [0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365]     # cd7-aml-mll kinetics days
DT = 0.05
STEPS = round(365 / DT)


def cohort(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    p = draw_parameters(n, rng)
    y0 = initial_state(p, marrow_blast_pct=rng.uniform(1, 85, n))
    dose = rng.choice([5e5, 1e6, 2e6, 4e6], size=n)
    inf = [Infusion(0, effectors_per_ul(0.3 * dose, p["blood_fraction"])),
           Infusion(1, effectors_per_ul(0.7 * dose, p["blood_fraction"]))]
    return p, y0, inf


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run(backend: str, dtype: str, n: int, floor: float | None = None):
    p, y0, inf = cohort(n)
    kw = {} if floor is None else {"floor": floor}
    if backend == "jax":   # compile outside the timing (same shapes: one chunk of the run)
        simulate(CD7Model(), p, y0, DAYS, infusions=inf, backend="jax", dtype=dtype, **kw)
    tr, sec = timed(lambda: simulate(CD7Model(), p, y0, DAYS, infusions=inf, backend=backend,
                                     dtype=dtype, **kw))
    return tr, sec


def fma_ceiling_tflops() -> float | None:
    """Measured FP32 FMA throughput of the GPU in TFLOP/s (None on a CPU): 4 independent
    chains of 512 dependent FMAs per element, unrolled so that XLA fuses them into one
    kernel (compute-bound: 4 KiB of FMA per 16 B of memory traffic), 2 flops per FMA."""
    import jax
    import jax.numpy as jnp

    if jax.default_backend() != "gpu":
        return None
    n, chain_len, repeats = 2 ** 24, 512, 8

    @jax.jit
    def chains(x):
        a, b = jnp.float32(0.999), jnp.float32(0.001)
        v = [x, x + 1, x + 2, x + 3]
        for _ in range(chain_len):
            v = [vi * a + b for vi in v]
        return v[0] + v[1] + v[2] + v[3]

    x = jnp.ones(n, jnp.float32)
    jax.block_until_ready(chains(x))
    t = time.perf_counter()
    for _ in range(repeats):
        x = chains(x)
    jax.block_until_ready(x)
    sec = time.perf_counter() - t
    return 2 * 4 * chain_len * n * repeats / sec / 1e12


def agreement(n: int) -> dict[str, float]:
    """Fraction of patients whose float32 run (JAX) differs from float64 (numpy-identical JAX
    float64) beyond |d| <= 2e-3 |x64| + 1e-3 at any state and sample day."""
    out = {}
    for label, floor in (("with floor 1e-6", None), ("without floor", 0.0)):
        a, _ = run("jax", "float64", n, floor)
        b, _ = run("jax", "float32", n, floor)
        err = np.abs(b.states.astype(float) - a.states)
        bad = ~(err <= 2e-3 * np.abs(a.states) + 1e-3).all(axis=(1, 2))
        rel = (err / (np.abs(a.states) + 1e-3)).max(axis=(1, 2))
        out[label] = {"patients": n, "out_of_tolerance": int(bad.sum()),
                      "fraction": float(bad.mean()), "median_max_rel": float(np.median(rel)),
                      "p99_max_rel": float(np.quantile(rel, 0.99))}
    return out


def virtual_studies(n: int = 40, seed: int = 1) -> list[dict]:
    """Seconds to generate a whole virtual study of ``n`` screened patients, per protocol."""
    from celltrial.conduct import simulate_study
    from celltrial.protocols import list_ids, load

    rows = []
    for study_id in list_ids():
        protocol = load(study_id)
        data, sec = timed(lambda protocol=protocol: simulate_study(protocol, n, seed))
        rows.append({"study": study_id, "screened": n, "seconds": sec,
                     "records": int(sum(len(f) for f in data.values()))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--numpy-max", type=int, default=1_000_000)
    ap.add_argument("--ivp", type=int, default=200)
    ap.add_argument("--agreement", type=int, default=100_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--virtual-only", action="store_true",
                    help="only time the 40-patient virtual study of each protocol")
    args = ap.parse_args()
    if args.virtual_only:
        rows = virtual_studies()
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
        return
    import jax

    sizes = [int(s) for s in args.sizes.split(",")]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    result: dict = {"machine": f"{model}, {CORES} cores", "jax_backend": jax.default_backend(),
                    "jax_devices": len(jax.local_devices()), "date": time.strftime("%Y-%m-%d"),
                    "command": " ".join([".venv/bin/python", *sys.argv]),
                    "flops_per_patient_step": FLOPS_PER_STEP, "steps": STEPS, "rows": []}
    # anchor: per-patient solve_ivp loop
    p, y0, inf = cohort(args.ivp)
    _, sec = timed(lambda: solve_ivp_reference(CD7Model(), p, y0, DAYS, infusions=inf,
                                               rtol=1e-6, atol=1e-9))
    ivp_rate = args.ivp / sec
    result["rows"].append({"backend": "scipy solve_ivp LSODA loop", "dtype": "float64",
                           "patients": args.ivp, "seconds": sec, "patient_years_s": ivp_rate})
    print(f"solve_ivp: {ivp_rate:.1f} patient-years/s", flush=True)
    plan = [("numpy", "float64"), ("jax", "float32"), ("jax", "float64")]
    for backend, dtype in plan:
        for n in sizes:
            if backend == "numpy" and n > args.numpy_max:
                continue
            _, sec = run(backend, dtype, n)
            rate = n / sec
            row = {"backend": f"{backend} ({jax.default_backend()})" if backend == "jax"
                   else backend, "dtype": dtype, "patients": n, "seconds": sec,
                   "patient_years_s": rate, "gflops": n * STEPS * FLOPS_PER_STEP / sec / 1e9,
                   "x_solve_ivp": rate / ivp_rate}
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    ceiling = fma_ceiling_tflops()
    result["fp32_fma_ceiling_tflops"] = ceiling
    result["agreement"] = agreement(args.agreement)
    result["virtual_studies"] = virtual_studies()
    print(json.dumps(result["agreement"], indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
