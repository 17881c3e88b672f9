# Load the base model and the adapter, then let the model write its plan and draw its image in one pass (unified mode).
import os

import torch
from peft import PeftModel
from transformers import AutoProcessor

from trl_unified.generation.sampler import SamplingConfig, generate_samples
from trl_unified.models.registry import get_adapter, load_pretrained

base_model = "BASE_MODEL"
adapter = "ADAPTER"
prompt = "PROMPT"
output_dir = "."

device = "cuda" if torch.cuda.is_available() else "cpu"
model = PeftModel.from_pretrained(load_pretrained(base_model), adapter).to(device)
processor = AutoProcessor.from_pretrained(base_model)
samples = generate_samples(
    model, get_adapter(model, processor), [prompt], num_samples=4, config=SamplingConfig(mode="unified", seed=0)
)
os.makedirs(output_dir, exist_ok=True)
for sample in samples:
    path = os.path.join(output_dir, f"sample_{sample.sample_index}.png")
    sample.image.save(path)
    print(f"{path}: {sample.reasoning!r} (switched to the image by itself: {sample.switched})")
