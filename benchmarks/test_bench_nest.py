"""Engine vs NEST, one thread each, on the same networks (same synapses, same duration).

1. Brunel's balanced network (2000; NEST's ``brunel_delta_nest``): NE = 8,000 excitatory
   and NI = 2,000 inhibitory LIF neurons, each with CE = 800 excitatory and CI = 200
   inhibitory inputs (fan-in 1,000, drawn once and given to both simulators), J = 0.1 mV,
   g = 5, delay 1.5 ms, resolution h = 0.1 ms (one engine tick), τm = 20 ms, θ = 20 mV,
   external Poisson drive at η = 2 × the threshold rate (λ = 2 events of J per neuron
   per step). NEST: ``iaf_psc_delta`` (V ← V·e^(−h/τm) + Σ J, spike if V ≥ θ, V ← 0,
   t_ref = 0), double precision, drive by ``poisson_generator``. Engine: the same
   update with du = full decay (u = a each tick) and dv = 1 − e^(−h/τm) — float32 in
   ``float`` numerics (spike if v > θ), 12-bit decay and integer weights in ``loihi``
   numerics (J = 2 units, θ = 400); drive: one input neuron per target firing with
   p = λ/(1+λ) per tick at weight J·(1+λ) (mean and variance of the Poisson drive).
   The spikes cannot be identical (float32 vs double, Bernoulli vs Poisson drive,
   a chaotic network): the rates are compared and both printed.
2. The random input → LIF layer of ``test_bench_random`` (fan-out 100, 20k → 100k),
   1 tick = 1 ms: NEST ``iaf_psc_delta`` with τm from dv (e^(−1/τm) = 1 − dv/4096),
   θ = vth, weights in the same units, inputs as ``spike_generator``; engine in loihi
   numerics. Same input spikes; spike counts compared.

Events = recurrent (or input-layer) synaptic events: spikes × out-degree, counted
the same way for both; time = the simulation call only (NEST ``Simulate``, engine
``simulate`` on a flattened graph), CPU seconds of this process (the machine is
shared: wall time measures the neighbours); Brunel: the least of 2 NEST and 5 engine
runs (the same work spread by up to 60 % between runs here), the rest medians. NEST runs in a spawned child
process: its OpenMP runtime and numba's cannot share one (ResetKernel crashes once
numba's threading layer is up). Prints a table and updates bench-results.json.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import multiprocessing
import time

import numba
import numpy as np
import pytest

from benchmarks.common import median_time, min_time, random_network, update_results
from benchmarks.test_bench_random import scatter_bound
from sim.engine.flatgraph import flatten
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.catalog import cuba
from sim.neurons.input import Input

pytestmark = pytest.mark.bench
if importlib.util.find_spec("nest") is None:                  # not imported here: see the module doc
    pytest.skip("nest-simulator is not installed (make install installs the bench extra)", allow_module_level=True)

NE, NI, CE, CI = 8000, 2000, 800, 200
H, TAU_M, THETA, J, G, DELAY_MS, LAM = 0.1, 20.0, 20.0, 0.1, 5.0, 1.5, 2.0
T_MS = 300.0
DELAY = int(round(DELAY_MS / H))
DV_F = 1.0 - np.exp(-H / TAU_M)
CPU = time.process_time


def brunel_synapses(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) global indices: every neuron gets CE distinct excitatory and CI distinct inhibitory sources, no autapses."""
    rng = np.random.default_rng(seed)
    n = NE + NI
    pre = np.empty((n, CE + CI), np.int64)
    for i in range(n):
        e = rng.choice(NE - (i < NE), CE, replace=False)
        e[e >= i] += i < NE                                   # skip i itself
        k = rng.choice(NI - (i >= NE), CI, replace=False)
        k[k >= i - NE] += i >= NE
        pre[i, :CE], pre[i, CE:] = e, NE + k
    post = np.repeat(np.arange(n), CE + CI)
    return pre.ravel(), post


def _csr(pre: np.ndarray, post: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((post, pre))
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=indptr[1:])
    return indptr, post[order]


def brunel_graph(numerics: str, pre: np.ndarray, post: np.ndarray, ticks: int) -> AerGraph:
    """The network as an AER graph: input 'ext' (one driver per neuron), LIF 'exc', 'inh', four recurrent projections."""
    n = NE + NI
    loihi = numerics == "loihi"
    if loihi:                                                  # 1 unit = J/2; θ = 400 units
        w_e, w_i, w_x, vth, du, dv = 2, -2 * int(G), int(2 * (1 + LAM)), 400, 4095, int(round(4096 * DV_F))
    else:
        w_e, w_i, w_x, vth, du, dv = J, -G * J, J * (1 + LAM), THETA, 1.0, DV_F
    wdt = np.int16 if loihi else np.float32
    lif = cuba(numerics, du, dv, vth)
    pops = (Population("ext", n, Input()), Population("exc", NE, lif), Population("inh", NI, lif))
    projs = [Projection("ext_exc", "ext", "exc", np.r_[np.arange(NE + 1), np.full(NI, NE)], np.arange(NE),
                        np.full(NE, w_x, wdt)),
             Projection("ext_inh", "ext", "inh", np.r_[np.zeros(NE, np.int64), np.arange(NI + 1)], np.arange(NI),
                        np.full(NI, w_x, wdt))]
    for src, lo, hi, w in (("exc", 0, NE, w_e), ("inh", NE, n, w_i)):
        for dst, plo, phi in (("exc", 0, NE), ("inh", NE, n)):
            m = (pre >= lo) & (pre < hi) & (post >= plo) & (post < phi)
            indptr, idx = _csr(pre[m] - lo, post[m] - plo, hi - lo)
            projs.append(Projection(f"{src}_{dst}", src, dst, indptr, idx, np.full(len(idx), w, wdt), delay=DELAY))
    return AerGraph(numerics, pops, tuple(projs), None, ticks)


def run_nest_brunel(pre: np.ndarray, post: np.ndarray, seed: int = 1) -> tuple[float, np.ndarray, float]:
    """CPU seconds of Simulate(T_MS), spike count per neuron, build seconds."""
    import nest
    nest.verbosity = nest.VerbosityLevel.ERROR
    n = NE + NI
    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": H, "local_num_threads": 1, "rng_seed": seed})
    nodes = nest.Create("iaf_psc_delta", n, {"tau_m": TAU_M, "V_th": THETA, "V_reset": 0.0, "E_L": 0.0, "V_m": 0.0,
                                             "t_ref": 0.0, "C_m": 1.0})
    drive = nest.Create("poisson_generator", 1, {"rate": LAM / H * 1000.0})
    rec = nest.Create("spike_recorder")
    w = np.where(pre < NE, J, -G * J)
    first = nodes[0].global_id
    nest.Connect(pre + first, post + first, "one_to_one", {"synapse_model": "static_synapse", "weight": w,
                                                           "delay": np.full(len(w), DELAY_MS)})
    nest.Connect(drive, nodes, "all_to_all", {"weight": J, "delay": H})
    nest.Connect(nodes, rec)
    nest.Simulate(H)                                           # prepare: connection infrastructure, not timed
    build = time.perf_counter() - t0
    c0 = CPU()
    nest.Simulate(T_MS)
    cpu = CPU() - c0
    senders = np.asarray(rec.get("events")["senders"]) - first
    return cpu, np.bincount(senders, minlength=n), build


def run_nest_layer(g: AerGraph, x: np.ndarray) -> tuple[float, int]:
    """The random input → LIF layer in NEST at 1 ms resolution: CPU seconds of Simulate, output spike count."""
    import nest
    nest.verbosity = nest.VerbosityLevel.ERROR
    pr, out = g.projections[0], g.populations[1]
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 1.0, "local_num_threads": 1})
    tau = -1.0 / np.log(1 - out.model.dv / 4096)
    nodes = nest.Create("iaf_psc_delta", out.size, {"tau_m": tau, "V_th": float(out.model.vth), "V_reset": 0.0, "E_L": 0.0,
                                                    "V_m": 0.0, "t_ref": 0.0, "C_m": 1.0})
    t_idx, i_idx = np.nonzero(x)
    gens = nest.Create("spike_generator", pr.n_pre)
    times = [[] for _ in range(pr.n_pre)]
    for t, i in zip(t_idx.tolist(), i_idx.tolist()):
        times[i].append(float(t + 1))                          # tick t ↦ t + 1 ms (NEST spike times are > 0)
    gens.set([{"spike_times": s} for s in times])
    rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
    nest.Connect(gens[0].global_id + rows, nodes[0].global_id + pr.indices.astype(np.int64), "one_to_one",
                 {"weight": pr.weights.astype(np.float64), "delay": np.ones(pr.n_synapses)})
    rec = nest.Create("spike_recorder")
    nest.Connect(nodes, rec)
    nest.Simulate(1.0)
    c0 = CPU()
    nest.Simulate(float(g.ticks))
    return CPU() - c0, int(rec.get("n_events"))


def in_child(fn, *args):
    """fn(*args) in a fresh spawned process (NEST and numba each load their own OpenMP runtime)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def test_engine_vs_nest(capsys):
    version = importlib.metadata.version("nest-simulator")
    ticks = int(round(T_MS / H))
    pre, post = brunel_synapses()
    out_deg = np.bincount(pre, minlength=NE + NI)
    runs = [in_child(run_nest_brunel, pre, post) for _ in range(2)]       # same seed: the same spikes
    t_nest, nest_counts, build = min(r[0] for r in runs), runs[0][1], runs[0][2]
    assert np.array_equal(runs[0][1], runs[1][1])
    numba.set_num_threads(1)
    nest_events = int(nest_counts @ out_deg)
    rates = {"nest": (nest_counts[:NE].sum() / NE / T_MS * 1e3, nest_counts[NE:].sum() / NI / T_MS * 1e3)}
    rows = [("NEST iaf_psc_delta (double)", t_nest, nest_events, rates["nest"])]
    x = np.random.default_rng(2).random((1, ticks, NE + NI)) < LAM / (1 + LAM)
    engine = {}
    for numerics in ("float", "loihi"):
        g = brunel_graph(numerics, pre, post, ticks)
        flat = flatten(g)
        simulate(g, {"ext": x[:, :10]}, flat=flat, record=False)     # compile
        t, res = min_time(lambda: simulate(g, {"ext": x}, flat=flat, record=False), 5)
        ev = int(sum(res.synaptic_ops[k].sum() for k in res.synaptic_ops if not k.startswith("ext")))
        rate = (res.spike_counts["exc"][0] / NE / T_MS * 1e3, res.spike_counts["inh"][0] / NI / T_MS * 1e3)
        engine[numerics] = (t, ev, rate)
        rows.append((f"engine, {numerics} numerics", t, ev, rate))
    # the scatter bound on the same synapses and the engine's own spikes (float run)
    g = brunel_graph("float", pre, post, ticks)
    res = simulate(g, {"ext": x}, record=True)
    spikes = np.concatenate([res.spikes["exc"][0], res.spikes["inh"][0]], axis=1)
    t_sp, i_sp = np.nonzero(spikes)
    indptr = np.zeros(NE + NI + 1, np.int64)
    np.cumsum(out_deg, out=indptr[1:])
    order = np.argsort(pre, kind="stable")
    tgt, wts = post[order].astype(np.int32), np.ones(len(pre), np.int16)
    acc = np.zeros(NE + NI, np.int64)
    scatter_bound(indptr, tgt, wts, t_sp, i_sp, acc)
    t_sc, _ = min_time(lambda: scatter_bound(indptr, tgt, wts, t_sp, i_sp, acc), 5)
    sc_rate = len(t_sp) and int(out_deg[i_sp].sum()) / t_sc

    nest_rate = nest_events / t_nest
    eng_rate = engine["float"][1] / engine["float"][0]
    # the random layer (fan-out 100), same input spikes
    lg = random_network(20_000, 100_000, 100, ticks=50)
    lx = np.random.default_rng(1).random((1, 50, 20_000)) < 0.05
    t_nl, nest_spikes = in_child(run_nest_layer, lg, lx[0])
    lflat = flatten(lg)
    simulate(lg, {"in": lx}, flat=lflat, record=False)
    t_el, lres = median_time(lambda: simulate(lg, {"in": lx}, flat=lflat, record=False), 5, clock=CPU)
    l_events = int(lres.synaptic_ops["w"].sum())
    update_results(nest_events_per_s_per_thread=nest_rate, vs_nest_per_thread=eng_rate / nest_rate,
                   vs_nest_per_thread_loihi=engine["loihi"][1] / engine["loihi"][0] / nest_rate,
                   nest_brunel_rates_hz={"nest": rates["nest"], **{k: v[2] for k, v in engine.items()}},
                   brunel_scatter_bound_events_per_s=sc_rate, vs_nest_fanout100_per_thread=t_nl / t_el,
                   nest_fanout100_events_per_s_per_thread=l_events / t_nl)
    with capsys.disabled():
        print(f"\n\nBrunel network vs NEST {version}, one thread each: {NE}+{NI} LIF, fan-in {CE + CI}, "
              f"{len(pre):,} synapses, {T_MS:.0f} ms at h = {H} ms (NEST build {build:.1f} s, not timed); "
              f"CPU seconds, least of 2 NEST / 5 engine runs")
        print(f"{'backend':<30}{'CPU s':>8}{'recurrent events':>18}{'M ev/s':>9}{'exc Hz':>8}{'inh Hz':>8}{'vs NEST':>9}")
        for name, t, ev, (re_, ri) in rows:
            print(f"{name:<30}{t:>8.2f}{ev:>18,}{ev / t / 1e6:>9.1f}{re_:>8.1f}{ri:>8.1f}{ev / t / nest_rate:>8.1f}x")
        print(f"scatter bound on the engine's spikes: {sc_rate / 1e6:.0f} M ev/s = {sc_rate / nest_rate:.1f}x NEST "
              f"(the most any engine doing acc[target] += w per event can reach here)")
        print(f"random layer 20k→100k, fan-out 100, 50 ms, same input: NEST {t_nl:.3f} s ({nest_spikes:,} spikes), "
              f"engine {t_el:.3f} s ({int(lres.spike_counts['out'][0]):,} spikes) → {t_nl / t_el:.1f}x; "
              f"{l_events:,} events\n")
    for name, t, ev, (re_, ri) in rows:                       # comparable regimes: asynchronous, same order of rate
        assert 1.0 < re_ < 200.0 and 1.0 < ri < 200.0, name
    assert 0.5 < engine["float"][2][0] / rates["nest"][0] < 2.0
