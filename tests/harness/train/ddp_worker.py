"""One rank of the two-process CPU DDP test (``test_ddp_no_sync.py``), started by the test with Lightning's
environment variables (LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT), so Lightning launches nothing itself.

The model's loss is replaced by one whose gradient is known in closed form (||θ||² x a weight, as in
``test_accumulation.py``), and DDP's gradient communication goes through a comm hook that records, per call,
the optimizer step and micro-batch whose backward reduced. Writes ``rank<r>.json``: those calls, the loss
weight of each micro-batch and ||θ||² at the start.

    python -m tests.harness.train.ddp_worker CONFIG_JSON RUN_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from harness.config import RunConfig
from harness.train.module import SeedFoldModule
from harness.train.run import train_run


def main(config_path: str, run_dir: str, out_dir: str) -> None:
    record: dict = {"reduced": [], "weights": {}, "theta_sq": None}

    def loss(module, batch, n_cycles, diffusion_batch):
        theta_sq = sum((p.float() ** 2).sum() for p in module.model.parameters() if p.requires_grad)
        if record["theta_sq"] is None:
            record["theta_sq"] = float(theta_sq.detach())
        # a weight that differs between ranks and micro-batches (the crops are all of the same size), so a
        # gradient that missed any rank's micro-batch would have another norm
        micro = module._window.micro_batches
        weight = int(batch["token_mask"].sum()) * (1 + 3 * module.global_rank + micro)
        record["weights"][f"{module.global_step}/{micro}"] = weight
        return {"loss": theta_sq * weight}

    def counting_allreduce(module, bucket):
        record["reduced"].append([module.global_step, module._window.micro_batches])
        buffer = bucket.buffer().div_(dist.get_world_size())
        return dist.all_reduce(buffer, async_op=True).get_future().then(lambda fut: fut.value()[0])

    real_fit_start = SeedFoldModule.on_fit_start

    def on_fit_start(module):
        real_fit_start(module)
        module.trainer.strategy.model.register_comm_hook(module, counting_allreduce)

    SeedFoldModule._loss = loss
    SeedFoldModule.on_fit_start = on_fit_start
    torch.set_num_threads(1)
    config = RunConfig.model_validate(json.loads(Path(config_path).read_text()))
    state = train_run(config, run_dir)
    record["rank"] = state["rank"]
    Path(out_dir, f"rank{state['rank']}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:])
