"""Vectorised fixed-step RK4 simulation of the mechanistic model over many patients.

Three ways to integrate the same :class:`~celltrial.kinetics.mechanistic.CD7Model`:

- ``backend="numpy"``: classical RK4 with step ``dt`` (0.05 day default), every operation
  vectorised over patients (patients processed in cache-sized chunks), float64 by default;
- ``backend="jax"``: the same RK4 compiled with ``jax.jit`` (``lax.scan`` over the
  segments between sample/dose days, ``lax.fori_loop`` over steps); runs on the GPU when
  JAX sees one (float32 default there) and on the CPU otherwise (float64 default);
- :func:`solve_ivp_reference`: a per-patient ``scipy.integrate.solve_ivp`` loop, the
  reference for agreement tests and the baseline of the benchmark.

Times are study days, day 0 = first infusion. A state "at day d" is the state just before
any infusion given at day d (a pre-dose sample). Infusions add CAR-T effectors (cells/uL)
at whole steps. After every step, cell populations below ``floor`` (the extinction floor,
:data:`~celltrial.kinetics.parameters.EXTINCTION_FLOOR`) are set to zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from celltrial.errors import invalid
from celltrial.kinetics.mechanistic import CELL_STATES, STATES, CD7Model
from celltrial.kinetics.parameters import EXTINCTION_FLOOR

Backend = Literal["numpy", "jax"]


@dataclass(frozen=True)
class Infusion:
    """CAR-T effectors added at ``day`` (cells/uL of blood, one value per patient)."""

    day: float
    cells_per_ul: np.ndarray


@dataclass(frozen=True)
class Trajectory:
    """States at the requested days: ``states[patient, time, state]`` in :data:`STATES` order."""

    days: np.ndarray
    states: np.ndarray
    backend: str
    dtype: str

    def state(self, name: str) -> np.ndarray:
        """One state over time, shape (n_patients, n_times)."""
        return self.states[..., STATES.index(name)]


@dataclass(frozen=True)
class _Plan:
    """Segments between consecutive event steps (sample or dose days)."""

    lengths: np.ndarray          # steps in each segment, (n_seg,)
    doses: np.ndarray            # effectors added at each segment start, (n_seg, n_patients)
    out_index: np.ndarray        # for each requested day, index into [y0, end of seg 0, ...]
    dt: float


def _plan(days: Sequence[float], infusions: Sequence[Infusion], n: int, dt: float) -> _Plan:
    if not dt > 0:
        raise invalid("dt", dt, "a positive step in days")
    req = np.asarray(days, dtype=float)
    if req.ndim != 1 or req.size == 0 or (req < 0).any():
        raise invalid("days", list(days), "a non-empty list of study days >= 0")

    def to_step(day: float, what: str) -> int:
        step = round(day / dt)
        if abs(step * dt - day) > 1e-9 * max(1.0, abs(day)):
            raise invalid(what, day, f"a multiple of the step dt = {dt}")
        return step

    out_steps = [to_step(float(d), "days") for d in req]
    dose_steps: dict[int, np.ndarray] = {}
    for inf in infusions:
        amount = np.broadcast_to(np.asarray(inf.cells_per_ul, dtype=float), (n,))
        if inf.day < 0:
            raise invalid("infusion day", inf.day, ">= 0")
        s = to_step(inf.day, "infusion day")
        dose_steps[s] = dose_steps.get(s, np.zeros(n)) + amount
    end = max(out_steps)
    bounds = sorted({0, end, *out_steps, *(s for s in dose_steps if s < end)})
    lengths = np.diff(bounds).astype(np.int64)
    doses = np.stack([dose_steps.get(s, np.zeros(n)) for s in bounds[:-1]]) if len(bounds) > 1 \
        else np.zeros((0, n))
    position = {s: i for i, s in enumerate(bounds)}
    return _Plan(lengths, doses, np.array([position[s] for s in out_steps]), dt)


def default_dtype(backend: Backend) -> str:
    """float32 for JAX on a GPU, float64 otherwise."""
    if backend == "jax":
        import jax

        return "float32" if jax.default_backend() == "gpu" else "float64"
    return "float64"


def _default_chunk(backend: Backend) -> int:
    """Patients per batch: cache-sized on CPUs (8192 numpy; 16384 per JAX CPU device, found
    fastest on the 2-core reference machine), memory-sized on a GPU (2**21 = 2.1 million
    patients, about 0.6 GB of float32 state and outputs)."""
    if backend == "numpy":
        return 8192
    import jax

    if jax.default_backend() == "gpu":
        return 2 ** 21
    return 16384 * len(jax.local_devices())


def simulate(model: CD7Model, params: Mapping[str, np.ndarray], y0: np.ndarray,
             days: Sequence[float], *, infusions: Sequence[Infusion] = (), dt: float = 0.05,
             backend: Backend = "numpy", dtype: str | None = None,
             floor: float = EXTINCTION_FLOOR, chunk: int | None = None) -> Trajectory:
    """Integrate ``n`` patients with fixed-step RK4 and return their states at ``days``.

    ``params``: per-patient parameter arrays (see :func:`~celltrial.kinetics.parameters.
    draw_parameters`); ``y0``: states at day 0, shape (n, 6); ``infusions``: CAR-T doses;
    ``chunk``: patients per batch (default :func:`_default_chunk`: cache-sized on CPUs,
    2**21 on a GPU so that 10^7 patients run in five chunks).
    """
    y0 = np.asarray(y0, dtype=float)
    if y0.ndim != 2 or y0.shape[1] != len(STATES):
        raise invalid("y0", y0.shape, f"an array of shape (n_patients, {len(STATES)})")
    n = y0.shape[0]
    if backend not in ("numpy", "jax"):
        raise invalid("backend", backend, "'numpy' or 'jax'")
    dtype = dtype or default_dtype(backend)
    if dtype not in ("float32", "float64"):
        raise invalid("dtype", dtype, "'float32' or 'float64'")
    plan = _plan(days, infusions, n, dt)
    rates_all = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,))
                 for k, v in model.rates(params).items()}
    run = _run_numpy if backend == "numpy" else _run_jax
    if backend == "numpy" and dtype == "float64" and n <= SCALAR_MAX:
        run = _run_scalar
    size = chunk or _default_chunk(backend)
    out = np.empty((n, plan.out_index.size, len(STATES)), dtype=dtype)
    for start in range(0, n, size):
        sl = slice(start, min(start + size, n))
        rates = {k: v[sl] for k, v in rates_all.items()}
        ends = run(model, rates, y0[sl], plan, plan.doses[:, sl], dtype, floor)
        out[sl] = np.transpose(ends[plan.out_index], (2, 0, 1))
    return Trajectory(np.asarray(days, dtype=float), out, backend, dtype)


#: Up to this many patients, numpy float64 runs integrate each patient with Python floats
#: (:func:`_run_scalar`): a cohort of 3 spends its time in numpy's per-call overhead, not in
#: arithmetic. The numbers are the same (below).
SCALAR_MAX = 16


def _run_scalar(model: CD7Model, rates: Mapping[str, np.ndarray], y0: np.ndarray,
                plan: _Plan, doses: np.ndarray, dtype: str, floor: float) -> np.ndarray:
    """:func:`_run_numpy` for a few patients in float64, one patient at a time with Python
    floats: the same ``model.rhs``, the same RK4 expressions in the same order, and IEEE 754
    double arithmetic (each +, -, *, / correctly rounded in both), so the states are the
    same to the last bit (a test). A division by zero, which numpy turns into inf/nan, hands
    the call to :func:`_run_numpy`."""
    try:
        return _scalar_states(model, rates, y0, plan, doses, floor)
    except ZeroDivisionError:
        return _run_numpy(model, rates, y0, plan, doses, dtype, floor)


def _scalar_states(model: CD7Model, rates: Mapping[str, np.ndarray], y0: np.ndarray,
                   plan: _Plan, doses: np.ndarray, floor: float) -> np.ndarray:
    n = y0.shape[0]
    out = np.empty((len(plan.lengths) + 1, len(STATES), n))
    h = float(plan.dt)
    h2, h6 = h / 2, h / 6
    cells = [i for i, c in enumerate(CELL_STATES) if c]
    rhs = model.rhs
    lengths = [int(v) for v in plan.lengths]
    for p in range(n):
        r = {k: float(v[p]) for k, v in rates.items()}
        y = [float(v) for v in y0[p]]
        out[0, :, p] = y
        for s, length in enumerate(lengths):
            y[0] = y[0] + float(doses[s][p])
            for _ in range(length):
                k1 = rhs(tuple(y), r)
                k2 = rhs(tuple(a + h2 * b for a, b in zip(y, k1)), r)
                k3 = rhs(tuple(a + h2 * b for a, b in zip(y, k2)), r)
                k4 = rhs(tuple(a + h * b for a, b in zip(y, k3)), r)
                y = [a + h6 * (b1 + 2 * b2 + 2 * b3 + b4)
                     for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4)]
                for i in cells:
                    if y[i] < floor:
                        y[i] = 0.0
            out[s + 1, :, p] = y
    return out


def _run_numpy(model: CD7Model, rates: Mapping[str, np.ndarray], y0: np.ndarray,
               plan: _Plan, doses: np.ndarray, dtype: str, floor: float) -> np.ndarray:
    """States at every segment boundary, shape (n_seg + 1, 6, n)."""
    r = {k: v.astype(dtype) for k, v in rates.items()}
    y = [y0[:, i].astype(dtype) for i in range(len(STATES))]
    h = np.asarray(plan.dt, dtype=dtype)
    h2, h6 = h / 2, h / 6
    cells = [i for i, c in enumerate(CELL_STATES) if c]
    zero = np.asarray(0, dtype=dtype)
    ends = [np.stack(y)]
    for length, dose in zip(plan.lengths, doses, strict=True):
        y[0] = y[0] + dose.astype(dtype)
        for _ in range(int(length)):
            k1 = model.rhs(tuple(y), r)
            k2 = model.rhs(tuple(a + h2 * b for a, b in zip(y, k1, strict=True)), r)
            k3 = model.rhs(tuple(a + h2 * b for a, b in zip(y, k2, strict=True)), r)
            k4 = model.rhs(tuple(a + h * b for a, b in zip(y, k3, strict=True)), r)
            y = [a + h6 * (b1 + 2 * b2 + 2 * b3 + b4)
                 for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)]
            for i in cells:
                y[i] = np.where(y[i] < floor, zero, y[i])
        ends.append(np.stack(y))
    return np.stack(ends)


_JAX_CACHE: dict[tuple[Any, ...], Callable[..., Any]] = {}


def _jax_fn(model: CD7Model, dt: float, floor: float, dtype: str,
            block: int) -> Callable[..., Any]:
    """The compiled integrator; ``block`` RK4 steps are unrolled in one loop iteration so
    that XLA fuses them into one kernel (the state stays in registers between steps)."""
    key = (model, dt, floor, dtype, block)
    if key in _JAX_CACHE:
        return _JAX_CACHE[key]
    import jax
    import jax.numpy as jnp
    from jax import lax

    cells = tuple(i for i, c in enumerate(CELL_STATES) if c)

    def step(_: Any, carry: tuple[tuple[Any, ...], dict[str, Any]]) -> Any:
        y, r = carry
        h = jnp.asarray(dt, dtype=dtype)
        h2, h6 = h / 2, h / 6
        k1 = model.rhs(y, r)
        k2 = model.rhs(tuple(a + h2 * b for a, b in zip(y, k1, strict=True)), r)
        k3 = model.rhs(tuple(a + h2 * b for a, b in zip(y, k2, strict=True)), r)
        k4 = model.rhs(tuple(a + h * b for a, b in zip(y, k3, strict=True)), r)
        new = [a + h6 * (b1 + 2 * b2 + 2 * b3 + b4)
               for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)]
        for i in cells:
            new[i] = jnp.where(new[i] < floor, jnp.zeros_like(new[i]), new[i])
        return tuple(new), r

    def run(r: dict[str, Any], y0: Any, lengths: Any, doses: Any) -> Any:
        def segment(y: tuple[Any, ...], xs: tuple[Any, Any]) -> Any:
            length, dose = xs
            y = (y[0] + dose,) + y[1:]
            def steps(i: Any, carry: Any) -> Any:
                for _ in range(block):
                    carry = step(i, carry)
                return carry

            y, _ = lax.fori_loop(0, length // block, steps, (y, r))
            return y, jnp.stack(y)

        y = tuple(y0[i] for i in range(len(STATES)))
        _, ends = lax.scan(segment, y, (lengths, doses))
        return ends

    # one device: jit; several (e.g. CPU cores exposed as devices with
    # XLA_FLAGS=--xla_force_host_platform_device_count=2, or several GPUs): pmap over them
    fn = jax.jit(run) if len(jax.local_devices()) == 1 else \
        jax.pmap(run, in_axes=(0, 0, None, 0))
    _JAX_CACHE[key] = fn
    return fn


UNROLL_MAX = {"gpu": 20, "cpu": 1}
"""RK4 steps unrolled per loop iteration, at most: on a GPU one day at dt = 0.05, so that a
day's 20 steps fuse into one kernel with the state in registers (memory traffic per
patient-step falls 20-fold; not measured here: no GPU in this task); on the CPU none
(unrolling measured 2.3x slower on the 2-core machine)."""


def _block(lengths: np.ndarray) -> int:
    """Largest divisor of every segment length that is <= the platform's unroll maximum."""
    import jax

    cap = UNROLL_MAX.get(jax.default_backend(), 1)
    g = int(np.gcd.reduce(lengths)) if lengths.size else 1
    return max(d for d in range(1, min(g, cap) + 1) if g % d == 0) if g else 1


def _run_jax(model: CD7Model, rates: Mapping[str, np.ndarray], y0: np.ndarray, plan: _Plan,
             doses: np.ndarray, dtype: str, floor: float) -> np.ndarray:
    import jax

    with jax.enable_x64(dtype == "float64"):
        block = _block(plan.lengths)
        fn = _jax_fn(model, plan.dt, floor, dtype, block)
        r = {k: v.astype(dtype) for k, v in rates.items()}
        y0t = np.ascontiguousarray(y0.T.astype(dtype))
        lengths, doses = plan.lengths.astype(np.int32), doses.astype(dtype)
        k = len(jax.local_devices())
        if k == 1:
            ends = np.asarray(fn(r, y0t, lengths, doses))
        else:
            n = y0t.shape[1]
            m = -(-n // k)

            def split(a: np.ndarray) -> np.ndarray:     # (..., n) -> (k, ..., m), padded
                pad = np.concatenate([a, np.repeat(a[..., -1:], k * m - n, axis=-1)], axis=-1)
                return np.moveaxis(pad.reshape(*a.shape[:-1], k, m), -2, 0)

            out = np.asarray(fn({name: split(v) for name, v in r.items()}, split(y0t),
                                lengths, split(doses)))
            ends = np.moveaxis(out, 0, -2).reshape(*out.shape[1:-1], k * m)[..., :n]
    return np.concatenate([y0t[None], ends], axis=0)


def solve_ivp_reference(model: CD7Model, params: Mapping[str, np.ndarray], y0: np.ndarray,
                        days: Sequence[float], *, infusions: Sequence[Infusion] = (),
                        method: str = "LSODA", rtol: float = 1e-8,
                        atol: float = 1e-10) -> Trajectory:
    """Per-patient ``scipy.integrate.solve_ivp`` of the same model (no extinction floor).

    Integrates each patient separately from segment to segment (infusions are added at
    their day), with adaptive steps at tolerances ``rtol``/``atol``.
    """
    from scipy.integrate import solve_ivp

    y0 = np.asarray(y0, dtype=float)
    n = y0.shape[0]
    plan = _plan(days, infusions, n, 1.0 / 1024)
    bounds = np.concatenate([[0], np.cumsum(plan.lengths)]) * plan.dt
    rates = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,))
             for k, v in model.rates(params).items()}
    out = np.empty((n, plan.out_index.size, len(STATES)))
    for j in range(n):
        r = {k: v[j] for k, v in rates.items()}

        def f(_: float, y: np.ndarray, r: dict[str, float] = r) -> np.ndarray:
            return np.array(model.rhs(tuple(y), r))

        y = y0[j].copy()
        ends = [y.copy()]
        for k, length in enumerate(plan.lengths):
            y[0] += plan.doses[k, j]
            if length > 0:
                sol = solve_ivp(f, (bounds[k], bounds[k + 1]), y, method=method, rtol=rtol,
                                atol=atol)
                if not sol.success:
                    raise invalid("solve_ivp", sol.message, "a successful integration")
                y = sol.y[:, -1].copy()
            ends.append(y.copy())
        out[j] = np.asarray(ends)[plan.out_index]
    return Trajectory(np.asarray(days, dtype=float), out, f"scipy-{method}", "float64")
