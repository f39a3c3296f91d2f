"""Console entry points: every command in setup.cfg resolves, and a successful run exits with status 0."""

import configparser
import importlib
import subprocess
import sys

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
