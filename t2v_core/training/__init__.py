"""Few-shot fine-tuning of a temporal adapter, in three units that know no method by name:

- :mod:`.data`: the clips, their VAE posteriors, masks and caption embeddings, once per run;
- :mod:`.checkpoints`: resumable checkpoints and the fingerprint that says whose they are;
- :mod:`.loop`: first-frame-conditioned diffusion steps with a loss weighting that the method
  supplies (see :class:`t2v_core.methods.base.Training`, which puts the three together).
"""


class TrainingError(RuntimeError):
    pass
