"""SLURM profiles in slurm/profiles: each validates, maps onto submitit's parameters, and bad ones are named."""

from __future__ import annotations

import pytest

from harness.dispatch.profiles import find_profile, load_resources
from harness.dispatch.resources import SlurmResources
from harness.errors import ConfigError


@pytest.mark.parametrize("name, gpus, nodes, tasks", [
    ("single_gpu", 1, 1, 1), ("gpu_node_8", 8, 1, 8), ("multi_node", 8, 4, 8), ("cpu_small", 0, 1, 1)])
def test_example_profiles(name, gpus, nodes, tasks):
    res = load_resources(name)
    assert (res.gpus_per_node, res.nodes, res.tasks_per_node) == (gpus, nodes, tasks)
    params = res.to_submitit()
    assert params["nodes"] == nodes and params["tasks_per_node"] == tasks
    assert params.get("gpus_per_node", 0) == gpus
    assert params["timeout_min"] == res.time_min


def test_overrides_and_sbatch_mapping():
    res = load_resources("gpu_node_8", {"partition": "h100", "account": "proj", "qos": "high",
                                        "constraint": "h100", "time_min": 30, "setup": ["module load cuda"]})
    params = res.to_submitit()
    assert params["slurm_partition"] == "h100" and params["slurm_account"] == "proj"
    assert params["slurm_qos"] == "high" and params["slurm_constraint"] == "h100"
    assert params["timeout_min"] == 30 and params["slurm_setup"] == ["module load cuda"]
    assert params["slurm_additional_parameters"] == {"exclusive": True}
    assert "mem_gb" in params and "slurm_partition" not in SlurmResources().to_submitit()


def test_bad_profiles_are_named(tmp_path):
    with pytest.raises(ConfigError, match="slurm profile 'nope'.*available: .*single_gpu"):
        find_profile("nope")
    with pytest.raises(ConfigError, match="gpus_per_node: Input should be greater than or equal to 0"):
        load_resources("single_gpu", {"gpus_per_node": -1}, source="sweep.yaml: executor.slurm")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: 1\ngpu: 2\n")
    with pytest.raises(ConfigError, match=f"{bad}: gpu: unknown key"):
        load_resources(str(bad))
