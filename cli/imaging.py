"""``pmt imaging``: CNN classifiers and U-Net segmenters of medical images (NIfTI, DICOM,
PNG/JPEG, NPY, MedMNIST NPZ): train, predict, evaluate, segment, explain (Grad-CAM)."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import (
    choice_options,
    config_option,
    on_invalid_option,
    overwrite_option,
    resolve_choice,
    resume_option,
)

from pmtoolkit.imaging.config import ImageClassifierConfig, SegmenterConfig

MODEL_HELP = ("A saved model (.safetensors) or a shipped one: pneumonia (chest X-ray "
              "classifier, PneumoniaMNIST) or mni-tissue (grey / white matter U-Net on T1 MRI).")
TASK = click.Choice(["classify", "segment"])


CONFIGS = {"classify": ImageClassifierConfig, "segment": SegmenterConfig}

INPUT_HELP = ("The training images: a MedMNIST-layout NPZ (*.npz, classify: train_images, "
              "train_labels, val_...), or a CSV/TSV table with columns path, label (classify) "
              "or image, mask (segment); paths relative to the table.")


class Threshold(click.ParamType):
    """A probability in [0, 1], or ``youden``."""

    name = "PROBABILITY|youden"

    def convert(self, value, param, ctx):
        if value == "youden" or isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a probability nor 'youden'", param, ctx)
        return click.FloatRange(0.0, 1.0).convert(number, param, ctx)


@click.group(name="imaging")
def imaging() -> None:
    """Classify and segment medical images; Grad-CAM explanations; evaluation reports."""


@imaging.command()
@click.option("--task", type=TASK, default="classify", show_default=True,
              help="Train an image classifier or a U-Net segmenter.")
@click.option("-i", "--input", "input_", required=True,
              type=click.Path(exists=True, dir_okay=False), help=INPUT_HELP)
@click.option("--valid", "valid_table", type=click.Path(exists=True, dir_okay=False),
              help="Validation table like a table --input (default: the NPZ's val split, else "
                   "10% of the training images, or slice blocks of a single volume).")
@click.option("--classes", "class_names",
              help="Comma-separated class names: NPZ label 0, 1, ...; segment: mask value 0, "
                   "1, ... (default: class_1, class_2 ...).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model.safetensors, metrics.json, config.json.")
@choice_options(CONFIGS)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(task, input_, valid_table, class_names, outdir, on_invalid, config_file, overwrite,
          resume, **params):
    """Train a classifier (ResNet / DenseNet) or a segmenter (U-Net, Dice + CE).

    An interrupted run keeps its last checkpoint in OUTPUT/work; the same command with
    --resume continues it.

    \b
    Examples:
      pmt imaging train -i pneumoniamnist.npz --classes normal,pneumonia -o run/
      pmt imaging train --task segment -i pairs.csv --classes background,lesion \\
          --roi-size 96 --roi-size 96 -o seg/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.imaging.run import train_file

    config = resolve_choice(CONFIGS, task, params, config_file, option="--task")
    startup(seed=config.seed, device=config.device)
    names = [c.strip() for c in class_names.split(",")] if class_names else None
    m = train_file(input_, outdir, task=task, config=config, valid_table=valid_table,
                   class_names=names, on_invalid=on_invalid, overwrite=overwrite,
                   resume=resume)
    score = (f"validation AUC {m['val_auc']:.3f}" if "val_auc" in m
             else f"validation Dice {m['val_dice']:.3f}" if "val_dice" in m else "no validation")
    click.echo(f"{task}: {len(m['classes'])} classes, {m.get('epochs_run')} epochs, {score}; "
               f"model written to {outdir / 'model.safetensors'}", err=True)


@imaging.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("-m", "--model", "model_name", default="pneumonia", show_default=True,
              help=MODEL_HELP.replace(" or mni-tissue (grey / white matter U-Net on T1 MRI)",
                                      ""))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Table (.csv/.tsv/.parquet; - for stdout): path, label, prob_<class>.")
@on_invalid_option("skip")
def predict(images, model_name, output, on_invalid):
    """Classify images: one row per image with its class probabilities.

    IMAGES: PNG/JPEG, DICOM files or series folders, NIfTI, NPY.

    \b
    Example:
      pmt imaging predict -m pneumonia a.png b.png -o preds.csv
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.imaging.run import load
    from pmtoolkit.imaging.run import predict_file as predict_

    startup(model=model_name)
    model = load(model_name, task="classify")
    info = predict_(model, list(images), output, on_invalid=on_invalid)
    bad = f"; {info['rejected']} rejected" if info["rejected"] else ""
    click.echo(f"{info['predicted']} of {info['n']} images predicted{bad}; written to {output}",
               err=True)


@imaging.command()
@click.option("-m", "--model", "model_name", required=True, help=MODEL_HELP)
@click.option("--task", type=TASK, help="Check that the model does this task.")
@click.option("-i", "--input", "input_", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="The labelled images: a MedMNIST-layout NPZ (*.npz; labels are class indices "
                   "of the model), or a CSV/TSV table with columns path, label or image, mask; "
                   "paths relative to the table.")
@click.option("--part", "split", default="test", show_default=True,
              help="The part of an NPZ --input to evaluate (train, val, test).")
@click.option("--threshold", type=Threshold(), help="Decision threshold for two classes: a probability, or "
                                  "'youden' (chosen on these images; optimistic). Default: "
                                  "the model's own, chosen on its validation images.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: metrics.json, predictions.csv or per_image.csv, pictures, "
                   "report.html.")
@on_invalid_option("skip")
@overwrite_option
def evaluate(model_name, task, input_, split, threshold, outdir, on_invalid, overwrite):
    """Evaluate a model on labelled images: ROC-AUC, accuracy, sensitivity, specificity,
    confusion matrix, calibration; or Dice, IoU and Hausdorff distance for masks.

    \b
    Example:
      pmt imaging evaluate -m pneumonia -i pneumoniamnist.npz -o eval/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.imaging.run import evaluate_file, load

    startup(model=model_name)
    model = load(model_name, task=task)
    res = evaluate_file(model, input_, outdir, split=split, threshold=threshold,
                        on_invalid=on_invalid, overwrite=overwrite)
    if "auc" in res:
        extra = (f", sensitivity {res['sensitivity']:.3f}, specificity "
                 f"{res['specificity']:.3f} at {res['threshold']:.3f}"
                 if "sensitivity" in res else "")
        click.echo(f"{res['n']} images: AUC {res['auc']:.3f}, accuracy {res['accuracy']:.3f}"
                   f"{extra}; report in {outdir / 'report.html'}", err=True)
    else:
        click.echo(f"{res['n']} image(s): mean Dice {res.get('dice', float('nan')):.3f}; report "
                   f"in {outdir / 'report.html'}", err=True)


@imaging.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("-m", "--model", "model_name", default="mni-tissue", show_default=True,
              help="A saved segmenter (.safetensors) or a shipped one: mni-tissue.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <name>_mask.nii.gz (.png for pictures), <name>_overlay.png, "
                   "volumes.csv.")
@click.option("--no-overlays", is_flag=True, help="Skip the overlay pictures.")
@on_invalid_option("skip")
@overwrite_option
def segment(images, model_name, outdir, no_overlays, on_invalid, overwrite):
    """Segment images or volumes with sliding windows (2-D models go slice by slice).

    \b
    Example:
      pmt imaging segment -m mni-tissue t1.nii.gz -o masks/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.imaging.run import load
    from pmtoolkit.imaging.run import segment as segment_

    startup(model=model_name)
    model = load(model_name, task="segment")
    info = segment_(model, list(images), outdir, overlays=not no_overlays, overwrite=overwrite,
                    on_invalid=on_invalid)
    bad = f"; {info['rejected']} rejected" if info["rejected"] else ""
    click.echo(f"{info['segmented']} of {info['n']} images segmented{bad}; written to {outdir}",
               err=True)


@imaging.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("-m", "--model", "model_name", default="pneumonia", show_default=True,
              help=MODEL_HELP)
@click.option("--task", type=TASK, help="Check that the model does this task (classify: "
                                        "Grad-CAM maps; segment: mask overlays).")
@click.option("--target", help="Class to explain (default: each image's predicted class).")
@click.option("--layer", help="Network layer for Grad-CAM (default: the last convolutional "
                              "stage, layer4 of a ResNet).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <name>_gradcam.png per image, explanations.csv.")
@on_invalid_option("skip")
@overwrite_option
def explain(images, model_name, task, target, layer, outdir, on_invalid, overwrite):
    """Grad-CAM heat maps of a classifier's predictions over each image (PNG).

    \b
    Example:
      pmt imaging explain -m pneumonia a.png -o cams/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.imaging.run import explain as explain_
    from pmtoolkit.imaging.run import load

    startup(model=model_name)
    model = load(model_name, task=task)
    info = explain_(model, list(images), outdir, target=target, layer=layer,
                    overwrite=overwrite, on_invalid=on_invalid)
    done = info.get("explained", info.get("segmented"))
    bad = f"; {info['rejected']} rejected" if info["rejected"] else ""
    click.echo(f"{done} of {info['n']} images explained{bad}; written to {outdir}", err=True)
