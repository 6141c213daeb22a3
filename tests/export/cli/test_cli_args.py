"""Option values are checked by argparse in every console script: zero or negative counts and
out-of-range numbers exit 2 naming the option, before anything is loaded or written."""

from __future__ import annotations

import argparse

import pytest

from export.cli import args as cli_args
from export.cli import convert as cli_convert
from export.cli import energy as cli_energy
from export.cli import eval as cli_eval
from export.cli import export as export_cli
from export.cli import train as cli_train
from spikeclip.errors import EXIT_USAGE


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [
        (cli_args.positive_int, "1", 1),
        (cli_args.positive_int, "256", 256),
        (cli_args.nonnegative_int, "0", 0),
        (cli_args.positive_float, "5e-4", 5e-4),
        (cli_args.nonnegative_float, "0", 0.0),
        (cli_args.probability, "0", 0.0),
        (cli_args.probability, "0.99", 0.99),
        (cli_args.probability, "1", 1.0),
    ],
)
def test_types_accept(convert, text: str, value) -> None:
    assert convert(text) == value and type(convert(text)) is type(value)


@pytest.mark.parametrize(
    ("convert", "text"),
    [
        (cli_args.positive_int, "0"),
        (cli_args.positive_int, "-5"),
        (cli_args.positive_int, "2.5"),
        (cli_args.positive_int, "ten"),
        (cli_args.nonnegative_int, "-3"),
        (cli_args.positive_float, "0"),
        (cli_args.positive_float, "-1e-3"),
        (cli_args.positive_float, "inf"),
        (cli_args.nonnegative_float, "-0.5"),
        (cli_args.nonnegative_float, "nan"),
        (cli_args.probability, "1.01"),
        (cli_args.probability, "-0.01"),
        (cli_args.probability, "nan"),
    ],
)
def test_types_reject(convert, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        convert(text)


TRAIN = ["finetune", "--teacher", "minilm", "--dataset", "digits", "--out", "o.pt"]
BAD_VALUES = [
    # (parser factory, argv, the option named in the error)
    (export_cli.build_parser, ["m.pt", "--samples", "0"], "--samples"),
    (export_cli.build_parser, ["m.pt", "--samples", "-5"], "--samples"),
    (export_cli.build_parser, ["m.pt", "--run-lava", "-3"], "--run-lava"),
    (cli_energy._parser, ["m.pt", "--samples", "0"], "--samples"),
    (cli_energy._parser, ["m.pt", "--samples", "-5"], "--samples"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--batch-size", "0"], "--batch-size"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--limit", "-1"], "--limit"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--threads", "0"], "--threads"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--replace-k", "-2"], "--replace-k"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--distractors", "0"], "--distractors"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--seeds", "42", "-1"], "--seeds"),
    (cli_eval._parser, ["m.pt", "--dataset", "digits", "--split-seed", "-1"], "--split-seed"),
    (cli_train._parser, [*TRAIN, "--epochs", "0"], "--epochs"),
    (cli_train._parser, [*TRAIN, "--batch-size", "-4"], "--batch-size"),
    (cli_train._parser, [*TRAIN, "--max-steps", "0"], "--max-steps"),
    (cli_train._parser, [*TRAIN, "--save-every", "-1"], "--save-every"),
    (cli_train._parser, [*TRAIN, "--state-every-epochs", "0"], "--state-every-epochs"),
    (cli_train._parser, [*TRAIN, "--workers", "-1"], "--workers"),
    (cli_train._parser, [*TRAIN, "--threads", "0"], "--threads"),
    (cli_train._parser, [*TRAIN, "--lr", "0"], "--lr"),
    (cli_train._parser, [*TRAIN, "--lr", "-0.001"], "--lr"),
    (cli_train._parser, [*TRAIN, "--eta-min", "-1"], "--eta-min"),
    (cli_train._parser, [*TRAIN, "--temperature", "0"], "--temperature"),
    (cli_train._parser, [*TRAIN, "--split-seed", "-1"], "--split-seed"),
    (cli_convert._parser, ["img.pth", "--out", "m.pt", "--num-heads", "0"], "--num-heads"),
    (cli_convert._parser, ["img.pth", "--out", "m.pt", "--img-size", "-32"], "--img-size"),
]


@pytest.mark.parametrize(("factory", "argv", "option"), BAD_VALUES,
                         ids=[f"{f.__module__}:{' '.join(a[-2:])}" for f, a, _ in BAD_VALUES])
def test_bad_counts_exit_2_naming_the_option(factory, argv, option, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        factory().parse_args(argv)
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "must be" in err, err


def test_run_lava_0_still_means_skip() -> None:
    args = export_cli.build_parser().parse_args(["m.pt", "--run-lava", "0"])
    assert args.run_lava == 0


def test_help_formatter_shows_defaults_but_not_none_or_flags() -> None:
    p = argparse.ArgumentParser(formatter_class=cli_args.HelpFormatter, description="a\n  b")
    p.add_argument("--n", type=int, default=256, help="count")
    p.add_argument("--names", nargs="+", default=["x", "y"], help="names")
    p.add_argument("--pct", default="5%", help="percent")
    p.add_argument("--none", help="nothing")
    p.add_argument("--flag", action="store_true", help="a flag")
    text = " ".join(p.format_help().split())
    assert "count (default: 256)" in text and "names (default: x y)" in text
    assert "percent (default: 5%)" in text
    assert "nothing (default" not in text and "a flag (default" not in text
    assert "a\n  b" in p.format_help()  # the description keeps its layout
