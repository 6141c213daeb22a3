"""SpikeCLIP training: teachers, datasets and prompts, feature cache, the loop and the four stages.

Modules: `prompts` (class names, templates), `data` (dataset splits), `teachers` (open_clip,
Hugging Face CLIP, offline MiniLM, small ANN image towers), `feature_cache` (teacher features on
disk), `loop` (epochs, checkpoints, resume, logs), `stages` (align-text, align-image,
finetune-teacher, finetune). The console script is `export.cli.train`.
"""
