"""Hand-made mutation pass over the arithmetic (sim/numerics.py and the CUBA LIF steps in sim/neurons/),
sim/cost.py and the CLI's input checks.

    python tools/mutation_pass.py [GROUP ...] [--out docs/mutation-pass.md]

Each mutant replaces one exact snippet (it must occur exactly once) in one file, runs
that group's tests (``pytest -x``), and restores the file. A mutant is *killed* when
the tests fail. Groups run their unmutated tests first (they must pass). The cost and
CLI groups read one tiny run trained up front ($SPIKEFORMER_TEST_TINY_RUN, conftest).
Writes a Markdown table of every mutant and its outcome.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GROUP_TESTS = {
    "numerics": ["tests/engine_ir/test_numerics.py"],
    "cost": ["tests/engine_ir/test_report.py", "-k", "not cli"],
    "cli": ["tests/loihi/test_faults.py", "tests/commands/test_cli.py", "-k",
            "numeric or in_range or config_defect or train_out or help"],
}

# (group, file, snippet, replacement)
MUTANTS: list[tuple[str, str, str, str]] = [
    # -- sim/numerics.py: constants
    ("numerics", "sim/numerics.py", "DS_OFFSET = 1 ", "DS_OFFSET = 0 "),
    ("numerics", "sim/numerics.py", "DM_OFFSET = 0\n", "DM_OFFSET = 1\n"),
    ("numerics", "sim/numerics.py", "ACT_SHIFT = 6 ", "ACT_SHIFT = 5 "),
    ("numerics", "sim/numerics.py", "VTH_SHIFT = 6 ", "VTH_SHIFT = 7 "),
    ("numerics", "sim/numerics.py", "UV_MAX = 1 << 23 ", "UV_MAX = 1 << 24 "),
    ("numerics", "sim/numerics.py", "DECAY_SHIFT = 12 ", "DECAY_SHIFT = 11 "),
    ("numerics", "sim/numerics.py", "DU_MAX = DV_MAX = 4095 ", "DU_MAX = DV_MAX = 4094 "),
    ("numerics", "sim/numerics.py", "VTH_MAX = (1 << 17) - 1 ", "VTH_MAX = (1 << 17) "),
    ("numerics", "sim/numerics.py", "W_MIN, W_MAX = -254, 254 ", "W_MIN, W_MAX = -256, 254 "),
    ("numerics", "sim/numerics.py", "W_MANT_MIN, W_MANT_MAX = -127, 127\n", "W_MANT_MIN, W_MANT_MAX = -127, 128\n"),
    ("numerics", "sim/numerics.py", "MAX_DELAY = 64 ", "MAX_DELAY = 65 "),
    # -- lava_weights
    ("numerics", "sim/numerics.py", "return ((np.clip(w, -256, 255) >> 1) << 1)", "return (np.clip(w, -256, 255))"),
    ("numerics", "sim/numerics.py", "return np.clip(w, 0, 255).astype", "return np.clip(w, 0, 254).astype"),
    ("numerics", "sim/numerics.py", "return -np.clip(-w, 0, 255)", "return -np.clip(-w, 0, 256)"),
    # -- numpy reference step
    ("numerics", "sim/neurons/cuba.py", "np.sign(du_prod) * (np.abs(du_prod) >> DECAY_SHIFT)", "(du_prod >> DECAY_SHIFT)"),
    ("numerics", "sim/neurons/cuba.py", "np.sign(dv_prod) * (np.abs(dv_prod) >> DECAY_SHIFT)", "(dv_prod >> DECAY_SHIFT)"),
    ("numerics", "sim/neurons/cuba.py", "np.where(u_new > UV_MAX, u_new - 2 * UV_MAX", "np.where(u_new >= UV_MAX, u_new - 2 * UV_MAX"),
    ("numerics", "sim/neurons/cuba.py", "np.where(u_new <= -UV_MAX, u_new + 2 * UV_MAX",
     "np.where(u_new < -UV_MAX, u_new + 2 * UV_MAX"),
    ("numerics", "sim/neurons/cuba.py", "np.clip(v_new, -UV_MAX + 1, UV_MAX - 1)", "np.clip(v_new, -UV_MAX, UV_MAX)"),
    ("numerics", "sim/neurons/cuba.py", "s = v_new > (np.asarray(vth, np.int64) << VTH_SHIFT)",
     "s = v_new >= (np.asarray(vth, np.int64) << VTH_SHIFT)"),
    ("numerics", "sim/neurons/cuba.py", "v_new = np.where(s, 0, v_new)", "v_new = v_new"),
    # -- numba scalar step
    ("numerics", "sim/neurons/cuba.py", "return (p + ((p >> 63) & (DECAY_UNITY - 1))) >> DECAY_SHIFT", "return p >> DECAY_SHIFT"),
    ("numerics", "sim/neurons/cuba.py", "vn = _decay(v, DECAY_UNITY - (dv + DM_OFFSET)) + un", "vn = _decay(v, DECAY_UNITY - (dv + 1)) + un"),
    ("numerics", "sim/neurons/cuba.py", "un = un - 2 * UV_MAX if un > UV_MAX else un", "un = un - UV_MAX if un > UV_MAX else un"),
    ("numerics", "sim/neurons/cuba.py", "un = un + 2 * UV_MAX if un <= -UV_MAX else un", "un = un + 2 * UV_MAX if un < -UV_MAX else un"),
    ("numerics", "sim/neurons/cuba.py", "vn = min(max(vn, -UV_MAX + 1), UV_MAX - 1)", "vn = min(max(vn, -UV_MAX + 1), UV_MAX)"),
    ("numerics", "sim/neurons/cuba.py", "vn = min(max(vn, -UV_MAX + 1), UV_MAX - 1)", "vn = min(max(vn, -UV_MAX), UV_MAX - 1)"),
    ("numerics", "sim/neurons/cuba.py", "    spiked = vn > (np.int64(vth) << VTH_SHIFT)", "    spiked = vn >= (np.int64(vth) << VTH_SHIFT)"),
    ("numerics", "sim/neurons/cuba.py", "np.int32(0 if spiked else vn)", "np.int32(vn)"),
    # -- float steps and the exponent shift
    ("numerics", "sim/neurons/cuba.py", "    s = v_new > np.asarray(vth, F32)", "    s = v_new >= np.asarray(vth, F32)"),
    ("numerics", "sim/neurons/cuba.py", "np.asarray(cu, F32) + np.asarray(a, F32)", "np.asarray(cu, F32)"),
    ("numerics", "sim/neurons/cuba.py", "    spiked = vn > np.float32(vth)", "    spiked = vn >= np.float32(vth)"),
    ("numerics", "sim/neurons/cuba.py", "un = np.float32(np.float32(u) * np.float32(cu) + np.float32(a))",
     "un = np.float32(np.float32(u) * np.float32(cu))"),
    ("numerics", "sim/numerics.py", "acc >> (-weight_exp)", "acc >> (1 - weight_exp)"),
    ("numerics", "sim/numerics.py", "return acc << weight_exp if weight_exp >= 0", "return acc << weight_exp if weight_exp > 0"),
    # -- sim/cost.py: constants
    ("cost", "sim/cost/energy.py", "E_SYNOP = 23.6e-12", "E_SYNOP = 2.36e-12"),
    ("cost", "sim/cost/energy.py", "E_UPDATE_ACTIVE = 52e-12", "E_UPDATE_ACTIVE = 21e-12"),
    ("cost", "sim/cost/energy.py", "E_UPDATE_IDLE = 21e-12", "E_UPDATE_IDLE = 0.0"),
    ("cost", "sim/cost/energy.py", "E_SPIKE_CORE = 1.7e-12", "E_SPIKE_CORE = 3.5e-12"),
    ("cost", "sim/cost/energy.py", "E_SPIKE_HOP = 3.5e-12", "E_SPIKE_HOP = 1.7e-12"),
    ("cost", "sim/cost/energy.py", "E_CHIP_HOP = 10 * E_SPIKE_HOP", "E_CHIP_HOP = E_SPIKE_HOP"),
    ("cost", "sim/cost/energy.py", "T_SYNOP = 3.5e-9", "T_SYNOP = 0.0"),
    ("cost", "sim/cost/energy.py", "T_UPDATE = 5.3e-9", "T_UPDATE = 53e-9"),
    ("cost", "sim/cost/energy.py", "T_BARRIER = 465e-9", "T_BARRIER = 0.0"),
    ("cost", "sim/cost/energy.py", "T_CHIP_HOP = 100e-9", "T_CHIP_HOP = 10e-9"),
    ("cost", "sim/cost/energy.py", "E_AC_45NM = 0.9e-12", "E_AC_45NM = 4.6e-12"),
    ("cost", "sim/cost/energy.py", "E_MAC_45NM = 4.6e-12", "E_MAC_45NM = 0.9e-12"),
    ("cost", "sim/cost/energy.py", "E_INT8_MAC = 0.23e-12", "E_INT8_MAC = 0.2e-12"),
    ("cost", "sim/cost/energy.py", "E_INT8_ADD = 0.03e-12", "E_INT8_ADD = 0.0"),
    ("cost", "sim/cost/energy.py", "E_SRAM_BYTE = 20e-12 / 8", "E_SRAM_BYTE = 20e-12 / 64"),
    ("cost", "sim/cost/energy.py", "MESH_COLS = 16 ", "MESH_COLS = 8 "),
    # -- message costs
    ("cost", "sim/cost/energy.py", "e = e_hop * max(mesh, 1)", "e = e_hop * mesh"),
    ("cost", "sim/cost/energy.py", "            if s < 0:", "            if s <= 0:"),
    ("cost", "sim/cost/energy.py", "                energy[i] += e_core", "                energy[i] += e_hop"),
    ("cost", "sim/cost/energy.py", "h = abs(sc // chip_cols - dc // chip_cols) + abs(sc % chip_cols - dc % chip_cols)",
     "h = abs(sc % chip_cols - dc % chip_cols)"),
    ("cost", "sim/cost/energy.py", "mesh = abs(sp // mesh_cols - dp // mesh_cols) + abs(sp % mesh_cols - dp % mesh_cols)",
     "mesh = abs(sp - dp)"),
    ("cost", "sim/cost/energy.py", "                inter_core[i] += 1", "                inter_core[i] += 2"),
    ("cost", "sim/cost/energy.py", "                hops_max[i] = max(hops_max[i], h)", "                hops_max[i] = h"),
    # -- the report's formulas
    ("cost", "sim/cost/energy.py", "idle = n_on_chip * graph.ticks - active", "idle = n_on_chip * graph.timesteps - active"),
    ("cost", "sim/cost/energy.py", ".max(axis=2, initial=0.0) + T_BARRIER", ".sum(axis=2) + T_BARRIER"),
    ("cost", "sim/cost/energy.py", "macs = float(graph.n_synapses)", "macs = float(graph.n_neurons)"),
    ("cost", "sim/cost/energy.py", "activations * 2 * E_SRAM_BYTE", "activations * E_SRAM_BYTE"),
    ("cost", "sim/cost/energy.py", "e_update = E_INT8_ADD + 2 * 3 * E_SRAM_BYTE", "e_update = E_INT8_ADD + 2 * 2 * E_SRAM_BYTE"),
    ("cost", "sim/cost/energy.py", "(e_ann8 - active * e_update)", "(e_ann8 + active * e_update)"),
    ("cost", "sim/cost/energy.py", "capacity = graph.ticks * graph.n_synapses", "capacity = graph.timesteps * graph.n_synapses"),
    ("cost", "sim/cost/energy.py", 'winner="spiking" if e_snn < e_ann8', 'winner="spiking" if e_snn > e_ann8'),
    ("cost", "sim/cost/energy.py", "out = np.maximum(out, fired * v)", "out = out + fired * v"),
    ("cost", "sim/cost/energy.py", "messages=float(counts @ deg)", "messages=float(counts @ inter_core)"),
    ("cost", "sim/cost/energy.py", "host_messages=float(counts @ host)", "host_messages=float(counts @ inter_chip)"),
    ("cost", "sim/cost/energy.py", "energy_inter_chip_joules=E_CHIP_HOP * chip_hops", "energy_inter_chip_joules=E_SPIKE_HOP * chip_hops"),
    ("cost", "sim/cost/energy.py", "step = max(1, (1 << 24) // max(s.shape[1], 1))", "step = max(1, (1 << 4) // max(s.shape[1], 1))"),
    ("cost", "sim/cost/energy.py", "spikes_tick = sum(result.spikes[p.name].sum(axis=2) for p in graph.populations).mean(axis=0)",
     "spikes_tick = sum(result.spikes[p.name].sum(axis=2) for p in graph.populations).max(axis=0)"),
    # -- CLI option checks (spikeformer/options.py, cli.py), the config validator, train --out
    ("cli", "spikeformer/app/options.py", "not lo <= value <= hi", "not lo < value <= hi"),
    ("cli", "spikeformer/app/options.py", "not lo <= value <= hi", "not lo <= value < hi"),
    ("cli", "spikeformer/app/options.py", "not lo <= value <= hi", "not lo <= value"),
    ("cli", "spikeformer/app/options.py", "if isinstance(value, bool) or not isinstance(value, int) or",
     "if not isinstance(value, int) or"),
    ("cli", "spikeformer/app/options.py", "not 0 < value < math.inf", "not 0 <= value < math.inf"),
    ("cli", "spikeformer/app/options.py", "not 0 < value < math.inf", "not 0 < value"),
    ("cli", "spikeformer/app/options.py", "not 0 < value < math.inf", "value <= 0"),
    ("cli", "spikeformer/app/options.py", "COUNT_MAX = (1 << 31) - 1", "COUNT_MAX = 1 << 31"),
    ("cli", "spikeformer/app/cli.py", '    check_count("--shards", shards)\n', ""),
    ("cli", "spikeformer/app/cli.py", '    check_count("--samples", samples)\n    check_count("--shards"', '    check_count("--shards"'),
    ("cli", "spikeformer/app/cli.py", '    check_seconds("--timeout", timeout)\n', ""),
    ("cli", "spikeformer/app/cli.py", '    check_count("--chips", chips)\n', ""),
    ("cli", "spikeformer/app/cli.py", '    check_count("--cores-per-chip", cores_per_chip)\n', ""),
    ("cli", "spikeformer/app/cli.py", '    check_count("--lava-samples", lava_samples)\n', ""),
    ("cli", "spikeformer/app/cli.py", '("--steps-per-epoch", steps_per_epoch)', '("--steps_per_epoch", steps_per_epoch)'),
    ("cli", "spikeformer/app/experiment_commands.py", '("--samples", samples),\n', "\n"),
    ("cli", "spikeformer/app/cli.py", "print(f\"error: {' '.join(e.format_message().split())}\", file=sys.stderr)",
     "print(f\"Error: {e.format_message()}\", file=sys.stderr)"),
    ("cli", "spikeformer/app/cli.py", "            sys.exit(e.exit_code)", "            sys.exit(1)"),
    ("cli", "spikeformer/config/fields.py", "    if isinstance(value, bool):\n        return False\n", ""),
    ("cli", "spikeformer/config/fields.py", "isinstance(value, (int, float)) and math.isfinite(value)", "isinstance(value, (int, float))"),
    ("cli", "spikeformer/configure/presets.py", "    if unknown:\n        raise CheckpointError(f\"{source}: unknown section",
     "    if False:\n        raise CheckpointError(f\"{source}: unknown section"),
    ("cli", "spikeformer/configure/presets.py", '    if "model" not in d:', '    if "model" not in d and False:'),
    ("cli", "spikeformer/config/fields.py", "    if unknown:\n        raise ValueError(f\"unknown key", "    if False:\n        raise ValueError(f\"unknown key"),
    ("cli", "spikeformer/store/guard.py", "    if out.exists() and not out.is_dir():", "    if False:"),
    ("cli", "spikeformer/store/guard.py", "        if not foreign and (CONFIG_FILE not in names or not same()):",
     "        if False:"),
    ("cli", "spikeformer/store/guard.py", "not (finished and n in OUTPUT_FILES)", "n not in OUTPUT_FILES"),
]


def run_tests(group: str, env: dict) -> tuple[bool, float]:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *GROUP_TESTS[group]],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    return p.returncode == 0, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("groups", nargs="*", default=list(GROUP_TESTS))
    ap.add_argument("--out", default=str(ROOT / "docs" / "mutation-pass-results.md"))
    ap.add_argument("--only", default="", help="comma-separated GROUP:K (K-th mutant of GROUP, from 1): just those")
    args = ap.parse_args()
    only = {tuple(x.split(":")) for x in args.only.split(",") if x}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if {"cost", "cli"} & set(args.groups) and not env.get("SPIKEFORMER_TEST_TINY_RUN"):
        sys.path.insert(0, str(ROOT / "tests"))
        sys.path.insert(0, str(ROOT))
        from conftest import train_tiny
        env["SPIKEFORMER_TEST_TINY_RUN"] = str(train_tiny(Path(tempfile.mkdtemp(prefix="mutation-tiny-")), "sdsa"))
    rows = []
    for group in args.groups:
        if only and not any(g == group for g, _ in only):
            continue
        ok, sec = run_tests(group, env)
        print(f"[{group}] unmutated tests {'pass' if ok else 'FAIL'} ({sec:.0f} s)", flush=True)
        if not ok:
            sys.exit(f"{group}: the unmutated tests fail; fix them first")
        for k, (g, rel, old, new) in enumerate(m for m in MUTANTS if m[0] == group):
            if only and (group, str(k + 1)) not in only:
                continue
            path = ROOT / rel
            src = path.read_text()
            if src.count(old) != 1:
                sys.exit(f"{rel}: snippet occurs {src.count(old)} times: {old!r}")
            try:
                path.write_text(src.replace(old, new))
                passed, sec = run_tests(group, env)
            finally:
                path.write_text(src)
            rows.append((group, rel, old.strip(), new.strip() or "(line removed)", not passed))
            print(f"[{group} {k + 1}] {'killed ' if not passed else 'SURVIVED'} {rel}: {old.strip()!r} -> "
                  f"{new.strip()!r} ({sec:.0f} s)", flush=True)
    with open(args.out, "w") as f:
        f.write("| group | file | original | mutant | killed |\n|---|---|---|---|---|\n")
        for g, rel, old, new, killed in rows:
            cell = lambda s: "`" + s.replace("|", "\\|").replace("\n", "⏎") + "`"  # noqa: E731
            f.write(f"| {g} | {rel} | {cell(old)} | {cell(new)} | {'yes' if killed else '**no**'} |\n")
    print(f"{sum(r[4] for r in rows)}/{len(rows)} killed; table: {args.out}")


if __name__ == "__main__":
    main()
