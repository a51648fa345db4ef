"""A trained run directory read back: its config (through the validator), its model, its own split."""
from __future__ import annotations

import os
from pathlib import Path

from spikeformer.config.model import ModelConfig
from spikeformer.config.train import TrainConfig
from spikeformer.data.base import Split
from spikeformer.data.registry import load_dataset, split_record
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.store.files import CheckpointError, read_json, torch_load
from spikeformer.store.layout import CONFIG_FILE, MODEL_FILE, SPLIT_FILE


def load_config(run_dir: Path) -> tuple[ModelConfig, TrainConfig]:
    """The run's config.json, through the one validator (``presets.configs_from_dict``)."""
    from spikeformer.configure.presets import configs_from_dict

    path = Path(run_dir) / CONFIG_FILE
    return configs_from_dict(read_json(path), str(path))


def load_model(run_dir: str | os.PathLike) -> SpikingTransformer:
    """The trained model of a run directory (weights-only load)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: run directory not found")
    cfg, _ = load_config(run_dir)
    model = SpikingTransformer(cfg)
    state = torch_load(run_dir / MODEL_FILE)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{run_dir / MODEL_FILE}: does not match {CONFIG_FILE} ({str(e).splitlines()[0]})") from None
    model.eval()
    return model


def run_split(run_dir: str | os.PathLike, model_cfg: ModelConfig) -> Split:
    """The run's own split; CheckpointError if the data no longer gives the test set recorded in split.json."""
    data = load_dataset(model_cfg)
    path = Path(run_dir) / SPLIT_FILE
    if path.exists():                                   # runs from before split.json: the config alone
        want, got = read_json(path), split_record(model_cfg, data)
        if want != got:
            diffs = [k for k in got if want.get(k) != got[k]]
            diff = next((k for k in diffs if isinstance(got[k], dict)), diffs[0])     # a file before the totals
            if isinstance(got[diff], dict) and isinstance(want.get(diff), dict):     # pycode: which file
                first = next(f for f in sorted({*got[diff], *want[diff]}) if want[diff].get(f) != got[diff].get(f))
                raise CheckpointError(f"{path}: {diff} {first!r} was {want[diff].get(first) or 'absent'}, the data "
                                      f"now gives {got[diff].get(first) or 'absent'}: the data changed since "
                                      f"training (recorded with {want.get('python', 'another source')})")
            raise CheckpointError(f"{path}: the run's test set was {want.get('test')} samples with fingerprint "
                                  f"{want.get('test_fingerprint')}, its data now gives {got['test']} with "
                                  f"{got['test_fingerprint']} ({diff} differs): the data changed since training")
    return data
