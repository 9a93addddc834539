"""Study: the course report's experiments, narrated.

The report's protocol and published numbers (:mod:`.protocol`), profiles (:mod:`.profiles`),
Tables 1-4 as rows of runs and the plan (:mod:`.experiments`), the claims checked
(:mod:`.claims`), the report's pieces and figures (:mod:`.report`, :mod:`.figures`), the
notebooks (:mod:`.notebooks`), ``fer run``/``fer tables``/``fer report`` (:mod:`.pipeline`),
published run files (:mod:`.published`) and the beyond recipe's ablations (:mod:`.ablation`).

May import: apply, training, models, data and the top-level leaves.
"""
