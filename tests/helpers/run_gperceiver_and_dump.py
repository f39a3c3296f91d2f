"""Run a gperceiver training script (module given first), then write this rank's final weights (for the DDP test)."""

import importlib
import json
import os
import sys

from safetensors.torch import save_file

if __name__ == "__main__":
    trainer = importlib.import_module(sys.argv[1]).main(sys.argv[2:])
    args = trainer.args
    model = trainer.accelerator.unwrap_model(trainer.model)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    stem = os.path.join(trainer.args.output_dir, f"rank{args.process_index}_of_{args.world_size}")
    save_file(state, stem + ".safetensors")
    with open(stem + ".json", "w") as handle:
        json.dump({"log_history": trainer.state.log_history, "world_size": args.world_size}, handle)
