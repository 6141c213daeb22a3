"""The project's own Lava processes: what stock Lava 0.10 lacks (DESIGN §5).

One folder per process, each a ``process.py`` (the interface: ports, Vars, parameters) and a
``models.py`` (a fixed-point ``PyLoihiProcessModel`` tagged ``fixed_pt``, vectorized numpy, no
torch: Lava forks its runtime children and torch calls hang there):

- :mod:`.attention`: spike × spike attention ``P = Q·(KᵀV)`` per head (``embedded``);
- :mod:`.maxpool`: max-pool over integer currents, padding = −∞ (``embedded``);
- :mod:`.lif_sub`: Lava's ``LIFReset`` with reset by subtraction (``neurocore``; a microcode
  neuron on Loihi 2);
- :mod:`.token_linear`: a token-shared linear layer (Conv1d k=1) with its own delay line
  (``neurocore``; stock Conv is too slow and DelayDense is Dense-only);
- :mod:`.delay_conv`: a weight-shared conv with its own delay line, for the delayed consumers of
  a conv (``neurocore``; a ``DelaySparse`` replica would hold the conv's unrolled matrix);
- :mod:`.readout`: the host readout (decode, token mean, time weights, head) (``host``);
- :mod:`.injection`: per-sample static input written into one LIF's ``bias_mant`` (``host``);
- :mod:`.recorder`: the spike trains of all LIFs in one process, packed for one ``Var.get``
  (``host``; a probe, not part of the model).

Every process has a ``placement`` parameter (one of ``hardware.ir.layers.PLACEMENTS``) and, where
it produces a current, ``latency`` + ``delay`` pipeline steps (:mod:`.pipeline`).
"""
