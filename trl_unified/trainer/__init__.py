"""The reward-weighted multimodal trainer, its config and the reward->weight math."""
