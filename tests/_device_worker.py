"""Run by tests/test_device.py under KERAS_BACKEND=jax: both families trained by the fit path,
by the device path, and by the device path killed after one epoch and resumed."""

import json
import sys
from pathlib import Path


def main():
    sys.path.insert(0, sys.argv[2])
    from conftest import write_report_layout
    from fer_utils.data import datasets
    from fer_utils.models.registry import preset
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run
    from fer_utils.training.rundir import read_metrics
    out = Path(sys.argv[1])
    root = write_report_layout(out / "ds", per_class=(6, 2))
    res = {}
    for name, model in (("resnet", "resnet-smoke"), ("cnn", "report_cnn")):
        m, f = preset(model)
        ds = datasets.load(root, image_size=32, progress=False, verbose=False)
        more = {"epochs": 3} if m == "resnet" else {"batch_size": 16}
        cfg = RunConfig(data=ds.fingerprint, model=m, **{**f, "image_size": 32, **more})
        E = None if m == "resnet" else 3
        fit = train_run(out / f"{name}-fit", cfg, ds, E, verbose=False)
        jit = train_run(out / f"{name}-jit", cfg, ds, E, verbose=False, jit_epochs=True)
        assert len(train_run(out / f"{name}-part", cfg, ds, E, verbose=False, jit_epochs=True, stop_after=1)) == 1  # a kill after epoch 1
        resumed = train_run(out / f"{name}-part", cfg, ds, E, verbose=False, jit_epochs=True)

        def strip(rows):
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

        res[name] = {"fit": strip(fit), "jit": strip(jit), "resumed": strip(resumed),
                     "where": read_metrics(out / f"{name}-jit")["evaluations"]["3"]["trained_with"].get("epochs_on")}
    print("JSON" + json.dumps(res))


if __name__ == "__main__":
    main()
