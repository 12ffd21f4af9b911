"""Campaign workers come from a preloaded fork server, and the main process never imports the oracles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from oracles.registry import ORACLE_MODULES, all_oracles, oracle_names
from reports.worker_pool import WORKER_PRELOAD, worker_context


def test_oracle_names_are_known_without_importing_and_match_the_registry() -> None:
    assert oracle_names() == sorted(all_oracles())
    assert set(ORACLE_MODULES) <= set(WORKER_PRELOAD)


def test_the_workers_start_method_is_the_fork_server_on_posix() -> None:
    if sys.platform.startswith("linux"):
        assert worker_context().get_start_method() == "forkserver"


def test_a_pooled_campaign_leaves_torch_and_symengine_to_the_workers(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = (
        "import sys, json\n"
        "from reports.cli.app import main\n"
        f"code = main(['run', '--examples', '12', '--seed', '3', '--out', {str(out)!r}, '--workers', '2'])\n"
        "print(json.dumps([code, 'torch' in sys.modules, 'symengine' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    exit_code, torch_imported, symengine_imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 0 and not torch_imported and not symengine_imported
    meta = json.loads((out / "campaign.json").read_text(encoding="utf-8"))
    assert meta["last_run"]["executor"] == "process pool ×2" and meta["cases"] == 12
    assert meta["registered_oracles"] == sorted(all_oracles())
    assert meta["coverage"]["oracles"]["torch_autograd"]["cases"] == 12
