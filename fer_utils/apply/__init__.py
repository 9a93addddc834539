"""Apply: use a trained model on faces it has not seen.

Measure any saved model on labelled faces (:mod:`.evaluate`, with the paired tests of
:mod:`fer_utils.stats`), sort unlabelled faces into one folder per emotion (:mod:`.organize`,
its files in :mod:`.organize_io`), and the rule that chooses which model sorts (:mod:`.choose`).

May import: training, models, data and the top-level leaves.
"""
