"""The documentation builds with warnings as errors, and its Python examples run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.rst") if "code-block:: python" in p.read_text())


def python_blocks(text: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives of a page, dedented."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if re.match(r"\s*\.\. code-block:: python\s*$", lines[i]):
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
                body.append(lines[i][3:] if lines[i].strip() else "")
                i += 1
            blocks.append("\n".join(body).strip("\n"))
        else:
            i += 1
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_examples_run(page, tmp_path):
    """Each page's Python blocks, in order and sharing a namespace, in a fresh process."""
    code = "\n\n".join(python_blocks(page.read_text()))
    assert code.strip(), f"{page.name} has no Python example"
    env_code = "import matplotlib\nmatplotlib.use('Agg')\n" + code
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-c", env_code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
