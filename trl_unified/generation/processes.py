"""Process coordination for work split across a distributed launch (``torchrun``/``accelerate launch``)."""

from __future__ import annotations

import os


class Processes:
    """Rank, world size and a barrier: `accelerate.PartialState` under a distributed launcher, trivial otherwise."""

    def __init__(self):
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            if PartialState._shared_state:  # already set up (e.g. by an Accelerator): use it as it is
                self.state = PartialState()
            else:
                accelerator = getattr(torch, "accelerator", None)
                available = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
                self.state = PartialState(cpu=not available)  # cpu=True: gloo, the only way on a CPU-only machine
        self.rank = self.state.process_index if self.state else 0
        self.world = self.state.num_processes if self.state else 1
        self.is_main = self.rank == 0

    def wait(self) -> None:
        if self.state is not None and self.world > 1:
            self.state.wait_for_everyone()

    def broadcast(self, value):
        """The main process's ``value`` on every process (a picklable object; a no-op in one process)."""
        if self.state is None or self.world == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]
