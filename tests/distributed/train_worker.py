"""One torchrun process: trains every case of a strategy (see cases.py) and saves what the test compares.

    torchrun --nproc_per_node 2 tests/distributed/train_worker.py STRATEGY BASE_DIR OUT_DIR

BASE_DIR holds each family's initial model (``BASE_DIR/<family>``); OUT_DIR gets, per case, the saved model or
adapter (``OUT_DIR/<case>/model``) and ``OUT_DIR/<case>/rank<r>.json`` (log history, micro-batch image flags).
"""

import gc
import json
import os
import sys
import time

from tests.distributed.cases import cases, deepspeed_config, make_trainer, record_micro_batches


def main(strategy: str, base_dir: str, out_dir: str) -> None:
    from accelerate.state import AcceleratorState
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    rank = int(os.environ["RANK"])
    for case in cases(strategy):
        start, cpu = time.time(), time.process_time()
        target = os.path.join(out_dir, case.name)
        trainer = make_trainer(
            case, os.path.join(target, "run"), 2, os.path.join(base_dir, case.family), deepspeed_config(strategy)
        )
        flags = record_micro_batches(trainer)
        trainer.train()
        trainer.save_model(os.path.join(target, "model"))
        with open(os.path.join(target, f"rank{rank}.json"), "w") as f:
            json.dump(
                {
                    "log_history": trainer.state.log_history,
                    "image_in_micro_batch": flags,
                    "wall_s": time.time() - start,
                    "cpu_s": time.process_time() - cpu,
                },
                f,
            )
        trainer.accelerator.wait_for_everyone()
        del trainer
        gc.collect()
        AcceleratorState._reset_state()
        unset_hf_deepspeed_config()  # the next case builds its own accelerator (and DeepSpeed plugin)


if __name__ == "__main__":
    main(*sys.argv[1:4])
