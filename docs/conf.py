"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

import os
import shutil
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))

project = "numrnn"
author = "numrnn developers"
copyright = "numrnn developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
# autosummary writes a page per listed object into generated/ but never deletes one: start
# afresh, so that an object moved or removed from the API cannot leave a stale page behind.
shutil.rmtree(os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated"), True)
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
exclude_patterns = ["_build"]
html_theme = "alabaster"
templates_path = []
nitpicky = False

# numpydoc reports an unknown docstring section as a Python warning and drops the section
# from the page; ``-W`` sees only Sphinx's warnings, so make these errors (autodoc turns
# the error into a Sphinx warning, which ``-W`` fails on).
warnings.filterwarnings("error", message="Unknown section", category=UserWarning)


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_*_request methods on every estimator; they are not ours
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
