"""Run training_scripts/run_mlm.py, then write this rank's final weights and logged losses (for the DDP tests)."""

import json
import os
import sys

from safetensors.torch import save_file

from genomic_models.training_scripts.run_mlm import main

if __name__ == "__main__":
    trainer = main(sys.argv[1:])
    args = trainer.args
    model = trainer.accelerator.unwrap_model(trainer.model)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    stem = os.path.join(args.output_dir, f"rank{args.process_index}_of_{args.world_size}")
    save_file(state, stem + ".safetensors")
    with open(stem + ".json", "w") as handle:
        json.dump({"log_history": trainer.state.log_history, "world_size": args.world_size}, handle)
