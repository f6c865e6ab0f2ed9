"""Appendix Tables 3 (MNIST LeNet) and 4 (CIFAR10 allCNN), read from the Keras models
that gandef_tf.models.build_classifier actually builds, not typed in by hand.

    python -m experiments.arch_tables --dataset=mnist      # figures/table3.{md,csv,json}
    python -m experiments.arch_tables --dataset=cifar10    # figures/table4.{md,csv,json}

They go in figures/ itself ($GANDEF_FIGURES_DIR), not figures/<preset>/: every preset
trains the same network, so the tables name no preset and no seed. Init: Default =
Keras' glorot_uniform (the paper's "Default"), He = he_normal.
"""

from absl import flags

from experiments import cli
from gandef_tf import GandefError, report

FLAGS = flags.FLAGS
TABLES = {"mnist": ("table3", "MNIST LeNet classifier structure"),
          "cifar10": ("table4", "CIFAR10 allCNN classifier structure")}
TYPES = {"Conv2D": "Convolution", "MaxPooling2D": "MaxPool", "ReLU": "ReLU", "Flatten": "Flatten",
         "Dense": "Dense", "Dropout": "Dropout", "GlobalAveragePooling2D": "GlobalAvgPool"}
INITS = {"GlorotUniform": "Default", "HeNormal": "He"}
HEADER = ("layer", "name", "kernel_size", "strides", "padding", "init", "dropout_rate",
          "output_shape", "parameters")


def define_flags():
    flags.DEFINE_string("dataset", "mnist", "mnist (Table 3) or cifar10 (Table 4).")


def by(sep, values):
    return sep.join(str(v) for v in values)


def layer_row(layer):
    """One table row of a built Keras layer; '-' where the attribute does not apply."""
    kind = type(layer).__name__
    kernel = strides = padding = init = rate = "-"
    if kind == "Conv2D":
        kernel = by("×", (*layer.kernel_size, layer.filters))
    elif kind == "Dense":
        kernel = str(layer.units)
    elif kind == "MaxPooling2D":
        kernel = by("×", layer.pool_size)
    if hasattr(layer, "strides"):
        strides = by("×", layer.strides)
    if kind in ("Conv2D", "MaxPooling2D"):
        padding = layer.padding.capitalize()
    if hasattr(layer, "kernel_initializer"):
        name = type(layer.kernel_initializer).__name__
        init = INITS.get(name, name)
    if kind == "Dropout":
        rate = f"{layer.rate:g}"
    return (TYPES.get(kind, kind), layer.name, kernel, strides, padding, init, rate,
            by("×", layer.output.shape[1:]), layer.count_params())


def table(dataset):
    """(rows, total parameters) of the classifier for dataset."""
    from gandef_tf.models import build_classifier  # imports TensorFlow: only when needed

    model = build_classifier(dataset)
    rows = [layer_row(l) for l in model.layers if type(l).__name__ != "InputLayer"]
    total = model.count_params()
    if sum(r[-1] for r in rows) != total:  # a layer type this table does not know
        raise GandefError(f"layer parameters do not add up to {total}")
    return rows, total, model.name


def render(dataset):
    if dataset not in TABLES:
        raise GandefError(f"unknown dataset {dataset!r}; choose from {tuple(TABLES)}")
    name, title = TABLES[dataset]
    rows, total, model_name = table(dataset)
    prov = report.provenance("any (architecture is the same in every preset)", [])
    import keras
    prov["keras"] = keras.__version__
    out_dir = report.figures_dir()
    paths = {k: out_dir / f"{name}.{k}" for k in ("md", "csv", "json")}
    report.write_csv(paths["csv"], HEADER, rows + [("Total", "", "", "", "", "", "", "", total)])
    md = [f"# Table {name[-1]}: {title} (Keras model `{model_name}`, as built)", "",
          "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |"
           for r in rows]
    md += [f"| **Total** | | | | | | | | **{total:,}** |", "",
           "Init: Default = glorot_uniform (Keras' default), He = he_normal. Padding and "
           "strides are the Keras layer's own (the paper writes '-' for MaxPool).", "",
           f"_{report.footer(prov).replace('runs: none found; ', '')}; Keras {keras.__version__}_", ""]
    report.write_output(paths["md"], "\n".join(md))
    report.write_json(paths["json"], {"provenance": prov, "dataset": dataset, "model": model_name,
                                      "total_parameters": total,
                                      "layers": [dict(zip(HEADER, r)) for r in rows]})
    return paths, total


def main(argv):
    paths, total = render(FLAGS.dataset)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({total:,} parameters)")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
