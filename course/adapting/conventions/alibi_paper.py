"""The ALiBi paper's code (ofirpress/attention_with_linear_biases): ``get_slopes(n)`` returns a list."""
import torch


def adapt(found: dict) -> dict:
    get_slopes = found["get_slopes"]

    def alibi_slopes(n_heads):
        return torch.as_tensor(get_slopes(n_heads), dtype=torch.float32)

    return {"alibi_slopes": alibi_slopes}
