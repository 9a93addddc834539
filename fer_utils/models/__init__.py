"""Models: every network this project trains, each a name in one registry with its recipe.

The report's CNN (:mod:`.report_cnn`, with the report's augmentation, :mod:`.augment`) and the
residual network (:mod:`.resnet`); :mod:`.registry` names them, builds any of them from a run
configuration and loads any saved model file, whatever was imported before.

May import: data and the top-level leaves.
"""
