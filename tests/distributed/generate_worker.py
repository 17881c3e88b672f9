"""One torchrun process: sampling and self-generation from a ZeRO-3 engine, processes doing unequal work.

    torchrun --nproc_per_node 2 tests/distributed/generate_worker.py OUT_DIR

Per family: a Trainer with ZeRO-3 runs one step at learning rate 0 (so the engine exists, hooks and optimizer
included, and the weights stay the builder's), then ``generate_samples`` on a different number of prompts per process
and ``self_generate`` over 5 one-prompt shards (3 on rank 0, 2 on rank 1), then a forward and backward through the
engine (its hooks are back). Writes OUT_DIR/<family>/rank<r>.json; self-generation writes OUT_DIR/<family>/selfgen.
"""

import json
import os
import sys

from tests.distributed.gen_cases import PROMPTS, build, sampling_config, self_generation_config


def main(out_dir: str) -> None:
    from accelerate.state import AcceleratorState
    from datasets import Dataset
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from tests.distributed.cases import deepspeed_config
    from tests.sample_rows import make_rows
    from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
    from trl_unified.generation.sampler import generate_samples
    from trl_unified.generation.self_generation import self_generate
    from trl_unified.models.registry import get_adapter

    rank = int(os.environ["RANK"])
    for family in ("causal_lm", "janus", "emu3"):
        model, processor = build(family)
        adapter = get_adapter(model, processor)
        rows = make_rows(4, num_image_tokens=adapter.num_image_tokens, codebook_size=adapter.codebook_size)
        args = RewardWeightedMultimodalConfig(
            os.path.join(out_dir, family, "run"),
            per_device_train_batch_size=2,
            max_steps=1,
            learning_rate=0.0,
            report_to="none",
            use_cpu=True,
            save_strategy="no",
            disable_tqdm=True,
            deepspeed=deepspeed_config("zero3"),
        )
        trainer = RewardWeightedMultimodalTrainer(
            model, args=args, train_dataset=Dataset.from_list(rows), processing_class=processor
        )
        trainer.train()
        engine = trainer.model_wrapped
        assert type(engine).__name__ == "DeepSpeedEngine"
        assert any(p.numel() == 0 for p in trainer.model.parameters())  # really partitioned outside the forward

        try:  # the module inside a live ZeRO-3 engine is refused (its hooks would free the gathered weights)
            generate_samples(
                trainer.model, trainer.adapter, PROMPTS[:1], config=sampling_config(family), progress=False
            )
            refused = ""
        except ValueError as error:
            refused = str(error)
        prompts = PROMPTS[: 1 + 2 * rank]  # rank 0: 1 prompt, rank 1: 3 prompts
        samples = generate_samples(
            engine, trainer.adapter, prompts, num_samples=2, config=sampling_config(family), progress=False
        )
        self_generate(engine, processor, PROMPTS, self_generation_config(os.path.join(out_dir, family, "selfgen")))

        # The engine's hooks are back: a forward and backward through it (partitioned weights need them).
        batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(2)]))
        engine.train()
        loss = trainer.compute_loss(engine, batch)
        engine.backward(loss)
        result = {
            "samples": [{"reasoning_ids": s.reasoning_ids, "image_tokens": s.image_tokens} for s in samples],
            "loss_after": loss.item(),
            "refused": refused,
        }
        with open(os.path.join(out_dir, family, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
        trainer.accelerator.wait_for_everyone()
        del trainer, engine
        AcceleratorState._reset_state()
        unset_hf_deepspeed_config()


if __name__ == "__main__":
    main(sys.argv[1])
