"""Publishing to the Hub: `push_to_hub` for this project's models uploads exactly what `save_pretrained` writes.

transformers' own `push_to_hub` saves the folder and then overwrites README.md with a generic card (or the card
already on the Hub). Registered genomic_models classes use `push_to_hub_with_card` instead, so the repository gets the
architecture's real card, with the repo id in its usage snippet. Checkpoints loaded through remote code, without this
package, keep transformers' behaviour.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

from huggingface_hub import HfApi

from .cards import ModelCardContext, write_model_card


def push_to_hub_with_card(
    self,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: list[str] | None = None,
):
    """Create the repo if needed and upload the model folder (weights, config, sources, card) in one commit."""
    api = HfApi(token=token if isinstance(token, str) else None)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    context = replace(getattr(self, "card_context", None) or ModelCardContext(), model_id=repo_id)
    with tempfile.TemporaryDirectory() as folder:
        self.save_pretrained(folder, max_shard_size=max_shard_size)
        card_path = write_model_card(self, folder, context)
        if tags:
            from huggingface_hub import ModelCard

            card = ModelCard.load(card_path)
            card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *tags]))
            card.save(card_path)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message or f"Upload {type(self).__name__}",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
        )


__all__ = ["push_to_hub_with_card"]
