"""Console entry points: every command in setup.cfg resolves, and a successful run exits with status 0."""

import configparser
import importlib
import subprocess
import sys

import pytest

from genomic_models import console

from .conftest import REPO_ROOT


def test_every_console_script_goes_through_genomic_models_console():
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    scripts = dict(line.split(" = ") for line in parser["options.entry_points"]["console_scripts"].strip().splitlines())
    assert set(scripts) == set(console.ENTRY_POINTS)
    for command, target in scripts.items():
        assert target == f"genomic_models.console:{console.entry_point_name(command)}"
        module, function = console.ENTRY_POINTS[command].split(":")
        assert callable(getattr(importlib.import_module(module), function)), command


def test_a_command_whose_main_returns_a_value_exits_with_status_zero(tmp_path, sim_cohort, subprocess_env):
    # simulate_expression_main returns its summary dict; as a console command that must still mean success.
    code = (
        "import sys\nfrom genomic_models.console import simulate_expression\n"
        f"sys.argv = ['genomic-models-simulate-expression', {str(sim_cohort.vcf)!r}, {str(tmp_path)!r}, "
        "'--genes', '2', '--window', '50000']\nsys.exit(simulate_expression())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(tmp_path.iterdir())


def test_every_command_goes_through_the_one_line_error_handler(monkeypatch, capsys):
    # A command added to ENTRY_POINTS gets the handler from the generated entry function, whatever its main raises.
    for command in console.ENTRY_POINTS:
        assert getattr(console, console.entry_point_name(command)).__doc__.endswith("--debug for tracebacks).")

    def broken_main():
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(sys, "argv", ["genomic-models-x", "--flag"])
    with pytest.raises(SystemExit) as exit_info:
        console.run_command(broken_main, "genomic-models-x")
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "genomic-models-x: error: AttributeError: 'NoneType' object has no attribute 'shape' "
        "(run with --debug for the traceback)"
    ]
    monkeypatch.setattr(sys, "argv", ["genomic-models-x", "--debug"])
    with pytest.raises(AttributeError):
        console.run_command(broken_main, "genomic-models-x")
    assert sys.argv == ["genomic-models-x"]  # the flag is the handler's, never the command's
    monkeypatch.setenv("GENOMIC_MODELS_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["genomic-models-x"])
    with pytest.raises(AttributeError):
        console.run_command(broken_main, "genomic-models-x")


def test_errors_of_dataloader_workers_keep_only_their_message():
    from genomic_models.errors import GenomicInputError

    wrapped = GenomicInputError(
        None,
        "Caught GenomicInputError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\ngenomic_models.errors.GenomicInputError: a.npy: signal is nan: NaN\n',
    )
    assert console._one_line(wrapped) == "genomic_models.errors.GenomicInputError: a.npy: signal is nan: NaN"


def test_a_training_script_run_as_a_file_prints_one_line(tmp_path, subprocess_env):
    script = REPO_ROOT / "training_scripts" / "run_seq2king.py"
    args = [sys.executable, str(script), "--kinship_file", str(tmp_path / "absent.king"), "--output_dir", str(tmp_path)]
    result = subprocess.run([*args, "--do_train"], env=subprocess_env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"run_seq2king.py: error: {tmp_path / 'absent.king'}: no such KING matrix (looked for "
        f"{tmp_path / 'absent.king'}.king, {tmp_path / 'absent.king'}.king.bin, {tmp_path / 'absent.king'}.king.zst) "
        "(run with --debug for the traceback)"
    ], result.stderr[-2000:]
